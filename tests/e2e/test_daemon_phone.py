"""Issue 13 from the phone, against the real daemon with Element's crypto
(matrix-js-sdk + Rust crypto) as a cross-signed operator and a scripted
model that does what each message says ("CALL {...}" lines become calls):

1. While one turn waits for the operator's approval of a write, a second
   question to the same device is answered within seconds (it waited for
   the approval's expiry), !ping answers, and approve still runs the
   write and finishes the first turn. With more turns waiting for
   approvals than the bot has workers (6), !ping and approve still answer
   (approval waits held the workers that read the room).
2. A ✅ as Element Web/Desktop sends it (matrix-js-sdk: unencrypted) on the
   only approval waiting in the room, from the operator whose last message
   there was encrypted and verified, approves it (it got the generic "not
   end-to-end encrypted" refusal). After an unencrypted message from the
   operator, or with two approvals waiting, a ✅ gets one line naming the
   typed command and decides nothing.
3. The answer is a reply to its question and no progress notice ("running
   ...", "done") stays behind in Element's timeline."""

import json
import os
import re
import sys

import mxtest
from mxtest import check
from peerlib import Peer, next_matching, operator, ping_in_new_dm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bot", "integration"))
from llmfix import ScriptedLLM, llm_block, write_manifest  # noqa: E402


