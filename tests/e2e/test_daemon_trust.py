"""Issue 12's trust root against the real daemon, with Element's crypto
(matrix-js-sdk + Rust crypto) as the operator, default settings
(require_verified_sender on):
- the first command in a fresh DM (an LLM turn reading a file) is audited
  as verified, with the master key the decision trusted;
- first use pins the operator's master key and says so in the alerts room,
  showing the key Element holds;
- the operator resets their cross-signing identity: commands are refused
  with the re-pin command to run; `mxfleet trust show` reports the mismatch;
- `mxfleet trust repin` accepts the new key (audit row in the chain,
  which still verifies), commands work again;
- a master key configured in operators[] that does not match is refused,
  the matching one accepted."""

import json
import os
import subprocess
import sys

import mxtest
from mxtest import check
from peerlib import Peer, next_matching

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bot", "integration"))
from llmfix import ScriptedLLM, llm_block, write_manifest  # noqa: E402


def replies_until(peer, room, uid, pred, what, secs=60):
    """The bot's next reply matching pred (what: for the failure message)."""
    mxtest.log(f"waiting for {what}")
    return next_matching(peer, room, uid, pred, secs, [])


def cli(bot, *args):
    return subprocess.run([bot.bin, *args, "--config", bot.config_path], capture_output=True, text=True,
                          cwd=bot.dir, timeout=60)


