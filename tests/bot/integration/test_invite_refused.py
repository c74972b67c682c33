"""Acceptance: an invite from a non-operator is refused (the bot's membership
becomes leave, it never joins), while an operator's invite is accepted; the
stranger's `!ping` in a room the bot never joined gets no answer."""

import mxtest
from mxtest import check


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        stranger = hs.new_user("mallory")
        with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))]) as bot:
            bot.start()
            uid = bot.user_id()
            bad = stranger.create_dm(uid)
            stranger.send_text(bad, "!ping")
            stranger.wait_membership(bad, uid, "leave", timeout=60, forbidden=("join",))

            # positive control: the operator's invite in the same run is accepted
            good = mxtest.open_dm(op, bot)
            mxtest.ping_and_wait(op, good, uid, 1)
            check(stranger.membership(bad, uid) == "leave",
                  f"bot membership in the stranger's room is {stranger.membership(bad, uid)}")
            check(not stranger.messages_from(bad, uid), "the bot sent into the stranger's room")
            bot.stop()


mxtest.run(test)
