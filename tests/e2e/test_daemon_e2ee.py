"""The mxfleet daemon in encrypted DMs, against Element's crypto
(matrix-js-sdk + Rust crypto, tests/e2e/peer) on the shared Synapse:
  - the operator (cross-signed) opens an encrypted DM; the bot's device shows
    as signed by its owner; !ping -> encrypted "pong" notice, decrypted
  - SIGTERM restart and SIGKILL crash: round trip again, no UTD, no double reply
  - a second, unverified operator device: its !ping is refused with a notice
    (require_verified_sender), which it decrypts; the bot's next reply
    decrypts on both devices
  - a member leaving makes the bot rotate its outbound session
Run by ctest (label integration;e2e) or by hand with MXFLEET_BIN set."""
import os
import subprocess
import sys

import mxtest
from mxtest import check

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2ee_interop as it  # noqa: E402  (the Node peer driver)


def expect_reply(peer, name, room, bot_uid, pred, what, secs=60):
    r = peer(name, "wait_reply", room, bot_uid, str(secs))
    check(r["encrypted"] and pred(r), f"{what}: got {r}")
    mxtest.log(f"ok - {what}: {r['body'][:80]!r}")
    return r


def is_pong(r):
    return r.get("msgtype") == "m.notice" and r["body"].lower().startswith("pong")


def test():
    peer_dir = subprocess.run([os.path.join(it.HERE, "setup-peer")], check=True, capture_output=True,
                              text=True).stdout.strip()
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        localpart = op.user_id[1:].split(":", 1)[0]
        peer_log = open(os.path.join(mxtest.workdir("e2ee-peer-"), "peer.log"), "w")
        peer = it.Peer(peer_dir, dict(os.environ, MX_HS_URL=hs.url), peer_log)
        try:
            with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                            bot_opts={"require_verified_sender": True}) as bot:
                bot.start()
                uid = bot.user_id()
                peer("a1", "login", localpart, op.password)
                peer("a1", "xsign", op.password)
                room = peer("a1", "create_dm", uid)["room_id"]
                peer("a1", "wait_join", room, uid, "60")
                devs = peer("a1", "devices", uid)["devices"]
                check(len(devs) == 1, f"the bot account has exactly one device: {devs}")
                st = peer("a1", "verify_status", uid, devs[0])
                check(st["signedByOwner"], f"Element sees the bot device as signed by its owner: {st}")

                peer("a1", "send", room, "!ping")
                expect_reply(peer, "a1", room, uid, is_pong, "encrypted !ping -> pong")

                bot.stop()
                bot.start()
                peer("a1", "send", room, "!ping")
                expect_reply(peer, "a1", room, uid, is_pong, "after a restart: pong, no UTD")
                devs2 = peer("a1", "devices", uid)["devices"]
                check(devs2 == devs, f"same bot device after the restart: {devs2}")

                bot.kill()
                bot.start()
                peer("a1", "send", room, "!ping")
                expect_reply(peer, "a1", room, uid, is_pong, "after kill -9: pong, no UTD")

                peer("a2", "login", localpart, op.password)
                peer("a1", "mark_seen", room)
                peer("a2", "mark_seen", room)
                peer("a2", "send", room, "!ping")
                r2 = expect_reply(peer, "a2", room, uid, lambda r: "verif" in r["body"].lower()
                                  and not is_pong(r), "unverified operator device refused with a notice")
                r1 = expect_reply(peer, "a1", room, uid, lambda r: True, "first device sees the refusal")
                check(r1["event_id"] == r2["event_id"], "both devices decrypted the same refusal")
                peer("a1", "send", room, "!ping")
                expect_reply(peer, "a1", room, uid, is_pong, "verified device: pong")
                expect_reply(peer, "a2", room, uid, is_pong, "the second device decrypts the bot's reply")

                other = hs.new_user("bob")
                peer("a1", "invite", room, other.user_id)
                other.join(room)
                peer("a1", "send", room, "!ping")
                expect_reply(peer, "a1", room, uid, is_pong, "pong with a third member present")
                peer("a1", "kick", room, other.user_id)
                mxtest.wait_until(lambda: "will rotate: a member left" in bot.log_text(), 60,
                                  "the bot to schedule a megolm rotation")
                peer("a1", "send", room, "!ping")
                expect_reply(peer, "a1", room, uid, is_pong, "pong after the rotation")
                check("cannot decrypt" not in bot.log_text(), "the bot logged no undecryptable event")
                bot.stop()
        finally:
            peer.close()
            peer_log.close()


mxtest.run(test)