def audit_records(bot):
    out = subprocess.run([bot.bin, "audit", "show", "--config", bot.config_path, "--device", "pc1", "--json"],
                         capture_output=True, text=True, cwd=bot.dir, timeout=60)
    check(out.returncode == 0, f"audit show failed: {out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip().startswith("{")]


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    work = mxtest.workdir("trust-")
    files = os.path.join(work, "files")
    os.makedirs(files)
    with open(os.path.join(files, "motd"), "w") as f:
        f.write("hello operator\n")
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"read_motd": [{"calls": [{"name": "fs.read", "args": {"path": os.path.join(files, "motd")}}]},
                                 {"echo": True}]}, f)
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         extra={"llm": llm_block([llm.provider("p", "read_motd", "t1")], ["p"])})
        del bot.config["bot"]["require_verified_sender"]  # the default (on)
        bot.config["devices"][0]["manifest"] = write_manifest(
            bot.dir, {"version": 1, "platform": "linux", "paths": {"read": [files]}, "tools": {"fs.read": {}}})
        bot.write_config()
        alias = bot.config["alerts_room"]
        show = cli(bot, "trust", "show", op.user_id)
        check(show.returncode == 1 and "none yet" in show.stdout,
              f"trust show before any contact: rc {show.returncode}\n{show.stdout}{show.stderr}")
        with bot, Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            bot.start()
            uid = bot.user_id()
            peer("a", "login", op.user_id.split(":")[0][1:], op.password)
            key1 = peer("a", "xsign", op.password)["master_key"]
            check(key1 and len(key1) == 43, f"js-sdk gave no master key: {key1!r}")
            alerts = op.request("GET", f"/directory/room/{mxtest.q(alias)}")["room_id"]
            peer("a", "join_any", alerts)
            room = peer("a", "create_dm", uid)["room_id"]
            peer("a", "wait_join", room, uid, 60)

            # the very first command of the fresh DM runs a tool
            peer("a", "send", room, "what is in the motd?")
            replies_until(peer, room, uid, lambda b: "hello operator" in b, "the file's content")
            recs = [r for r in audit_records(bot) if r.get("tool") == "fs.read"]
            check(recs, "no fs.read record in the audit")
            opr = recs[0].get("operator", {})
            check(opr.get("verification") == "verified",
                  f"the first command of a fresh DM is audited as {opr.get('verification')!r}, not verified")
            check(opr.get("mxid") == op.user_id and opr.get("master_key") == key1,
                  f"the audit does not name the operator and the master key trusted: {opr}")

            # the first-use pin is announced in the alerts room, with the key
            r = replies_until(peer, alerts, uid, lambda b: "on first use" in b, "the pin notice")
            check(key1 in r["body"] and op.user_id in r["body"], f"the pin notice lacks the key: {r['body']}")
            show = cli(bot, "trust", "show", op.user_id)
            check(show.returncode == 0 and key1 in show.stdout and "status:     ok" in show.stdout,
                  f"trust show before the reset: rc {show.returncode}\n{show.stdout}{show.stderr}")

            # the operator resets cross-signing (new master key): refused
            key2 = peer("a", "xsign", op.password)["master_key"]
            check(key2 and key2 != key1, "the reset did not make a new master key")
            peer("a", "send", room, "!ping")
            r = replies_until(peer, room, uid, lambda b: "Refused" in b or b.startswith("pong"), "the refusal")
            check(not r["body"].startswith("pong"), "a command under a reset identity was accepted before re-pinning")
            check("mxfleet trust repin " + op.user_id in r["body"] and key2 in r["body"],
                  f"the refusal does not name the re-pin command and the new key: {r['body']}")
            show = cli(bot, "trust", "show", op.user_id)
            check(show.returncode == 1 and "MISMATCH" in show.stdout and key2 in show.stdout,
                  f"trust show after the reset: rc {show.returncode}\n{show.stdout}{show.stderr}")

            rp = cli(bot, "trust", "repin", op.user_id)
            check(rp.returncode == 0 and f"is now {key2} (was {key1})\n" in rp.stdout,
                  f"trust repin: rc {rp.returncode}\n{rp.stdout}{rp.stderr}")
            rows = [x for x in audit_records(bot) if x.get("tool") == "trust.repin"]
            check(len(rows) == 1 and rows[0]["args"].get("new_master_key") == key2
                  and rows[0]["args"].get("old_master_key") == key1, f"no audit row for the re-pin: {rows}")
            ver = subprocess.run([bot.bin, "audit", "verify", "--config", bot.config_path], capture_output=True,
                                 text=True, cwd=bot.dir, timeout=60)
            check(ver.returncode == 0, f"audit verify after the re-pin: {ver.stdout}{ver.stderr}")
            peer("a", "send", room, "!ping")
            replies_until(peer, room, uid, lambda b: b.startswith("pong"), "a pong after the re-pin")
            bot.stop()

            # a configured key that is not the published one: refused
            bot.config["operators"] = [{"user_id": op.user_id, "master_key": key1}]
            bot.write_config()
            bot.start()
            peer("a", "send", room, "!ping")
            r = replies_until(peer, room, uid, lambda b: "Refused" in b or b.startswith("pong"), "the refusal")
            check("not the one configured" in r["body"], f"a mismatching configured key was not refused: {r['body']}")
            bot.stop()
            # spaced as Element Android shows it: accepted
            spaced = " ".join(key2[i:i + 4] for i in range(0, len(key2), 4))
            bot.config["operators"] = [{"user_id": op.user_id, "master_key": spaced}]
            bot.write_config()
            bot.start()
            peer("a", "send", room, "!ping")
            replies_until(peer, room, uid, lambda b: b.startswith("pong"), "a pong under the configured key")
            bot.stop()

            # an operator never seen can be pinned ahead, once; repin replaces
            bob = hs.new_user("bob")
            bot.config["operators"].append(bob.user_id)
            bot.write_config()
            p1 = cli(bot, "trust", "pin", bob.user_id, "--key", key1)
            check(p1.returncode == 0, f"trust pin of a new operator: rc {p1.returncode}\n{p1.stdout}{p1.stderr}")
            p2 = cli(bot, "trust", "pin", bob.user_id, "--key", key2)
            check(p2.returncode == 1 and "already pinned" in p2.stderr, f"a second pin: {p2.stdout}{p2.stderr}")
            show = cli(bot, "trust", "show", bob.user_id)
            check(key1 in show.stdout and "(pin," in show.stdout, f"trust show of the pinned operator: {show.stdout}")


mxtest.run(test)
