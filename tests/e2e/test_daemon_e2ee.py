"""Issue 3 against the real daemon: Element's crypto (matrix-js-sdk + Rust
crypto) talks to an mxfleet identity in an encrypted DM.
- !ping round trip encrypted both ways, no UTD;
- the bot's device is cross-signed by its owner (as Element checks it);
- clean restart and kill -9: no UTD, exactly one reply per command;
- a second operator device decrypts the bot's next reply;
- an operator device not cross-signed is refused with a notice;
- a non-operator in the room gets nothing executed;
- a member leaving rotates the bot's outbound megolm session;
- the bot's timeline holds only encrypted events."""

import os

import mxtest
from mxtest import check
from peerlib import Peer, bot_device, bot_events


def pong(r):
    return r.get("body", "").startswith("pong")


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")          # raw client: counts the bot's events
        mallory = hs.new_user("mallory")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         bot_opts={"require_verified_sender": True})
        work = mxtest.workdir("e2e-")
        with bot, Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            bot.start()
            uid = bot.user_id()
            alice = op.user_id.split(":")[0][1:]
            peer("a", "login", alice, op.password)
            peer("a", "xsign", op.password)
            room = peer("a", "create_dm", uid)["room_id"]
            peer("a", "wait_join", room, uid, 60)

            peer("a", "send", room, "!ping")
            r = peer("a", "wait_reply", room, uid, 60)
            check(pong(r), f"first reply is not a pong: {r}")

            st = peer("a", "verify_status", uid, bot_device(bot))
            check(st.get("signedByOwner"), f"Element does not see the bot's device signed by its owner: {st}")

            # clean restart
            bot.stop()
            bot.start()
            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)), "no pong after a restart")

            # crash right after a command arrives
            peer("a", "send", room, "!ping")
            bot.kill()
            bot.start()
            check(pong(peer("a", "wait_reply", room, uid, 90)), "the command sent before kill -9 got no pong")
            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)), "no pong after kill -9")
            evs = bot_events(op, room, uid)
            check(len(evs) == 4, f"expected exactly 4 replies so far, the bot sent {len(evs)}")
            check(all(e["type"] == "m.room.encrypted" for e in evs), "the bot sent something unencrypted")

            # a second operator device (not cross-signed) reads the next reply
            peer("b", "login", alice, op.password)
            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)), "no pong with two operator devices")
            check(pong(peer("b", "wait_reply", room, uid, 60)), "the second device cannot decrypt the reply")

            # ... but commands from it are refused, with a notice saying why
            peer("b", "send", room, "!ping")
            r = peer("a", "wait_reply", room, uid, 60)
            check(not pong(r) and "verif" in r.get("body", "").lower(),
                  f"an unverified operator device was not refused clearly: {r}")

            # a non-operator in the room gets nothing executed or answered
            mal = mallory.user_id.split(":")[0][1:]
            peer("m", "login", mal, mallory.password)
            peer("a", "invite", room, mallory.user_id)
            peer("m", "join", room)
            peer("m", "send", room, "!ping")
            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)),
                  "the bot answered the non-operator (or nothing) instead of the operator")
            before = bot_events(op, room, uid)[-1]["content"]["session_id"]

            # a member leaves: the next reply uses a new megolm session
            peer("m", "leave", room)
            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)), "no pong after a member left")
            after = bot_events(op, room, uid)[-1]["content"]["session_id"]
            check(after != before, "the bot's megolm session did not rotate when a member left")
            bot.stop()


mxtest.run(test)
