"""Acceptance: with Synapse's message rate limit set low (rc_message 2/s on a
private instance), a burst of 30 `!ping`s gets 30 replies, none duplicated:
the bot honours 429 retry_after_ms and retries sends with the same txnId.
The operator's own rate limit is lifted so only the bot is throttled."""

import mxtest

BURST = 30


def test():
    mxtest.mxfleet_bin()  # fail before paying for a private Synapse
    hs = mxtest.Homeserver.start_own(rc_message=2, name="burst")
    with hs:
        op = hs.new_user("alice", admin=True)
        op.unlimit()
        with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))]) as bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            sent = [op.send_text(room, "!ping") for _ in range(BURST)]
            op.wait_messages(room, uid, mxtest.is_pong, count=BURST, timeout=180)
            sent.append(mxtest.ping_and_wait(op, room, uid, BURST + 1, timeout=60))
            mxtest.assert_exactly_once(op, room, uid, sent)
            bot.stop()


mxtest.run(test)
