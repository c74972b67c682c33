"""The Node peer (matrix-js-sdk + Rust crypto, Element's stack) for tests
that drive the real mxfleet daemon: one command per line on stdin, one
'@@ {json}' answer per line on stdout (see peer/peer.mjs)."""

import json
import os
import subprocess

import mxtest

HERE = os.path.dirname(os.path.abspath(__file__))


def peer_dir():
    out = subprocess.run([os.path.join(HERE, "setup-peer")], capture_output=True, text=True, check=True)
    return out.stdout.strip()


class Peer:
    def __init__(self, hs_url, log_path):
        env = dict(os.environ, MX_HS_URL=hs_url)
        d = peer_dir()
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(["node", os.path.join(d, "peer.mjs")], cwd=d, env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log, text=True)
        self._read()  # {"ready": true} once the sdk has loaded

    def _read(self):
        for line in self.p.stdout:
            if line.startswith("@@ "):
                return json.loads(line[3:])
        raise mxtest.TestFailure("the js-sdk peer exited")

    def __call__(self, *words, ok=True):
        self.p.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.p.stdin.flush()
        r = self._read()
        if ok and not r.get("ok"):
            raise mxtest.TestFailure(f"peer {' '.join(str(w) for w in words[:2])}: {r.get('error')}")
        return r

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()
            self.p.wait()
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
