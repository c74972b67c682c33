"""kill -9 after idle syncs: an empty sync keeps its token in memory only
(1,000 idle identities renewing their long-polls must not write), so after a
kill the bot restarts from an older stored token. Nothing may be lost or
doubled by that: a command answered before the idle spell is not answered
again, one sent while the bot is down is answered once, and later ones too.

Also checks the premise: the stored token stays put while empty syncs go by
(mxfleet_syncs_total grows), i.e. the restart really starts further back.

A clean stop (SIGTERM), by contrast, stores the position the empty syncs
reached: the next start continues from there, and still answers nothing
twice."""

import os
import sqlite3

import mxtest
from mxtest import check


def stored_token(bot):
    con = sqlite3.connect(f"file:{os.path.join(bot.dir, 'data', 'mxfleet.db')}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT next_batch FROM identities").fetchone()[0]
    finally:
        con.close()


def syncs(bot):
    return int(bot.metric_total("mxfleet_syncs_total"))


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        # a short long-poll: many empty syncs in a few seconds
        with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                        bot_opts={"sync_timeout_ms": 1000}) as bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            first = mxtest.ping_and_wait(op, room, uid, 1)
            # the batch that carried the !ping wrote; let the reply's echo and
            # receipts settle, then only empty syncs follow
            mxtest.wait_until(lambda: stored_token(bot) is not None, 10, "a stored token")
            # activity the bot cannot see (a room it is not in) moves the
            # server's stream, so its empty syncs carry newer tokens
            elsewhere = op.create_room(name="elsewhere")

            def idle_syncs(n):
                target = syncs(bot) + n

                def step():
                    op.send_text(elsewhere, "not for the bot")
                    return syncs(bot) >= target
                mxtest.wait_until(step, 30, f"{n} more syncs", interval=0.5)

            def quiet_spell():
                token = stored_token(bot)
                idle_syncs(4)
                if stored_token(bot) != token:  # a late echo of our own reply may write once
                    token = stored_token(bot)
                    idle_syncs(4)
                check(stored_token(bot) == token,
                      f"empty syncs wrote the token: {token} became {stored_token(bot)}")
                return token

            token = quiet_spell()
            bot.kill()

            second = op.send_text(room, "!ping")  # while the bot is down
            bot.start()
            op.wait_messages(room, uid, mxtest.is_pong, count=2, timeout=60)
            third = mxtest.ping_and_wait(op, room, uid, 3)
            check(stored_token(bot) != token, "the token was never stored again after the restart")
            mxtest.assert_exactly_once(op, room, uid, [first, second, third])

            token = quiet_spell()
            bot.stop()
            check(stored_token(bot) != token,
                  "a clean stop left the stored token where the empty syncs began")
            bot.start()
            fourth = mxtest.ping_and_wait(op, room, uid, 4)
            mxtest.assert_exactly_once(op, room, uid, [first, second, third, fourth])
            bot.stop()


mxtest.run(test)
