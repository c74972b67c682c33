#!/usr/bin/python3
"""tests/e2e/e2ee_interop.py - E2EE interop against a real Synapse.

Starts Synapse (tests/homeserver/synapse), the C echo bot (mx_api + mx_e2ee
only) and two independent peers: Element's crypto (matrix-js-sdk + Rust
crypto wasm, tests/e2e/peer) and matrix-nio + python-olm. Checks, with
deadlines and no sleeps-and-hope:
  - the bot device is cross-signed: js-sdk reports signedByOwner
  - encrypted DM round trip (!ping -> pong) both ways, no UTD
  - restart (SIGTERM) and crash (SIGKILL mid-sync): round trip again, no UTD,
    no double reply
  - a second peer device decrypts the bot's next reply
  - an operator device not signed by the operator's cross-signing key is
    refused with a notice; a non-operator (nio) gets nothing executed
  - a member leaving rotates the bot's outbound session
  - an encrypted file is downloaded and its hash verifies; a tampered one
    is rejected
Usage: e2ee_interop.py ECHO_BOT_BINARY   (cleans up everything it starts)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SYNAPSE = os.path.join(HERE, "..", "homeserver", "synapse")


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print(f"ok - {what}", flush=True)


class Peer:
    """The Node peer: one command per line, one '@@ {json}' answer per line."""

    def __init__(self, directory, env, log):
        self.p = subprocess.Popen(["node", os.path.join(directory, "peer.mjs")], cwd=directory, env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        self.read()

    def read(self):
        for line in self.p.stdout:
            if line.startswith("@@ "):
                return json.loads(line[3:])
        raise Fail("peer exited")

    def __call__(self, *words, expect_ok=True):
        self.p.stdin.write(" ".join(words) + "\n")
        self.p.stdin.flush()
        r = self.read()
        if expect_ok and not r.get("ok"):
            raise Fail(f"peer {' '.join(words[:2])}: {r.get('error')}")
        return r

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()
            self.p.wait()


class Bot:
    def __init__(self, binary, env, directory):
        self.binary, self.env, self.dir = binary, env, directory
        self.log = os.path.join(directory, "bot.log")
        self.p = None

    def start(self):
        """Starts the bot and waits for this run's "ready" line; log lines of
        this run begin at self.run_start."""
        self.run_start = len(self.text()) if os.path.exists(self.log) else 0
        self.logf = open(self.log, "a")
        self.p = subprocess.Popen([self.binary], env=self.env, stdout=self.logf, stderr=subprocess.STDOUT)
        self.wait_log("echo-bot: ready", 60, start_at=self.run_start)

    def stop(self, sig=signal.SIGTERM):
        rc = None
        if self.p and self.p.poll() is None:
            self.p.send_signal(sig)
            rc = self.p.wait(timeout=30)
        self.p = None
        self.logf.close()
        # a clean stop exits 0; sanitizer reports (leaks, UB) fail the test
        if sig == signal.SIGTERM:
            check(rc == 0, f"bot stopped cleanly on SIGTERM (exit {rc})")
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(bad not in self.text(), f"no '{bad}' in the bot log")

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_log(self, needle, secs, start_at=0):
        deadline = time.time() + secs
        while time.time() < deadline:
            if needle in self.text()[start_at:]:
                return True
            if self.p and self.p.poll() is not None:
                raise Fail(f"bot exited ({self.p.returncode}) waiting for '{needle}'")
            time.sleep(0.1)
        raise Fail(f"bot log has no '{needle}' after {secs}s")


def nio_peer(hs, user, pw, room, store, text):
    """Second independent peer (matrix-nio + python-olm): joins, sends text,
    prints the bot's decrypted reply."""
    code = r'''
import asyncio, sys, json
from nio import AsyncClient, AsyncClientConfig, RoomMessageText, RoomMessageNotice, MegolmEvent
hs, user, pw, room, store, text = sys.argv[1:7]
async def main():
    c = AsyncClient(hs, user, store_path=store, config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True))
    await c.login(pw)
    await c.join(room)
    await c.sync(timeout=3000, full_state=True)
    if c.should_upload_keys: await c.keys_upload()
    if c.should_query_keys: await c.keys_query()
    for dev in c.device_store.active_user_devices("@bot:mxfleet.test"): c.verify_device(dev)
    r = await c.room_send(room, "m.room.message", {"msgtype": "m.text", "body": text}, ignore_unverified_devices=True)
    mine = r.event_id
    deadline = asyncio.get_event_loop().time() + 60
    result = None
    while result is None and asyncio.get_event_loop().time() < deadline:
        s = await c.sync(timeout=2000)
        jr = s.rooms.join.get(room) if hasattr(s, "rooms") else None
        for ev in (jr.timeline.events if jr else []):
            if ev.sender == "@bot:mxfleet.test" and isinstance(ev, (RoomMessageText, RoomMessageNotice)):
                result = {"body": ev.body}
            elif ev.sender == "@bot:mxfleet.test" and isinstance(ev, MegolmEvent):
                result = {"utd": ev.event_id}
    print(json.dumps(result or {"timeout": True}))
    await c.close()
asyncio.run(main())
'''
    os.makedirs(store, exist_ok=True)
    r = subprocess.run(["/usr/bin/python3", "-c", code, hs, user, pw, room, store, text], capture_output=True,
                       text=True, timeout=120)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise Fail(f"nio peer failed: {r.stderr[-2000:]}")
    return json.loads(lines[-1])


