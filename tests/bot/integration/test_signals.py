"""SIGTERM and SIGINT end the daemon with exit 0 within 5 s even mid
long-poll (sync_timeout_ms 30000); a command arriving just before SIGTERM
is either answered before exit or after the restart, exactly once."""

import signal

import mxtest


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                        bot_opts={"sync_timeout_ms": 30000}) as bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            first = mxtest.ping_and_wait(op, room, uid, 1)
            bot.stop(signal.SIGTERM)

            bot.start()
            bot.stop(signal.SIGINT)

            bot.start()
            racing = op.send_text(room, "!ping")
            bot.stop(signal.SIGTERM)
            bot.start()
            op.wait_messages(room, uid, mxtest.is_pong, count=2, timeout=60)
            last = mxtest.ping_and_wait(op, room, uid, 3)
            mxtest.assert_exactly_once(op, room, uid, [first, racing, last])
            bot.stop(signal.SIGTERM)


mxtest.run(test)
