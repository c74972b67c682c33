"""Issue 10.4 for existing deployments: an operator-alerts room that an
older mxfleet created unencrypted gets end-to-end encryption switched on when
the bot starts (logged once), so commands there are no longer refused and
alerts go out encrypted; a second start changes nothing."""

import mxtest
from mxtest import check


def encryption(client, room):
    try:
        return client.request("GET", f"/rooms/{mxtest.q(room)}/state/m.room.encryption/")
    except mxtest.MatrixError as e:
        if e.status == 404:
            return None
        raise


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        local = mxtest.unique("alerts-old")
        alias = f"#{local}:{hs.name}"
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))], alerts_room=alias,
                         bot_opts={"require_verified_sender": True})
        own = bot.login_as()
        # what the previous release made: a private room under the alias, no encryption
        room = own.request("POST", "/createRoom", {"preset": "private_chat", "room_alias_name": local,
                                                   "invite": [op.user_id]})["room_id"]
        check(encryption(own, room) is None, "the old-style alerts room is encrypted already")
        with bot:
            bot.start()
            enc = mxtest.wait_until(lambda: encryption(own, room), 30, "encryption enabled in the alerts room")
            check(enc.get("algorithm") == "m.megolm.v1.aes-sha2", f"unexpected encryption state: {enc}")
            mxtest.wait_until(lambda: "was not encrypted: enabled end-to-end encryption" in bot.log_text(), 10,
                              "the log line saying encryption was enabled")
            bot.stop()
            bot.start()
            bot.wait_healthy()
            mxtest.wait_until(lambda: bot.log_text().count(f"alerts room {alias} is {room}") == 2, 30,
                              "the alerts room joined again")
            bot.stop()
            check(bot.log_text().count("was not encrypted") == 1, "encryption was enabled twice")


mxtest.run(test)
