"""Acceptance: commands sent while the bot was down are answered after the
restart (exactly once), along with nothing else; an operator's invite sent
while it was down is accepted after the restart."""

import mxtest


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))]) as bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            first = mxtest.ping_and_wait(op, room, uid, 1)
            bot.stop()

            while_down = [op.send_text(room, "!ping"), op.send_text(room, "!ping")]
            room2 = op.create_dm(uid)
            bot.start()
            op.wait_membership(room2, uid, "join", timeout=60, forbidden=("leave",))
            mxtest.assert_exactly_once(op, room2, uid, [mxtest.ping_and_wait(op, room2, uid, 1)])
            op.wait_messages(room, uid, mxtest.is_pong, count=3, timeout=60)
            last = mxtest.ping_and_wait(op, room, uid, 4)
            mxtest.assert_exactly_once(op, room, uid, [first] + while_down + [last])
            bot.stop()


mxtest.run(test)
