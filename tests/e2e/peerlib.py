"""The Node peer (matrix-js-sdk + Rust crypto, Element's stack) for tests
that drive the real mxfleet daemon: one command per line on stdin, one
'@@ {json}' answer per line on stdout (see peer/peer.mjs)."""

import os
import subprocess
import sys

import mxtest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2ee_interop as it  # noqa: E402  (the Node peer driver)

HERE = os.path.dirname(os.path.abspath(__file__))


def peer_dir():
    out = subprocess.run([os.path.join(HERE, "setup-peer")], capture_output=True, text=True, check=True)
    return out.stdout.strip()


class Peer(it.Peer):
    """e2ee_interop's driver with a log file of its own and mxtest failures."""

    def __init__(self, hs_url, log_path):
        self.log = open(log_path, "ab")
        super().__init__(peer_dir(), dict(os.environ, MX_HS_URL=hs_url), self.log)

    def __call__(self, *words, ok=True):
        try:
            return super().__call__(*(str(w) for w in words), expect_ok=ok)
        except it.Fail as e:
            raise mxtest.TestFailure(str(e))

    def close(self):
        super().close()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bot_device(bot, name=None):
    """The Matrix device the daemon logged in as (from its log)."""
    import re
    uid = bot.user_id(name)
    m = re.findall(r"logged in as " + re.escape(uid) + r", device ([A-Z0-9]+)", bot.log_text())
    mxtest.check(m, f"no login line for {uid} in the bot's log")
    return m[-1]


def bot_events(client, room_id, sender):
    """Raw timeline events from sender (encrypted ones included), oldest first."""
    evs, token = [], None
    while True:
        q = {"dir": "b", "limit": "100"}
        if token:
            q["from"] = token
        resp = client.request("GET", f"/rooms/{mxtest.q(room_id)}/messages", query=q)
        chunk = resp.get("chunk", [])
        evs.extend(e for e in chunk if e.get("sender") == sender and e.get("type") in
                   ("m.room.encrypted", "m.room.message"))
        token = resp.get("end")
        if not chunk or not token:
            break
    return list(reversed(evs))


def operator(peer, client, name="a"):
    """Signs the mxtest user `client` in as Element device `name` and
    cross-signs it: a verified operator session, as after Element's setup."""
    peer(name, "login", client.user_id.split(":")[0][1:], client.password)
    peer(name, "xsign", client.password)


def ping_in_new_dm(peer, bot_uid, secs=60, name="a"):
    """Opens an encrypted DM with bot_uid, sends !ping and checks the reply
    is an encrypted pong; returns the room ID."""
    room = peer(name, "create_dm", bot_uid)["room_id"]
    peer(name, "wait_join", room, bot_uid, secs)
    peer(name, "send", room, "!ping")
    r = peer(name, "wait_reply", room, bot_uid, secs)
    mxtest.check(r.get("body", "").startswith("pong") and r.get("encrypted"), f"no encrypted pong: {r}")
    return room


def next_matching(peer, room, sender, pred, secs, seen, name="a"):
    """The next decrypted message from sender whose body matches pred; every
    message read on the way is appended to seen."""
    import time
    deadline = time.monotonic() + secs
    while True:
        left = int(deadline - time.monotonic())
        mxtest.check(left > 0, f"no matching message from {sender} within {secs} s; "
                               f"got {[s['body'][:70] for s in seen]}")
        r = peer(name, "wait_reply", room, sender, left)
        seen.append(r)
        if pred(r.get("body", "")):
            return r


def notified(client, event_id):
    """Whether Synapse lists event_id in client's account's /notifications
    (what push gateways, hence phones, were sent)."""
    resp = client.request("GET", "/notifications", query={"limit": "100"})
    return any(n["event"]["event_id"] == event_id for n in resp.get("notifications", []))
