"""A revoked access token (the operator signed the bot's session out, or the
homeserver forgot it): on restart the bot notices the stored token is
rejected, logs in again with its password file as a new device, and keeps
serving its existing DM."""

import mxtest
from mxtest import check


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

            # sign out every session of the bot's account (as Element's
            # "sign out all other sessions" would)
            me = bot.login_as()
            me.request("POST", "/logout/all", {})

            bot.start()
            second = mxtest.ping_and_wait(op, room, uid, 2)
            # the start-up itself makes no request to check the token: the
            # first /sync is refused and the identity logs in again
            text = bot.log_text()
            check("stored access token rejected" in text, "no word of the rejected token in the log")
            check("e2ee switched to device" in text, "the crypto identity did not move to the new device")
            mxtest.assert_exactly_once(op, room, uid, [first, second])
            check(bot.passwords["pc1"] not in bot.log_text(), "the bot logged its password")
            bot.stop()


mxtest.run(test)
