"""Issue 6 end to end over WireGuard: operator DM -> scripted LLM -> tool
calls signed over HTTP through a real wireguard-go tunnel to mxfleet-agent
in another network namespace -> the answer in the DM. The agent enforces
its own manifest: a file the bot's manifest allows but the agent's does not
stays unread. The agent's own audit names the operator, their device and
trust state, the room and the message. `!audit verify` checks the bot's
chain and the agent's.

The test sets up its own tunnel (tests/devices/wgnet) and re-runs itself in
the hub namespace, where it starts a private Synapse: the bot, the homeserver
and the test's operator client all share that namespace's loopback."""

import json
import os
import sqlite3

import mxtest
from mxtest import check
from devfix import wgnet_main
from llmfix import ScriptedLLM, llm_block, write_manifest

def inside(wg):
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    dev_root = os.path.join(wg, "dev-root")
    secret = os.path.join(wg, "secret.txt")
    work = mxtest.workdir("wgdev-")
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"wg_two": [{"calls": [{"name": "fs.read", "args": {"path": os.path.join(dev_root, "hello.txt")}},
                                         {"name": "fs.read", "args": {"path": secret}}]},
                              {"echo": True}]}, f)
    hs = mxtest.Homeserver.start_own(name="wgdev")
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("wgtest", mxtest.unique("agent-wgtest"))],
                         extra={"llm": llm_block([llm.provider("p", "wg_two", "w1")], ["p"])})
        dev = bot.config["devices"][0]
        dev["backend"] = {"kind": "wg", "address": "198.51.100.2", "port": 7443,
                          "hmac_key_file": os.path.join(wg, "agent.key")}
        # the bot's manifest is wider than the agent's: the agent must refuse
        dev["manifest"] = write_manifest(bot.dir, {"version": 1, "platform": "linux",
                                                   "paths": {"read": [wg], "write": []},
                                                   "tools": {"fs.read": {}, "fs.list": {}}})
        bot.write_config()
        with bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            op.send_text(room, "read both files")
            ans = op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""), count=1,
                                   timeout=90)[0]["content"]["body"]
            check("hello from the device" in ans, f"the agent's file is not in the answer: {ans[:300]}")
            check("do not read" not in ans, "the agent served a file its own manifest forbids")
            check("refused" in ans.lower() or "denied" in ans.lower() or "403" in ans,
                  f"the model was not told the agent refused: {ans[:400]}")
            # issue 11.9: the device's own audit says who asked, from which
            # Matrix device and message (not nulls)
            db = sqlite3.connect(os.path.join(wg, "agent-data", "audit", "wgtest.db"))
            recs = [json.loads(r[0]) for r in db.execute("SELECT record FROM audit_chain ORDER BY seq")]
            db.close()
            calls = [r for r in recs if r.get("tool") == "fs.read"]
            check(len(calls) >= 3, f"the agent audited {len(calls)} fs.read records, expected intent+result+refusal")
            for r in calls:
                who = r.get("operator") or {}
                # (no device_id: this operator writes unencrypted, so no device is known)
                check(who.get("mxid") == op.user_id and who.get("verification") == "unverified"
                      and r.get("room_id") == room and (r.get("event_id") or "").startswith("$"),
                      f"an agent audit record does not say who asked: {r}")
            op.send_text(room, "!audit verify")
            v = op.wait_messages(room, uid, lambda c: "agent chain" in c.get("body", ""), count=1,
                                 timeout=60)[0]["content"]["body"]
            check("PROBLEM" not in v and "agent chain: ok" in v, f"an audit chain does not verify: {v}")
            bot.stop()


wgnet_main(__file__, inside, "wgdev-net")
