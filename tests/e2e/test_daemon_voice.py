"""Issue 7's voice path against the real daemon: Element's crypto sends an
encrypted voice message (m.audio + MSC3245, Ogg/Opus made by espeak-ng and
opusenc); the bot downloads it through authenticated media, checks the
hash, decrypts, transcribes it with pocketsphinx (`command` provider, a
small grammar), posts the transcript as a reply, then handles it as typed
text. The scripted model then asks for fs.write, which the manifest allows
without approval for typed requests - but a voice-triggered write must wait
for the operator, and its notice shows the transcript; "Approve ID." as a
phone types it approves. A tampered voice file is refused, nothing
transcribed."""

import json
import os
import re
import subprocess
import sys

import mxtest
from mxtest import check
from peerlib import Peer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bot", "integration"))
from llmfix import ScriptedLLM, llm_block, write_manifest  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def voice_file(directory, text):
    wav, ogg = os.path.join(directory, "say.wav"), os.path.join(directory, "say.ogg")
    subprocess.run(["espeak-ng", "-w", wav, text], check=True, capture_output=True)
    subprocess.run(["opusenc", "--quiet", "--downmix-mono", wav, ogg], check=True, capture_output=True)
    return ogg


def wait_for(peer, room, uid, pred, what, secs=90):
    """Reads the bot's replies in order until one matches pred."""
    seen = []
    while True:
        r = peer("a", "wait_reply", room, uid, secs, ok=False)
        check(r.get("ok"), f"waiting for {what}: {r.get('error')}; replies so far: {seen}")
        seen.append(r.get("body", "")[:100])
        if pred(r.get("body", "")):
            return r


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    work = mxtest.workdir("voice-")
    target = os.path.join(work, "files")
    os.makedirs(target)
    note = os.path.join(target, "voice.txt")
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"voice_write": [{"calls": [{"name": "fs.write", "args": {"path": note, "content": "by voice"}}]},
                                   {"echo": True}]}, f)
    ogg = voice_file(work, "restart docker")
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         bot_opts={"require_verified_sender": True},
                         extra={"llm": llm_block([llm.provider("p", "voice_write", "v1")], ["p"]),
                                "speech": {"provider": "command",
                                           "command": ["pocketsphinx_continuous", "-infile", "{wav}", "-jsgf",
                                                       os.path.join(REPO, "tests", "stt", "cmds.gram"),
                                                       "-logfn", "/dev/null"],
                                           "timeout_s": 60}})
        bot.config["devices"][0]["manifest"] = write_manifest(
            bot.dir, {"version": 1, "platform": "linux", "paths": {"read": [target], "write": [target]},
                      "tools": {"fs.write": {}, "fs.read": {}}})
        bot.write_config()
        with bot, Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            bot.start()
            uid = bot.user_id()
            peer("a", "login", op.user_id.split(":")[0][1:], op.password)
            peer("a", "xsign", op.password)
            room = peer("a", "create_dm", uid)["room_id"]
            peer("a", "wait_join", room, uid, 60)

            peer("a", "send_voice", room, ogg, 1500)
            wait_for(peer, room, uid, lambda b: "restart docker" in b and b.startswith("\U0001F3A4"),
                     "the transcript")
            r = wait_for(peer, room, uid, lambda b: "\nAction " in b and ", tool fs.write" in b,
                         "an approval notice for the voice write")
            check(not os.path.exists(note), "a voice-triggered write ran before approval")
            # issue 13.8: the operator confirms what was heard, not only what the model made of it
            check('Heard (voice): "restart docker"' in r["body"], f"the notice does not show the transcript: {r['body']}")
            check(r["body"].startswith(f"Write 8 bytes (1 line) over `{note}` on pc1?\n"),
                  f"the notice does not lead with one sentence: {r['body']}")
            aid = re.search(r"\nAction ([a-z0-9]+), tool ", r["body"]).group(1)
            # issue 13.3: as a phone keyboard types it
            peer("a", "send", room, f"Approve {aid}.")
            wait_for(peer, room, uid, lambda b: "Tool results" in b, "the final answer")
            with open(note) as f:
                check(f.read() == "by voice", "the approved voice write wrote something else")

            peer("a", "send_voice", room, ogg, 1500, "tamper")
            r = wait_for(peer, room, uid, lambda b: "could not transcribe" in b, "the refusal of a tampered file")
            check("hash" in r["body"].lower() or "sha" in r["body"].lower(),
                  f"the refusal does not say the file failed its hash check: {r['body']}")
            bot.stop()


mxtest.run(test)
