"""Issue 5 through Matrix: a write the manifest marks "ask" waits for the
operator. Nothing runs before approval; a non-operator's approve does
nothing; the operator's approve runs exactly that call; a replayed approve is
refused; a ❌ reaction denies; a pending approval survives a restart and
still runs when approved afterwards; !pending lists what waits."""

import json
import os
import re

import mxtest
from mxtest import check
from llmfix import ScriptedLLM, llm_block, react, write_manifest


def notice_id(operator, room, bot_uid, seen):
    """Waits for a new approval notice and returns (action id, event id)."""
    def probe():
        for e in operator.messages_from(room, bot_uid):
            m = re.search(r"\nAction ([a-z0-9]+), tool ", e["content"].get("body", ""))
            if m and m.group(1) not in seen:
                return m.group(1), e["event_id"]
        return None
    return mxtest.wait_until(probe, 60, "an approval notice")


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        mallory = hs.new_user("mallory")
        work = mxtest.workdir("approve-")
        target = os.path.join(work, "files")
        os.makedirs(target)
        scen = {name: [{"calls": [{"name": "fs.write", "args": {"path": os.path.join(target, name + ".txt"),
                                                                 "content": "written by " + name}}]},
                       {"echo": True}]
                for name in ("w_ok", "w_deny", "w_restart")}
        scen_file = os.path.join(work, "scenarios.json")
        with open(scen_file, "w") as f:
            json.dump(scen, f)
        with ScriptedLLM(extra_scenarios=scen_file) as llm:
            def use(scenario):
                bot.config["llm"] = llm_block([llm.provider("p", scenario, "r1")], ["p"])
                bot.write_config()

            bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))])
            bot.config["devices"][0]["manifest"] = write_manifest(
                bot.dir, {"version": 1, "platform": "linux", "paths": {"read": [target], "write": [target]},
                          "tools": {"fs.write": {"approval": "ask"}, "fs.read": {}}})
            use("w_ok")
            with bot:
                bot.start()
                uid = bot.user_id()
                room = mxtest.open_dm(op, bot)
                op.invite(room, mallory.user_id)
                mallory.join(room)

                # 1. approve by reply: nothing before, exactly the call after
                op.send_text(room, "please write the note")
                aid, _ = notice_id(op, room, uid, set())
                ok_file = os.path.join(target, "w_ok.txt")
                check(not os.path.exists(ok_file), "the write ran before approval")
                mallory.send_text(room, f"approve {aid}")
                op.send_text(room, "!pending")
                op.wait_messages(room, uid, lambda c: aid in c.get("body", "") and "pending" in c.get("body", ""),
                                 count=1, timeout=30)
                check(not os.path.exists(ok_file), "a non-operator's approve ran the action")
                op.send_text(room, f"approve {aid}")
                op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""), count=1, timeout=60)
                with open(ok_file) as f:
                    check(f.read() == "written by w_ok", "the approved write wrote something else")
                os.unlink(ok_file)
                op.send_text(room, f"approve {aid}")
                op.wait_messages(room, uid, lambda c: c.get("body", "").startswith(f"Could not approve {aid}"),
                                 count=1, timeout=30)
                check(not os.path.exists(ok_file), "a replayed approve ran the action again")

                # 2. deny by reaction
                bot.stop()
                use("w_deny")
                bot.start()
                op.send_text(room, "write another")
                did, notice_ev = notice_id(op, room, uid, {aid})
                react(op, room, notice_ev, "\u274c")
                op.wait_messages(room, uid, lambda c: c.get("body", "").startswith(f"Denied {did}"), count=1,
                                 timeout=30)
                op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""), count=2, timeout=60)
                check(not os.path.exists(os.path.join(target, "w_deny.txt")), "a denied write ran")

                # 3. pending across a restart, approved afterwards
                bot.stop()
                use("w_restart")
                bot.start()
                op.send_text(room, "and one more")
                rid, _ = notice_id(op, room, uid, {aid, did})
                bot.stop()
                bot.start()
                op.send_text(room, "!pending")
                op.wait_messages(room, uid, lambda c: rid in c.get("body", "") and "pending" in c.get("body", ""),
                                 count=1, timeout=30)
                op.send_text(room, f"approve {rid}")
                op.wait_messages(room, uid, lambda c: c.get("body", "").startswith(f"Action {rid}"), count=1,
                                 timeout=60)
                with open(os.path.join(target, "w_restart.txt")) as f:
                    check(f.read() == "written by w_restart", "the action approved after a restart wrote something else")
                bot.stop()


mxtest.run(test)
