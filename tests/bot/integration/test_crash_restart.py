"""Exactly once across a crash: the bot is SIGKILLed right after answering
(nothing persisted on the way out), restarted, and neither the answered
command is answered again nor the next one missed."""

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
            bot.kill()

            bot.start()
            second = mxtest.ping_and_wait(op, room, uid, 2)
            third = mxtest.ping_and_wait(op, room, uid, 3)
            mxtest.assert_exactly_once(op, room, uid, [first, second, third])
            bot.stop()


mxtest.run(test)
