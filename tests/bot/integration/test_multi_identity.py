"""Many identities in one process: three devices, each in its own DM, each
answers `!ping` and `!status` (naming its own device) exactly once, and no
identity speaks in another's DM."""

import mxtest
from mxtest import check, is_notice

DEVICES = ["pc1", "pc2", "pc3"]


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        devs = [(d, mxtest.unique(f"agent-{d}")) for d in DEVICES]
        with mxtest.Bot(hs, [op.user_id], devs) as bot:
            bot.start()
            rooms = {d: mxtest.open_dm(op, bot, d) for d in DEVICES}
            pings = {d: op.send_text(rooms[d], "!ping") for d in DEVICES}
            for d in DEVICES:
                op.wait_messages(rooms[d], bot.user_id(d), mxtest.is_pong, timeout=60)
            for d in DEVICES:
                op.send_text(rooms[d], "!status")
            for d in DEVICES:
                op.wait_messages(rooms[d], bot.user_id(d),
                                 lambda c, d=d: is_notice(c) and not mxtest.is_pong(c)
                                 and d in c.get("body", ""), timeout=60)
            for d in DEVICES:
                mxtest.assert_exactly_once(op, rooms[d], bot.user_id(d), [pings[d]])
                senders = {e["sender"] for e in op.messages(rooms[d])} - {op.user_id}
                check(senders == {bot.user_id(d)}, f"{d}'s DM has messages from {senders}")
            bot.stop()


mxtest.run(test)
