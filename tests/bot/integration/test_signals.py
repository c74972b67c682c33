"""SIGTERM and SIGINT end the daemon with exit 0 within 5 s even mid
long-poll (sync_timeout_ms 30000); a command arriving just before SIGTERM
is either answered before exit or after the restart, exactly once. A restart
with a stored sync token is healthy well before one long-poll (the catch-up
sync does not wait sync_timeout_ms)."""

import signal

import mxtest
from mxtest import check

CATCH_UP_LIMIT_S = 10  # a third of the 30 s long-poll


def restart(bot):
    bot.start()
    check(bot.healthy_after < CATCH_UP_LIMIT_S,
          f"restart took {bot.healthy_after:.1f} s to be healthy (long-polled before catching up?)")


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

            restart(bot)
            bot.stop(signal.SIGINT)

            restart(bot)
            racing = op.send_text(room, "!ping")
            bot.stop(signal.SIGTERM)
            restart(bot)
            op.wait_messages(room, uid, mxtest.is_pong, count=2, timeout=60)
            last = mxtest.ping_and_wait(op, room, uid, 3)
            mxtest.assert_exactly_once(op, room, uid, [first, racing, last])
            bot.stop(signal.SIGTERM)


mxtest.run(test)
