"""Key requests against the real daemon and Element's crypto (matrix-js-sdk +
Rust crypto): the bot loses its inbound Megolm session for the DM (deleted
from its SQLite store while stopped), the operator's next !ping uses the
same Megolm session, the bot sends m.room_key_request, Element's Rust crypto
re-shares the session as m.forwarded_room_key (it answers devices it shared
the session with), the bot accepts it from the original device, decrypts and
answers exactly one pong, then cancels its request. Meanwhile the operator
is told, once, that their message could not be read yet."""

import os
import sqlite3

import mxtest
from mxtest import check
from peerlib import Peer, bot_events


def pong(r):
    return r.get("body", "").startswith("pong")


def db_rows(path, sql, args=()):
    con = sqlite3.connect(path, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         bot_opts={"require_verified_sender": True})
        work = mxtest.workdir("e2e-keyreq-")
        with bot, Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            bot.start()
            uid = bot.user_id()
            db = os.path.join(bot.dir, "data", "mxfleet.db")
            alice = op.user_id.split(":")[0][1:]
            peer("a", "login", alice, op.password)
            peer("a", "xsign", op.password)
            room = peer("a", "create_dm", uid)["room_id"]
            peer("a", "wait_join", room, uid, 60)
            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)), "no first pong")

            # the bot forgets the operator's session for this room
            bot.stop()
            con = sqlite3.connect(db, timeout=10)
            with con:
                n = con.execute("DELETE FROM e2ee_inbound WHERE acct=? AND room_id=? AND sender_user=?",
                                (uid, room, op.user_id)).rowcount
            con.close()
            check(n >= 1, f"no stored inbound session of {op.user_id} in {room} to delete")
            bot.start()

            peer("a", "send", room, "!ping")
            # the operator hears that the message waits for its key (once),
            # and gets the answer when the key arrives
            got = [peer("a", "wait_reply", room, uid, 90), peer("a", "wait_reply", room, uid, 90)]
            check(sum(1 for r in got if pong(r)) == 1, f"not exactly one pong after the session was lost: {got}")
            check(any("could not read your message" in r.get("body", "") for r in got),
                  f"the operator was not told the message could not be read yet: {got}")
            mine = bot_events(op, room, op.user_id)
            sids = {e["content"].get("session_id") for e in mine if e["type"] == "m.room.encrypted"}
            check(len(sids) == 1, f"the operator's messages did not stay in one megolm session: {sids}")
            log = bot.log_text()
            sid = sids.pop()
            check(f"requested room key {sid} from {op.user_id}" in log, "the bot did not request the lost key")
            check(log.count(f"session {sid} from {op.user_id}") >= 2,
                  "the bot did not store the re-shared session from the operator's device")

            # one more command: its pong being the third reply proves the
            # recovered one was answered exactly once
            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)), "no pong for the third command")
            evs = bot_events(op, room, uid)
            check(len(evs) == 4, f"expected exactly 3 replies and one notice, the bot sent {len(evs)}")

            # the request is cancelled (and forgotten) once the key is in
            mxtest.wait_until(lambda: not db_rows(db, "SELECT 1 FROM e2ee_key_requests WHERE acct=?", (uid,)),
                              60, "key request cancelled and removed")
            bot.stop()


mxtest.run(test)
