"""Issue 7's alerts through Matrix, as an operator on Element sees them with
the default settings (require_verified_sender on, Element's crypto,
cross-signed): the operator-alerts room is created end-to-end encrypted
(issue 10.4), the health monitor posts audit checkpoints there, and when a
record of a device's audit chain is edited behind the bot's back the room
gets `[ALERT] device_id=pc1 status=hash_chain_corrupted (seq=N)` naming that
record - once, not on every check. The alert notifies the operator (issue
10.5): Synapse lists it in the operator's /notifications, and Element's push
rules on the decrypted event say notify + highlight (an m.notice would be
silenced by .m.rule.suppress_notices). `!devices` and `!health` from the
verified operator answer there."""

import os
import re
import sqlite3
import sys

import mxtest
from mxtest import check
from llmfix import ScriptedLLM, llm_block, write_manifest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "e2e"))
from peerlib import Peer, next_matching, notified, operator  # noqa: E402


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    with hs, ScriptedLLM() as llm:
        op = hs.new_user("alice")
        alias = f"#alerts-{mxtest.unique('t')}:{hs.name}"
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))], alerts_room=alias,
                         bot_opts={"require_verified_sender": True},
                         extra={"llm": llm_block([llm.provider("p", "tool_single", "a1")], ["p"]),
                                "health": {"interval_s": 5, "pending_s": 0, "keep_firing_s": 0}})
        bot.config["devices"][0]["manifest"] = write_manifest(bot.dir, {
            "version": 1, "platform": "linux", "paths": {"read": ["/var/log"], "write": []},
            "tools": {"fs.list": {}}})
        bot.write_config()
        work = mxtest.workdir("alerts-")
        with bot, Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            bot.start()
            uid = bot.user_id()
            operator(peer, op)
            dm = peer("a", "create_dm", uid)["room_id"]
            peer("a", "wait_join", dm, uid, 60)
            # two audit records (intent + result) for one tool call
            peer("a", "send", dm, "list the logs")
            next_matching(peer, dm, uid, lambda b: "Tool results" in b, 90, [])

            alerts_room = mxtest.wait_until(lambda: op.resolve_alias(alias), 30, "the alerts room")
            mxtest.wait_until(lambda: alerts_room in op.invites(), 30, "the invite to the alerts room")
            # joins and waits for the room's encryption state (fails on an unencrypted room)
            peer("a", "join", alerts_room)
            enc = op.request("GET", f"/rooms/{mxtest.q(alerts_room)}/state/m.room.encryption/")
            check(enc.get("algorithm") == "m.megolm.v1.aes-sha2", f"the alerts room is not encrypted: {enc}")
            seen = []
            next_matching(peer, alerts_room, uid, lambda b: b.startswith("[CHECKPOINT] device_id=pc1"), 60, seen)

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
            alert = next_matching(peer, alerts_room, uid, lambda b: re.search(want, b), 60, seen)
            check(alert["encrypted"], "the alert was sent in clear")
            # the phone: Element evaluates the account's push rules on the
            # decrypted event; Synapse's /notifications is what was pushed
            acts = peer("a", "push_actions", alerts_room, alert["event_id"])
            check(acts["notify"] and acts["highlight"],
                  f"Element's default push rules do not notify for the alert: {acts}")
            mxtest.wait_until(lambda: notified(op, alert["event_id"]), 30,
                              "the alert in the operator's /notifications")

            # commands from the verified operator answer in the encrypted room
            peer("a", "send", alerts_room, "!devices")
            table = next_matching(peer, alerts_room, uid, lambda b: "pc1" in b and "local" in b and
                                  "[ALERT]" not in b and "[CHECKPOINT]" not in b, 60, seen)
            check("Refused" not in table["body"], f"!devices was refused: {table['body']}")
            peer("a", "send", alerts_room, "!health")
            next_matching(peer, alerts_room, uid, lambda b: "hash_chain_corrupted" in b and "[ALERT]" not in b,
                          60, seen)
            # more checks ran meanwhile; the alert is not repeated while it keeps firing
            check(len([s for s in seen if re.search(want, s["body"])]) == 1,
                  "the corruption alert was posted more than once")
            bot.stop()


mxtest.run(test)