def call(name, **args):
    return "CALL " + json.dumps({"name": name, "args": args}, separators=(",", ":"))


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    work = mxtest.workdir("phone-")
    target = os.path.join(work, "files")
    os.makedirs(target)
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"phone": [{"follow": True}]}, f)
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         bot_opts={"require_verified_sender": True},
                         extra={"llm": llm_block([llm.provider("p", "phone", "ph1")], ["p"])})
        bot.config["devices"][0]["manifest"] = write_manifest(
            bot.dir, {"version": 1, "platform": "linux", "paths": {"read": [target], "write": [target]},
                      "tools": {"fs.write": {"approval": "ask"}, "fs.read": {}}})
        bot.write_config()
        with bot, Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            bot.start()
            uid = bot.user_id()
            operator(peer, op)
            room = ping_in_new_dm(peer, uid)
            seen = []

            # 1. a pending approval does not silence the device
            note = os.path.join(target, "note.txt")
            peer("a", "send", room, "write the note " + call("fs.write", path=note, content="from the phone"))
            ev = next_matching(peer, room, uid, lambda b: re.search(r"\nAction [a-z0-9]+, tool ", b), 90, seen)
            aid = re.search(r"\nAction ([a-z0-9]+), tool ", ev["body"]).group(1)
            peer("a", "send", room, "meanwhile, how is pc1?")
            next_matching(peer, room, uid, lambda b: b.startswith("Done:") and "wrote" not in b, 20, seen)
            peer("a", "send", room, "!ping")
            next_matching(peer, room, uid, lambda b: b.startswith("pong"), 20, seen)
            check(not os.path.exists(note), "the write ran before its approval")
            peer("a", "send", room, f"approve {aid}")
            next_matching(peer, room, uid, lambda b: b.startswith(f"Approved {aid}"), 30, seen)
            next_matching(peer, room, uid, lambda b: b.startswith("Done:"), 60, seen)
            with open(note) as f:
                check(f.read() == "from the phone", "the approved write wrote something else")

            # 1b. more waiting turns than workers
            ids = []
            for i in range(7):
                peer("a", "send", room, f"note {i} " + call("fs.write", path=os.path.join(target, f"n{i}.txt"),
                                                              content=f"n{i}"))
            for i in range(7):
                ev = next_matching(peer, room, uid, lambda b: re.search(r"\nAction [a-z0-9]+, tool ", b), 60, seen)
                ids.append(re.search(r"\nAction ([a-z0-9]+), tool ", ev["body"]).group(1))
            peer("a", "send", room, "!ping")
            next_matching(peer, room, uid, lambda b: b.startswith("pong"), 20, seen)
            for aid in ids:
                peer("a", "send", room, f"approve {aid}")
                next_matching(peer, room, uid, lambda b, a=aid: b.startswith(f"Approved {a}"), 30, seen)
            mxtest.wait_until(lambda: all(os.path.exists(os.path.join(target, f"n{i}.txt")) for i in range(7)), 60,
                              "the seven approved writes")

            def ask(path, text):
                peer("a", "send", room, text + " " + call("fs.write", path=path, content=text))
                ev = next_matching(peer, room, uid, lambda b: re.search(r"\nAction [a-z0-9]+, tool ", b), 60, seen)
                return re.search(r"\nAction ([a-z0-9]+), tool ", ev["body"]).group(1), ev["event_id"]

            # 2. Element's unencrypted ✅ on the only approval waiting here
            tapped = os.path.join(target, "tapped.txt")
            aid, notice = ask(tapped, "tapped")
            peer("a", "react", room, notice, "\u2705")
            r = next_matching(peer, room, uid, lambda b: b.startswith(f"Approved {aid}") or "encrypted" in b, 30, seen)
            check(r["body"].startswith(f"Approved {aid}"), f"the ✅ did not approve: {r['body']}")
            mxtest.wait_until(lambda: os.path.exists(tapped), 30, "the write approved by ✅")

            # the operator's last message here was not encrypted: the ✅ names the typed command
            late = os.path.join(target, "late.txt")
            aid0, notice0 = ask(late, "late")
            op.send_text(room, "sent without encryption")
            next_matching(peer, room, uid, lambda b: b.startswith("Refused:"), 30, seen)
            peer("a", "react", room, notice0, "\u2705")
            r = next_matching(peer, room, uid, lambda b: aid0 in b, 30, seen)
            check("verified session" in r["body"] and f"`approve {aid0}`" in r["body"],
                  f"a ✅ after an unencrypted message: {r['body']}")
            check(not os.path.exists(late), "a ✅ after an unencrypted message approved")
            peer("a", "send", room, f"approve {aid0}")
            next_matching(peer, room, uid, lambda b: b.startswith(f"Approved {aid0}"), 30, seen)
            mxtest.wait_until(lambda: os.path.exists(late), 30, "the typed approval's write")

            # two waiting: a ✅ names the typed command, decides nothing
            one, two = os.path.join(target, "one.txt"), os.path.join(target, "two.txt")
            aid1, notice1 = ask(one, "one")
            aid2, _ = ask(two, "two")
            peer("a", "react", room, notice1, "\u2705")
            r = next_matching(peer, room, uid, lambda b: f"approve {aid1}" in b or aid1 in b, 30, seen)
            check(f"`approve {aid1}`" in r["body"] and "\n" not in r["body"].strip(),
                  f"no one-line reply with the typed command: {r['body']}")
            check("not end-to-end encrypted" not in r["body"], f"the generic refusal: {r['body']}")
            peer("a", "send", room, "!ping")
            next_matching(peer, room, uid, lambda b: b.startswith("pong"), 20, seen)
            check(not os.path.exists(one), "a ✅ with two approvals waiting ran a write")
            for a in (aid1, aid2):
                peer("a", "send", room, f"Deny {a}.")
                next_matching(peer, room, uid, lambda b, a=a: b.startswith(f"Denied {a}"), 30, seen)

            # 3. answer tied to the question, no stale progress notice
            question = peer("a", "send", room, "read it " + call("fs.read", path=tapped))["event_id"]
            answer = next_matching(peer, room, uid, lambda b: b.startswith("Done:") and "tapped" in b, 60, seen)

            def tidy():
                msgs = peer("a", "history", room, uid)["messages"]
                ans = [x for x in msgs if x["event_id"] == answer["event_id"]]
                stale = [x["body"] for x in msgs if (x.get("body") or "").startswith(("running", "done", "* done"))]
                return (ans, stale) if ans and not stale else None
            got = mxtest.wait_until(tidy, 30, "no progress notice left after the answer")
            check(got[0][0]["reply_to"] == question,
                  f"the answer is not a reply to its question: {got[0][0]}")
            bot.stop()


mxtest.run(test)
