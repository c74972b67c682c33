"""Issue 14.1 against the real daemon: answering an encrypted !ping costs no
request but the send itself. Room members are tracked from /sync (seeded
once with GET /members when the bot first encrypts to the room), not
fetched before every reply. The bot reaches Synapse only through a
recording proxy (tests/faults/faultproxy.py); Element's crypto
(matrix-js-sdk + Rust) is the operator.
- after the first reply, further !pings make no GET /members;
- a member who joins later gets the room key from the tracked list (reads
  the bot's next reply), still without GET /members;
- a member leaving still rotates the bot's megolm session;
- /metrics exports the bot-side handling of each !ping (sync response
  received to the reply's PUT) as mxfleet_ping_reply_seconds."""

import os
import re
import sys
import time

import mxtest
from mxtest import check, log
from peerlib import Peer, bot_events, operator, ping_in_new_dm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
from faultproxy import FaultProxy, proxied_bot  # noqa: E402


def pong(r):
    return r.get("body", "").startswith("pong")


def members_requests(proxy, since):
    return [e for e in proxy.entries(since) if e["path"].endswith("/members")]


def test():
    hs = mxtest.Homeserver.from_env()
    with hs, FaultProxy(hs.url) as proxy:
        op = hs.new_user("alice")
        mallory = hs.new_user("mallory")
        bot = proxied_bot(hs, proxy, op)
        work = mxtest.workdir("e2e-reply-")
        with bot, Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            bot.start()
            uid = bot.user_id()
            operator(peer, op)
            room = ping_in_new_dm(peer, uid)
            seeded = len(members_requests(proxy, 0))
            log(f"GET /members before steady state: {seeded}")

            # the proxy stamps a request when it arrives but logs it when it ends:
            # the last entry may be a long-poll that began before the seeding
            # GET /members, so the clock marks where steady state begins
            t0 = time.monotonic()
            for _ in range(3):
                peer("a", "send", room, "!ping")
                check(pong(peer("a", "wait_reply", room, uid, 60)), "no pong in steady state")
            got = members_requests(proxy, t0)
            check(not got, f"the reply path fetched the member list {len(got)} times: {got[:2]}")
            status, text, _ = bot.metrics()
            count = re.search(r'^mxfleet_ping_reply_seconds_count\{identity="pc1"\} (\d+)$', text, re.M)
            check(status == 200 and count and int(count.group(1)) >= 4,
                  f"/metrics does not count the 4 pings' handling: {count and count.group(0)}")
            total = re.search(r'^mxfleet_ping_reply_seconds_sum\{identity="pc1"\} ([0-9.]+)$', text, re.M)
            check(total and 0 < float(total.group(1)) < 60, f"implausible handling time sum: {total}")

            # a member joining later is known from /sync: they read the next reply
            operator(peer, mallory, name="m")  # signed in and cross-signed, as Element sets up
            peer("a", "invite", room, mallory.user_id)
            peer("m", "join", room)
            t1 = time.monotonic()
            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)), "no pong after a member joined")
            check(pong(peer("m", "wait_reply", room, uid, 60)),
                  "the member who joined later cannot decrypt the bot's reply (not given the room key)")
            before = bot_events(op, room, uid)[-1]["content"]["session_id"]

            # ... and leaving rotates the session
            peer("m", "leave", room)
            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)), "no pong after a member left")
            after = bot_events(op, room, uid)[-1]["content"]["session_id"]
            check(after != before, "the bot's megolm session did not rotate when a member left")
            got = members_requests(proxy, t1)
            check(not got, f"a membership change made the bot fetch the member list: {got[:2]}")
            bot.stop()


mxtest.run(test)
