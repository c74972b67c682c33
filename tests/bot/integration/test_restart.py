"""Acceptance: after a clean restart (SIGTERM, start again) `!ping` gets
exactly one reply and the `!ping` handled before the restart is not answered
again."""

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

            bot.start()
            second = mxtest.ping_and_wait(op, room, uid, 2)
            # A third command after the restart's catch-up: any replay of the
            # first ping would be handled before it.
            third = mxtest.ping_and_wait(op, room, uid, 3)
            mxtest.assert_exactly_once(op, room, uid, [first, second, third])
            bot.stop()


mxtest.run(test)
