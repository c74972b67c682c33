"""Acceptance: an operator invites @agent-pc1, the bot joins, sets its display
name and marks the DM in m.direct, `!ping` in the unencrypted DM gets one `pong` notice (with
formatted_body) and a read receipt, `!help` and `!status` answer, the alerts room exists under
its alias with the operator invited, SIGTERM exits 0 within 5 s, and the
debug log holds no password or access token."""

import mxtest
from mxtest import check, is_notice


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        alerts = f"#alerts-{mxtest.unique('ping')}:{hs.name}"
        with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                        alerts_room=alerts) as bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)

            ping = mxtest.ping_and_wait(op, room, uid, 1)
            reply = mxtest.pongs(op, room, uid)[0]
            content = reply["content"]
            check(content.get("format") == "org.matrix.custom.html" and content.get("formatted_body"),
                  f"pong lacks an HTML formatted_body: {content}")
            check(reply["origin_server_ts"] >= op.event(room, ping)["origin_server_ts"],
                  "pong is older than the ping")

            # read receipt once handled
            mxtest.wait_until(lambda: op.read_receipts(room).get(uid) == ping, 30,
                              f"the bot's read receipt on the handled !ping {ping}")

            op.send_text(room, "!help")
            op.wait_messages(room, uid, lambda c: is_notice(c) and "!ping" in c.get("body", ""),
                             timeout=30)
            op.send_text(room, "!status")
            # no manifest configured or onboarded: the documented built-in
            # read-only default, with tools (it used to mean none at all)
            op.wait_messages(room, uid, lambda c: is_notice(c) and all(
                w in c.get("body", "").lower() for w in ("pc1", "local", "uptime",
                                                         "manifest: built-in read-only default")), timeout=30)
            status = [e["content"]["body"] for e in op.messages_from(room, uid)
                      if "manifest: built-in" in e["content"].get("body", "")][-1]
            check("tools: 0" not in status, f"the built-in manifest offers no tools: {status}")
            notices = op.messages_from(room, uid)
            check(all(is_notice(e["content"]) for e in notices),
                  f"the bot sent a non-notice: {[e['content'] for e in notices]}")
            mxtest.assert_exactly_once(op, room, uid, [ping])

            # display name set on first login
            name = op.request("GET", f"/profile/{mxtest.q(uid)}/displayname").get("displayname")
            check(name and name != uid and "pc1" in name, f"bot display name is {name!r}")

            # DM marked in the bot's m.direct
            me = bot.login_as()
            mxtest.wait_until(lambda: room in me.m_direct().get(op.user_id, []), 30,
                              f"the bot's m.direct to list {room} for {op.user_id}")

            # operator-alerts room: created under its alias, operator invited
            alerts_id = mxtest.wait_until(lambda: op.resolve_alias(alerts), 30,
                                          f"alias {alerts} to exist")
            mxtest.wait_until(lambda: alerts_id in op.invites(), 30,
                              f"an invite for the operator to {alerts}")

            bot.stop()
            # debug logs never carry the password or any access token
            text = bot.log_text()
            check(bot.passwords["pc1"] not in text, "the bot logged its password")
            check(me.token not in text and "syt_" not in text, "the bot logged an access token")


mxtest.run(test)
