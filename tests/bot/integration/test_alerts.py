"""Issue 7's alerts through Matrix: the health monitor runs on its interval,
audit checkpoints are posted to the operator-alerts room, and when a record
of a device's audit chain is edited behind the bot's back the room gets
`[ALERT] device_id=pc1 status=hash_chain_corrupted (seq=N)` naming that
record - once, not on every check. `!devices` in the alerts room shows the
fleet table."""

import os
import re
import sqlite3

import mxtest
from mxtest import check
from llmfix import ScriptedLLM, llm_block, write_manifest


def alerts(op, room, uid, pattern):
    return [e["content"]["body"] for e in op.messages_from(room, uid) if re.search(pattern, e["content"].get("body", ""))]


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    with hs, ScriptedLLM() as llm:
        op = hs.new_user("alice")
        alias = f"#alerts-{mxtest.unique('t')}:{hs.name}"
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))], alerts_room=alias,
                         extra={"llm": llm_block([llm.provider("p", "tool_single", "a1")], ["p"]),
                                "health": {"interval_s": 5, "pending_s": 0, "keep_firing_s": 0}})
        bot.config["devices"][0]["manifest"] = write_manifest(bot.dir, {
            "version": 1, "platform": "linux", "paths": {"read": ["/var/log"], "write": []},
            "tools": {"fs.list": {}}})
        bot.write_config()
        with bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            # two audit records (intent + result) for one tool call
            op.send_text(room, "list the logs")
            op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""), count=1, timeout=90)

            alerts_room = mxtest.wait_until(lambda: op.resolve_alias(alias), 30, "the alerts room")
            mxtest.wait_until(lambda: alerts_room in op.invites(), 30, "the invite to the alerts room")
            op.join(alerts_room)
            op.wait_messages(alerts_room, uid, lambda c: c.get("body", "").startswith("[CHECKPOINT] device_id=pc1"),
                             count=1, timeout=60)

            db = os.path.join(bot.dir, "data", "audit", "pc1.db")
            con = sqlite3.connect(db)
            seqs = [r[0] for r in con.execute("SELECT seq FROM audit_chain ORDER BY seq")]
            check(len(seqs) >= 2, f"expected audit records for the tool call, found {seqs}")
            victim = seqs[0]
            # someone with access to the file: the append-only triggers are
            # no obstacle to them, only the hash chain is
            for (trig,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
                con.execute(f"DROP TRIGGER {trig}")
            con.execute("UPDATE audit_chain SET record=replace(record, 'fs.list', 'fs.lisT') WHERE seq=?", (victim,))
            con.commit()
            con.close()

            want = rf"^\[ALERT\] device_id=pc1 status=hash_chain_corrupted \(seq={victim}\)"
            op.wait_messages(alerts_room, uid, lambda c: re.search(want, c.get("body", "")), count=1, timeout=60)
            # more checks run; the alert is not repeated while it keeps firing
            op.send_text(alerts_room, "!devices")
            table = op.wait_messages(alerts_room, uid, lambda c: "pc1" in c.get("body", "") and
                                     "[ALERT]" not in c.get("body", "") and "[CHECKPOINT]" not in c.get("body", ""),
                                     count=1, timeout=60)[0]["content"]
            check("local" in table["body"], f"the fleet table does not show the backend: {table['body']}")
            check("<table" in table.get("formatted_body", ""), "the fleet table has no HTML table")
            op.send_text(alerts_room, "!health")
            op.wait_messages(alerts_room, uid, lambda c: "hash_chain_corrupted" in c.get("body", "") and
                             "[ALERT]" not in c.get("body", ""), count=1, timeout=60)
            check(len(alerts(op, alerts_room, uid, want)) == 1, "the corruption alert was posted more than once")
            bot.stop()


mxtest.run(test)