def http(url, method, path, token, body):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": "Bearer " + token} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def quote(s):
    return urllib.parse.quote(s, safe="")


def upload_keyless_device(url, login):
    """Device keys (python-olm, self-signed) but no one-time or fallback keys."""
    import olm
    acc = olm.Account()
    dev, uid = login["device_id"], login["user_id"]
    keys = {"user_id": uid, "device_id": dev,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{dev}": acc.identity_keys["curve25519"],
                     f"ed25519:{dev}": acc.identity_keys["ed25519"]}}
    canonical = json.dumps(keys, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    keys["signatures"] = {uid: {f"ed25519:{dev}": acc.sign(canonical)}}
    http(url, "POST", "/_matrix/client/v3/keys/upload", login["access_token"], {"device_keys": keys})


def bot_token(bot):
    import sqlite3
    db = sqlite3.connect(os.path.join(bot.dir, "bot.db"))
    try:
        return db.execute("SELECT v FROM echo_state WHERE k='token'").fetchone()[0]
    finally:
        db.close()


def round_trip(peer, bot, name, room, text, expect, secs=60):
    peer(name, "send", room, text)
    r = peer(name, "wait_reply", room, "@bot:mxfleet.test", str(secs))
    check(r["body"] == expect and r["encrypted"], f"{name}: '{text}' -> '{r['body']}' (encrypted, decrypted by js-sdk)")
    return r


def scenario(work, binary, peer_dir):
    hsdir = os.path.join(work, "hs")
    url = subprocess.run([SYNAPSE, "start", hsdir], check=True, capture_output=True, text=True).stdout.strip()
    for u, pw in (("bot", "botpw"), ("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw"), ("dave", "davepw")):
        subprocess.run([SYNAPSE, "register", hsdir, u, pw], check=True)
    env = dict(os.environ, MX_HS_URL=url, BOT_DIR=os.path.join(work, "bot"), BOT_USER="bot", BOT_PW="botpw",
               OPERATORS="@alice:mxfleet.test,@carol:mxfleet.test", REQUIRE_VERIFIED="1",
               CRASH_ON="crash-here")
    os.makedirs(env["BOT_DIR"])
    bot = Bot(binary, env, env["BOT_DIR"])
    bot.start()
    device = bot.text().split("echo-bot: ready @bot:mxfleet.test ")[1].split()[0]
    peer_log = open(os.path.join(work, "peer.log"), "w")
    peer = Peer(peer_dir, dict(os.environ, MX_HS_URL=url), peer_log)
    try:
        peer("a1", "login", "alice", "alicepw")
        peer("a1", "xsign", "alicepw")
        room = peer("a1", "create_dm", "@bot:mxfleet.test")["room_id"]
        peer("a1", "wait_join", room, "@bot:mxfleet.test", "60")
        st = peer("a1", "verify_status", "@bot:mxfleet.test", device)
        check(st["signedByOwner"], f"js-sdk sees the bot device {device} as signed by its owner")
        round_trip(peer, bot, "a1", room, "!ping", "pong")
        round_trip(peer, bot, "a1", room, "hello", "echo: hello")

        # restart: same device, same keys, no UTD either way, no double reply.
        # Also pretend the cross-signing upload's 200 was lost in a crash:
        # the bot re-uploads the same keys and still signs its device.
        bot.stop(signal.SIGTERM)
        import sqlite3
        db = sqlite3.connect(os.path.join(bot.dir, "bot.db"))
        db.execute("UPDATE e2ee_xsign SET uploaded=0")
        db.commit()
        db.close()
        bot.start()
        check("cross-signing ready" in bot.text()[bot.run_start:], "cross-signing re-upload after a lost 200 is fine")
        st = peer("a1", "verify_status", "@bot:mxfleet.test", device)
        check(st["signedByOwner"], "the bot device is still signed by its owner after the restart")
        round_trip(peer, bot, "a1", room, "!ping", "pong")
        check(bot.text().count("replied 'pong'") == 2, "no double reply after a restart")

        # crash: the bot SIGKILLs itself inside the sync transaction that
        # carries the message; restarted, it redoes that sync: no loss, no
        # UTD, exactly one reply
        open(os.path.join(bot.dir, "crash-once"), "w").close()
        peer("a1", "send", room, "crash-here")
        deadline = time.time() + 60
        while bot.p.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        check(bot.p.poll() == -signal.SIGKILL, "the bot died with SIGKILL mid-sync")
        bot.stop(signal.SIGKILL)
        bot.start()
        r = peer("a1", "wait_reply", room, "@bot:mxfleet.test", "60")
        check(r["body"] == "echo: crash-here", f"after the crash the message is handled: {r['body']}")
        round_trip(peer, bot, "a1", room, "!ping", "pong")
        check(bot.text().count("replied 'echo: crash-here'") == 1, "the crashed-on event got exactly one reply")

        # a second device of the operator, not cross-signed: it decrypts the
        # bot's replies, but its commands are refused with a notice
        peer("a2", "login", "alice", "alicepw")
        peer("a1", "mark_seen", room)
        peer("a2", "mark_seen", room)
        # the new device's first message brings a new Olm session (pre-key
        # message spending a one-time key) and a new room key in the same
        # sync: crash inside that transaction, nothing may be lost
        open(os.path.join(bot.dir, "crash-once"), "w").close()
        peer("a2", "send", room, "crash-here")
        deadline = time.time() + 60
        while bot.p.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        check(bot.p.poll() == -signal.SIGKILL, "the bot died with SIGKILL mid-sync (new olm session + room key)")
        bot.stop(signal.SIGKILL)
        bot.start()
        r2 = peer("a2", "wait_reply", room, "@bot:mxfleet.test", "60")
        check(r2["body"].startswith("refused: your session"), f"pre-key message and room key survived: {r2['body']}")
        peer("a1", "wait_reply", room, "@bot:mxfleet.test", "60")
        peer("a2", "send", room, "!ping")
        r2 = peer("a2", "wait_reply", room, "@bot:mxfleet.test", "60")
        check(r2["body"].startswith("refused: your session") and "not verified" in r2["body"],
              f"unverified operator device refused: {r2['body']}")
        r1 = peer("a1", "wait_reply", room, "@bot:mxfleet.test", "60")
        check(r1["body"] == r2["body"], "the first device decrypts the same reply")
        round_trip(peer, bot, "a1", room, "!ping", "pong")
        r2 = peer("a2", "wait_reply", room, "@bot:mxfleet.test", "60")
        check(r2["body"] == "pong", "the second device decrypts the bot's next reply")

        # encrypted attachments
        blob = os.path.join(work, "blob.bin")
        with open(blob, "wb") as f:
            f.write(os.urandom(100000))
        want = peer("a1", "send_file", room, blob)["sha256"]
        r = peer("a1", "wait_reply", room, "@bot:mxfleet.test", "60")
        check(r["body"] == f"file sha256 {want}", "encrypted file downloaded (authenticated media), hash verified")
        peer("a1", "send_file", room, blob, "tamper")
        r = peer("a1", "wait_reply", room, "@bot:mxfleet.test", "60")
        check(r["body"].startswith("file rejected:") and "sha256" in r["body"], f"tampered file rejected: {r['body']}")

        # non-operator via the second, independent peer (matrix-nio)
        peer("a1", "invite", room, "@bob:mxfleet.test")
        res = nio_peer(url, "@bob:mxfleet.test", "bobpw", room, os.path.join(work, "nio"), "!ping")
        check(res.get("body", "").startswith("refused: @bob:mxfleet.test is not an operator"),
              f"nio peer decrypts the bot's refusal; nothing executed: {res}")
        peer("a1", "wait_reply", room, "@bot:mxfleet.test", "60")  # the same refusal, seen by alice

        # a device with no one-time and no fallback key: the bot tells it
        # m.no_olm exactly once (no room_id/session_id), and keeps going
        dave = http(url, "POST", "/_matrix/client/v3/login", None, {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "dave"},
            "password": "davepw"})
        upload_keyless_device(url, dave)
        peer("a1", "invite", room, "@dave:mxfleet.test")
        http(url, "POST", f"/_matrix/client/v3/rooms/{quote(room)}/join", dave["access_token"], {})
        since = None
        withheld = []
        for i in range(2):
            peer("a1", "mark_seen", room)
            round_trip(peer, bot, "a1", room, "!ping", "pong")
            sync = http(url, "GET", "/_matrix/client/v3/sync?timeout=0" + (f"&since={quote(since)}" if since else ""),
                        dave["access_token"], None)
            since = sync["next_batch"]
            withheld += [e for e in sync.get("to_device", {}).get("events", [])
                         if e["type"] == "m.room_key.withheld" and e["sender"] == "@bot:mxfleet.test"]
        check(len(withheld) == 1 and withheld[0]["content"].get("code") == "m.no_olm"
              and "session_id" not in withheld[0]["content"],
              f"a keyless device got exactly one m.no_olm: {[w['content'] for w in withheld]}")
        peer("a1", "kick", room, "@dave:mxfleet.test")

        # a member leaves -> the bot's outbound session rotates
        before = bot.text().count("new outbound megolm session")
        peer("a1", "kick", room, "@bob:mxfleet.test")
        bot.wait_log("will rotate: a member left", 60)
        round_trip(peer, bot, "a1", room, "!ping", "pong")
        check(bot.text().count("new outbound megolm session") == before + 1, "outbound session rotated after a leave")

        # drain the bot's one-time keys (and then its fallback key) with
        # /keys/claim: it re-publishes and replaces the used fallback key;
        # a brand-new device can still open an Olm session with it
        published = bot.text().count("one-time/fallback keys")
        token = http(url, "POST", "/_matrix/client/v3/login", None, {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "carol"},
            "password": "carolpw"})["access_token"]
        fallback_seen = False
        for _ in range(60):
            r = http(url, "POST", "/_matrix/client/v3/keys/claim", token,
                     {"one_time_keys": {"@bot:mxfleet.test": {device: "signed_curve25519"}}})
            keys = r["one_time_keys"].get("@bot:mxfleet.test", {}).get(device, {})
            fallback_seen = fallback_seen or any(k.get("fallback") for k in keys.values())
        check(fallback_seen, "draining reached the bot's fallback key")
        deadline = time.time() + 60
        while bot.text().count("one-time/fallback keys") < published + 1 and time.time() < deadline:
            time.sleep(0.2)
        counts = http(url, "POST", "/_matrix/client/v3/keys/upload", bot_token(bot), {})["one_time_key_counts"]
        check(counts.get("signed_curve25519", 0) >= 25, f"the bot re-published one-time keys: {counts}")
        peer("a1", "invite", room, "@carol:mxfleet.test")
        peer("c1", "login", "carol", "carolpw")
        peer("c1", "join", room)
        peer("c1", "mark_seen", room)
        peer("c1", "send", room, "!ping")
        r = peer("c1", "wait_reply", room, "@bot:mxfleet.test", "60")
        check(r["body"].startswith("refused: your session"), f"new device after draining talks to the bot: {r['body']}")
        check("UTD" not in bot.text(), "the bot logged no undecryptable event")

        # policy: exclude devices not cross-signed by their owner. After the
        # next rotation the unverified a2 gets m.unverified, a1 the key
        bot.env["EXCLUDE_INSECURE"] = "1"
        bot.stop(signal.SIGTERM)
        bot.start()
        peer("a1", "kick", room, "@carol:mxfleet.test")
        bot.wait_log("will rotate: a member left", 60, start_at=bot.run_start)
        peer("a1", "mark_seen", room)
        peer("a2", "mark_seen", room)
        round_trip(peer, bot, "a1", room, "!ping", "pong")
        r = peer("a2", "wait_utd", room, "@bot:mxfleet.test", "30", "MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE")
        check(r["reason"] == "MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE",
              f"the unverified device is told why it cannot decrypt: {r}")

        # unwedging: the bot loses its Olm sessions (corrupted store). The
        # next room key from js-sdk arrives over a session the bot no longer
        # has; the bot answers with m.dummy over a fresh session, and the
        # room key after that decrypts again.
        bot.stop(signal.SIGTERM)
        import sqlite3
        db = sqlite3.connect(os.path.join(bot.dir, "bot.db"))
        db.execute("DELETE FROM e2ee_olm")
        db.commit()
        db.close()
        bot.start()
        peer("b1", "login", "bob", "bobpw")

        def js_rotates(n):
            """A device that holds alice's session leaves: js-sdk rotates."""
            peer("a1", "invite", room, "@bob:mxfleet.test")
            peer("b1", "join", room)
            peer("a1", "send", room, f"quiet:while-bob-is-here-{n}")
            peer("a1", "kick", room, "@bob:mxfleet.test")
        js_rotates(1)
        peer("a1", "mark_seen", room)
        peer("a1", "send", room, "quiet:lost-to-the-wedge")
        bot.wait_log("sent m.dummy to @alice:mxfleet.test", 60, start_at=bot.run_start)
        js_rotates(2)
        peer("a1", "mark_seen", room)
        round_trip(peer, bot, "a1", room, "after-unwedge", "echo: after-unwedge")

        # the whole store is lost: the bot logs in as a new device, replaces
        # its cross-signing keys with its password (UIA) and signs the new
        # device; Element's crypto trusts it and talks to it again
        bot.stop(signal.SIGTERM)
        pw_file = os.path.join(bot.dir, "bot.pw")
        with open(pw_file, "w") as f:
            f.write("botpw\n")
        bot.env["BOT_PW_FILE"] = pw_file  # UIA password read from a file, only when needed
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(os.path.join(bot.dir, "bot.db" + suffix)):
                os.unlink(os.path.join(bot.dir, "bot.db" + suffix))
        bot.start()
        new_device = bot.text()[bot.run_start:].split("echo-bot: ready @bot:mxfleet.test ")[1].split()[0]
        check(new_device != device, f"a new bot device after the store was lost: {new_device}")
        check("replaced this account's cross-signing keys" in bot.text()[bot.run_start:],
              "the bot replaced its cross-signing keys with UIA")
        st = peer("a1", "verify_status", "@bot:mxfleet.test", new_device)
        check(st["signedByOwner"], f"the new bot device is signed by its (new) owner keys: {st}")
        peer("a1", "mark_seen", room)
        round_trip(peer, bot, "a1", room, "after-store-loss", "echo: after-store-loss")
    finally:
        peer.close()
        peer_log.close()
        if bot.p:
            bot.stop(signal.SIGTERM)
        subprocess.run([SYNAPSE, "stop", hsdir])


def main():
    binary = os.path.abspath(sys.argv[1])
    peer_dir = subprocess.run([os.path.join(HERE, "setup-peer")], check=True, capture_output=True,
                              text=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="mxfleet-e2ee-")
    ok = False
    try:
        scenario(work, binary, peer_dir)
        ok = True
    except Fail as e:
        print(f"not ok - {e}", flush=True)
    finally:
        if not ok:
            for name in ("bot/bot.log", "peer.log"):
                p = os.path.join(work, name)
                if os.path.exists(p):
                    print(f"---- {name} (tail)")
                    print(open(p).read()[-6000:])
        if ok or not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
