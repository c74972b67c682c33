"""mxtest - a small stdlib-only Matrix client for mxfleet's integration tests.

Owns: talking to a test Synapse (register via the shared-secret admin API,
login, DMs, sends with txnIds, polling for replies with deadlines) and running
the mxfleet daemon under test (config + password files in a temp dir, start,
wait for /health, SIGTERM/SIGKILL). Test-only code: it must not import
anything outside the Python standard library. Every wait has a deadline; a
missed deadline raises TestFailure with what was seen so far.
"""

import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SYNAPSE_SCRIPT = os.path.join(HERE, "synapse")


class TestFailure(AssertionError):
    pass


class MatrixError(Exception):
    def __init__(self, status, body, what):
        self.status = status
        self.body = body
        self.errcode = body.get("errcode") if isinstance(body, dict) else None
        super().__init__(f"{what}: HTTP {status}: {body}")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def wait_until(fn, timeout, what, interval=0.2):
    """Calls fn() until it returns a truthy value; returns that value.
    Raises TestFailure naming `what` when `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port():
    """A free 127.0.0.1 port below the kernel's ephemeral range (32768+), so
    outgoing connections cannot take it before the server binds it."""
    import random
    for _ in range(200):
        port = random.randrange(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise TestFailure("no free port in 20000-32000")


_workdirs = []


def workdir(prefix):
    """A fresh directory under MX_TEST_TMP (the build tree under ctest);
    removed when the test passes, kept (and named) when it fails."""
    base = os.environ.get("MX_TEST_TMP")
    if base:
        os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    _workdirs.append(d)
    return d


def unique(prefix):
    """A user-name-safe unique name so concurrent tests never share accounts."""
    return f"{prefix}-{secrets.token_hex(3)}"


# ---------------------------------------------------------------- HTTP

def http(method, url, body=None, token=None, timeout=30, raw=False):
    """One HTTP request. Returns (status, parsed JSON or text, headers).
    Never raises for HTTP errors; raises OSError for network failures."""
    data = None
    headers = {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text, hdrs = r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        status, text, hdrs = e.code, e.read().decode(), dict(e.headers)
    if raw:
        return status, text, hdrs
    try:
        return status, json.loads(text) if text else {}, hdrs
    except json.JSONDecodeError:
        return status, text, hdrs


# ---------------------------------------------------------------- homeserver

class Homeserver:
    """A running test Synapse described by the env file `synapse start` writes."""

    def __init__(self, env_file, owned_dir=None):
        env = {}
        with open(env_file) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                env[k] = v
        self.url = env["MX_HS_URL"]
        self.name = env["MX_HS_NAME"]
        self.secret = env["MX_HS_SECRET"]
        self._owned_dir = owned_dir

    @classmethod
    def at(cls, url, name, secret=""):
        """A homeserver known only by URL and server name (e.g. one that does
        not answer, or one started outside mxtest); register() needs secret."""
        hs = cls.__new__(cls)
        hs.url, hs.name, hs.secret, hs._owned_dir = url, name, secret, None
        return hs

    @classmethod
    def from_env(cls):
        """The shared fixture instance (ctest passes MX_HS_ENV), or, when run
        by hand without one, a private instance stopped by stop()."""
        env_file = os.environ.get("MX_HS_ENV")
        if env_file:
            check(os.path.exists(env_file),
                  f"{env_file}: no such file (did the synapse fixture start?)")
            return cls(env_file)
        return cls.start_own()

    @classmethod
    def start_own(cls, rc_message=None, name=None):
        """Starts a private Synapse (e.g. with a low rc_message); call stop().
        With a name and MX_TEST_TMP the directory is fixed, so an instance
        leaked by a killed run is stopped by the next run's start."""
        base = os.environ.get("MX_TEST_TMP")
        if name and base:
            directory = os.path.join(base, f"synapse-{name}")
        else:
            directory = workdir("synapse-")
        cmd = [SYNAPSE_SCRIPT, "start", directory]
        if rc_message is not None:
            cmd += ["--rc-message", str(rc_message)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return cls(os.path.join(directory, "env"), owned_dir=directory)

    def stop(self):
        if self._owned_dir:
            subprocess.run([SYNAPSE_SCRIPT, "stop", self._owned_dir], check=False)
            self._owned_dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def user_id(self, localpart):
        return f"@{localpart}:{self.name}"

    def register(self, localpart, password=None, admin=False):
        """Registers through the shared-secret admin API (no chroot start-up,
        so hundreds of users take seconds). Returns (user_id, password)."""
        password = password or secrets.token_urlsafe(18)
        url = f"{self.url}/_synapse/admin/v1/register"
        status, body, _ = http("GET", url)
        if status != 200:
            raise MatrixError(status, body, "register nonce")
        nonce = body["nonce"]
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                                 b"admin" if admin else b"notadmin"]))
        status, body, _ = http("POST", url, {
            "nonce": nonce, "username": localpart, "password": password,
            "admin": admin, "mac": mac.hexdigest()})
        if status != 200:
            raise MatrixError(status, body, f"register {localpart}")
        return body["user_id"], password

    def login(self, localpart, password):
        status, body, _ = http("POST", f"{self.url}/_matrix/client/v3/login", {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": password, "initial_device_display_name": "mxtest"})
        if status != 200:
            raise MatrixError(status, body, f"login {localpart}")
        return Client(self, body["user_id"], body["access_token"], body["device_id"])

    def new_user(self, prefix, admin=False):
        """Registers a fresh uniquely named user and logs in: returns Client."""
        localpart = unique(prefix)
        _, pw = self.register(localpart, admin=admin)
        c = self.login(localpart, pw)
        c.password = pw
        return c


# ---------------------------------------------------------------- client

class Client:
    def __init__(self, hs, user_id, token, device_id):
        self.hs = hs
        self.user_id = user_id
        self.token = token
        self.device_id = device_id
        self.password = None
        self._txn = 0

    def request(self, method, path, body=None, query=None, timeout=30, ok=(200,)):
        """A client-server API call; retries 429 honouring retry_after_ms, for
        up to a minute, so tests survive a server with a low rc_message."""
        url = f"{self.hs.url}/_matrix/client/v3{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        deadline = time.monotonic() + 60
        while True:
            status, resp, _ = http(method, url, body, self.token, timeout)
            if status == 429 and time.monotonic() < deadline:
                wait_ms = resp.get("retry_after_ms", 500) if isinstance(resp, dict) else 500
                time.sleep(min(wait_ms, 5000) / 1000)
                continue
            if status not in ok:
                raise MatrixError(status, resp, f"{method} {path}")
            return resp

    def admin(self, method, path, body=None):
        url = f"{self.hs.url}/_synapse/admin{path}"
        status, resp, _ = http(method, url, body, self.token)
        if status != 200:
            raise MatrixError(status, resp, f"{method} {path}")
        return resp

    def unlimit(self, user_id=None):
        """Lifts the message rate limit for user_id (default: self). Needs admin."""
        uid = urllib.parse.quote(user_id or self.user_id)
        self.admin("POST", f"/v1/users/{uid}/override_ratelimit",
                   {"messages_per_second": 0, "burst_count": 0})

    # rooms
    def create_dm(self, invitee, encrypted=False):
        body = {"preset": "trusted_private_chat", "is_direct": True, "invite": [invitee]}
        if encrypted:
            body["initial_state"] = [{"type": "m.room.encryption", "state_key": "",
                                      "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]
        room_id = self.request("POST", "/createRoom", body)["room_id"]
        self.add_m_direct(invitee, room_id)
        return room_id

    def create_room(self, invite=(), name=None):
        body = {"preset": "private_chat", "invite": list(invite)}
        if name:
            body["name"] = name
        return self.request("POST", "/createRoom", body)["room_id"]

    def add_m_direct(self, user_id, room_id):
        uid = urllib.parse.quote(self.user_id)
        path = f"/user/{uid}/account_data/m.direct"
        try:
            current = self.request("GET", path)
        except MatrixError as e:
            if e.status != 404:
                raise
            current = {}
        current.setdefault(user_id, [])
        if room_id not in current[user_id]:
            current[user_id].append(room_id)
        self.request("PUT", path, current)

    def m_direct(self):
        uid = urllib.parse.quote(self.user_id)
        try:
            return self.request("GET", f"/user/{uid}/account_data/m.direct")
        except MatrixError as e:
            if e.status == 404:
                return {}
            raise

    def invite(self, room_id, user_id):
        self.request("POST", f"/rooms/{q(room_id)}/invite", {"user_id": user_id})

    def join(self, room_or_alias):
        return self.request("POST", f"/join/{q(room_or_alias)}", {})["room_id"]

    def leave(self, room_id):
        self.request("POST", f"/rooms/{q(room_id)}/leave", {})

    def kick(self, room_id, user_id, reason="test"):
        self.request("POST", f"/rooms/{q(room_id)}/kick", {"user_id": user_id, "reason": reason})

    def membership(self, room_id, user_id):
        """The user's current membership in room_id as seen by self, or None."""
        try:
            ev = self.request("GET", f"/rooms/{q(room_id)}/state/m.room.member/{q(user_id)}")
        except MatrixError as e:
            if e.status == 404:
                return None
            raise
        return ev.get("membership")

    def wait_membership(self, room_id, user_id, wanted, timeout=30, forbidden=()):
        """Polls until user_id's membership is in `wanted` (a str or tuple);
        fails at once if it becomes one of `forbidden`."""
        wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        seen = []

        def probe():
            m = self.membership(room_id, user_id)
            if not seen or seen[-1] != m:
                seen.append(m)
            if m in forbidden:
                raise TestFailure(f"{user_id} became '{m}' in {room_id} (expected {wanted})")
            return m in wanted
        try:
            wait_until(probe, timeout, f"{user_id} membership {wanted} in {room_id}")
        except TestFailure as e:
            raise TestFailure(f"{e}; memberships seen: {seen}") from None
        return seen[-1]

    def _full_sync(self, room_filter):
        # Synapse answers an identical initial /sync from a cache for about
        # 2 minutes: a filter never used before (a no-op not_types nonce)
        # makes every poll see the current state
        flt = json.dumps({"room": room_filter, "presence": {"types": []},
                          "account_data": {"not_types": [f"mxtest.nocache.{secrets.token_hex(6)}"]}})
        return self.request("GET", "/sync", query={"timeout": 0, "filter": flt}, timeout=60)

    def invites(self):
        """Room IDs this user is currently invited to (from a full /sync)."""
        resp = self._full_sync({"timeline": {"limit": 0}})
        return set(resp.get("rooms", {}).get("invite", {}).keys())

    def read_receipts(self, room_id):
        """{user_id: event_id} of the m.read receipts in room_id (full /sync)."""
        resp = self._full_sync({"rooms": [room_id], "timeline": {"limit": 1}})
        room = resp.get("rooms", {}).get("join", {}).get(room_id, {})
        out = {}
        for ev in room.get("ephemeral", {}).get("events", []):
            if ev.get("type") != "m.receipt":
                continue
            for event_id, kinds in ev.get("content", {}).items():
                for user in kinds.get("m.read", {}):
                    out[user] = event_id
        return out

    def resolve_alias(self, alias):
        try:
            return self.request("GET", f"/directory/room/{q(alias)}")["room_id"]
        except MatrixError as e:
            if e.status == 404:
                return None
            raise

    # messages
    def next_txn(self):
        self._txn += 1
        return f"mxtest-{os.getpid()}-{int(time.time() * 1000)}-{self._txn}"

    def send_text(self, room_id, body, txn=None, msgtype="m.text"):
        txn = txn or self.next_txn()
        resp = self.request("PUT", f"/rooms/{q(room_id)}/send/m.room.message/{q(txn)}",
                            {"msgtype": msgtype, "body": body})
        return resp["event_id"]

    def event(self, room_id, event_id):
        return self.request("GET", f"/rooms/{q(room_id)}/event/{q(event_id)}")

    def messages(self, room_id, limit=1000):
        """Every m.room.message in the room, oldest first (pages backwards)."""
        out, frm = [], None
        while len(out) < limit:
            query = {"dir": "b", "limit": 100}
            if frm:
                query["from"] = frm
            resp = self.request("GET", f"/rooms/{q(room_id)}/messages", query=query)
            chunk = resp.get("chunk", [])
            out.extend(e for e in chunk if e.get("type") == "m.room.message")
            frm = resp.get("end")
            if not chunk or not frm:
                break
        out.reverse()
        return out

    def messages_from(self, room_id, sender, after_ts=0):
        return [e for e in self.messages(room_id)
                if e.get("sender") == sender and e.get("origin_server_ts", 0) >= after_ts]

    def wait_messages(self, room_id, sender, predicate, count=1, timeout=60, after_ts=0):
        """Polls /messages until at least `count` messages from `sender`
        satisfy `predicate(content)`; returns all such messages."""
        state = {"all": []}

        def probe():
            state["all"] = self.messages_from(room_id, sender, after_ts)
            hits = [e for e in state["all"] if predicate(e.get("content", {}))]
            return hits if len(hits) >= count else None
        try:
            return wait_until(probe, timeout, f"{count} matching message(s) from {sender}",
                              interval=0.3)
        except TestFailure as e:
            bodies = [e2.get("content", {}).get("body", "")[:120] for e2 in state["all"]]
            raise TestFailure(f"{e}; messages from {sender} so far: {bodies}") from None


def q(s):
    return urllib.parse.quote(s, safe="")


def is_notice(content):
    return content.get("msgtype") == "m.notice"


def is_pong(content):
    return is_notice(content) and content.get("body", "").lower().startswith("pong")


def replied_to(event):
    """The event ID a reply points at (m.in_reply_to), or None."""
    rel = event.get("content", {}).get("m.relates_to", {})
    return rel.get("m.in_reply_to", {}).get("event_id")


# ---------------------------------------------------------------- the daemon

def mxfleet_bin():
    path = os.environ.get("MXFLEET_BIN")
    check(path and os.access(path, os.X_OK),
          f"MXFLEET_BIN: expected the path of the built mxfleet binary, got '{path}'")
    return os.path.abspath(path)  # the daemon runs with its work dir as cwd


def _die_with_parent():
    """In the child: SIGKILL it if the test process dies (e.g. a ctest
    timeout), so no daemon outlives its test."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Bot:
    """One mxfleet daemon with its own temp dir, config and data_dir.

    devices: list of (name, localpart) pairs; each is registered on hs with a
    random password written to a 0600 file the config points at (or, when
    `passwords` maps localpart -> password, taken as already registered)."""

    def __init__(self, hs, operators, devices, directory=None, bot_opts=None,
                 alerts_room=None, register=True, extra=None, passwords=None):
        self.hs = hs
        self.bin = mxfleet_bin()
        self.dir = directory or workdir("bot-")
        self.config_path = os.path.join(self.dir, "mxfleet.json")
        self.log_path = os.path.join(self.dir, "mxfleet.log")
        self.proc = None
        self.http_port = None
        self.user_ids = {}
        self.passwords = {}
        secrets_dir = os.path.join(self.dir, "secrets")
        os.makedirs(secrets_dir, mode=0o700, exist_ok=True)
        devs = []
        for name, localpart in devices:
            pw_file = os.path.join(secrets_dir, f"{name}.pw")
            if passwords and localpart in passwords:
                uid, pw = hs.user_id(localpart), passwords[localpart]
            elif register:
                uid, pw = hs.register(localpart)
            else:
                uid, pw = hs.user_id(localpart), secrets.token_urlsafe(18)
            fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pw + "\n")
            self.user_ids[name] = uid
            self.passwords[name] = pw
            devs.append({"name": name,
                         "matrix": {"user_id": uid, "password_file": f"secrets/{name}.pw"},
                         "backend": {"kind": "local"}})
        bot = {"command_max_age_s": 600, "require_verified_sender": False,
               "sync_timeout_ms": 5000}
        bot.update(bot_opts or {})
        self.config = {"homeserver": hs.url, "data_dir": "data",
                       "operators": list(operators),
                       "alerts_room": alerts_room or f"#alerts-{secrets.token_hex(3)}:{hs.name}",
                       "bot": bot, "devices": devs}
        self.config.update(extra or {})
        self.write_config()

    def write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)

    def user_id(self, name=None):
        return self.user_ids[name] if name else next(iter(self.user_ids.values()))

    def start(self, log_level="debug", wait_healthy=True, timeout=90):
        check(self.proc is None, "bot already running")
        self.http_port = free_port()
        args = [self.bin, "run", "--config", self.config_path,
                "--http", f"127.0.0.1:{self.http_port}", "--log-level", log_level]
        self._log = open(self.log_path, "ab")
        self._log.write(f"=== start {time.strftime('%H:%M:%S')}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=self._log, cwd=self.dir,
                                     preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        log(f"started mxfleet pid {self.proc.pid} (log {self.log_path})")
        if wait_healthy:
            self.wait_healthy(timeout)
        return self

    def health(self):
        """(status, body) of /health, or (None, error text) when not answering."""
        try:
            status, body, _ = http("GET", f"http://127.0.0.1:{self.http_port}/health", timeout=5)
            return status, body
        except OSError as e:
            return None, str(e)

    def metrics(self):
        return http("GET", f"http://127.0.0.1:{self.http_port}/metrics", timeout=5, raw=True)

    def metric_total(self, name):
        """Sum of metric `name`'s samples over all its label sets (a counter
        over every identity), from /metrics."""
        status, text, _ = self.metrics()
        if status != 200:
            raise TestFailure(f"/metrics: http {status}")
        sample = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.M)
        return sum(float(v) for v in sample.findall(text))

    def assert_running(self):
        if self.proc.poll() is not None:
            raise TestFailure(f"mxfleet exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")

    def wait_healthy(self, timeout=90, interval=0.2):
        last = {}

        def probe():
            self.assert_running()
            last["h"] = self.health()
            return last["h"][0] == 200
        try:
            wait_until(probe, timeout, "mxfleet /health to answer 200", interval=interval)
        except TestFailure as e:
            raise TestFailure(f"{e}; last /health: {last.get('h')}; log tail:\n{self.log_tail()}") from None
        self.healthy_after = time.monotonic() - self.started_at
        log(f"mxfleet healthy after {self.healthy_after:.1f} s")

    def stop(self, sig=signal.SIGTERM, limit=5.0):
        """Sends sig and asserts a clean exit 0 within `limit` seconds."""
        check(self.proc is not None, "bot not running")
        self.assert_running()
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._close()
            raise TestFailure(f"mxfleet did not exit within {limit:.0f} s of {sig.name}; "
                              f"log tail:\n{self.log_tail()}")
        took = time.monotonic() - t0
        self._close()
        check(rc == 0, f"mxfleet exited with {rc} after {sig.name} (expected 0); "
                       f"log tail:\n{self.log_tail()}")
        log(f"mxfleet exited 0 {took:.2f} s after {sig.name}")
        return took

    def kill(self):
        """SIGKILL: a crash, nothing gets persisted on the way out."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self._close()

    def _close(self):
        self.proc = None
        self._log.close()

    def login_as(self, name=None):
        """A second session of the bot's own account (for reading its account
        data such as m.direct); it never sends."""
        name = name or next(iter(self.user_ids))
        localpart = self.user_ids[name][1:].split(":", 1)[0]
        return self.hs.login(localpart, self.passwords[name])

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.kill()


# ---------------------------------------------------------------- scenarios

def open_dm(operator, bot, name=None, timeout=60):
    """The operator opens a DM with the bot identity `name`; returns the room
    once the bot has joined (fails at once if it rejects the invite)."""
    uid = bot.user_id(name)
    room = operator.create_dm(uid)
    operator.wait_membership(room, uid, "join", timeout=timeout, forbidden=("leave", "ban"))
    return room


def pongs(operator, room, bot_uid):
    return [e for e in operator.messages_from(room, bot_uid) if is_pong(e.get("content", {}))]


def ping_and_wait(operator, room, bot_uid, expected_total, timeout=60):
    """Sends !ping and waits until the room holds expected_total pongs from
    the bot. Returns the event ID of the !ping."""
    ev = operator.send_text(room, "!ping")
    operator.wait_messages(room, bot_uid, is_pong, count=expected_total, timeout=timeout)
    return ev


def assert_exactly_once(operator, room, bot_uid, command_ids, predicate=is_pong):
    """Every command in command_ids got exactly one matching reply and nothing
    else got one. Replies that name their command (m.in_reply_to) are matched
    by ID; otherwise the count must equal the number of commands."""
    replies = [e for e in operator.messages_from(room, bot_uid) if predicate(e.get("content", {}))]
    targets = [replied_to(e) for e in replies]
    if all(targets):
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        check(not dupes, f"commands answered more than once: {dupes}")
        check(sorted(targets) == sorted(command_ids),
              f"replies point at {sorted(targets)}, commands were {sorted(command_ids)}")
    check(len(replies) == len(command_ids),
          f"expected {len(command_ids)} replies, got {len(replies)}: "
          f"{[e['content'].get('body', '')[:60] for e in replies]}")


def run(test):
    """Entry point for a test script: runs test(), prints PASS/FAIL, exits.
    Work dirs are removed on success and listed on failure."""
    import shutil
    name = os.path.basename(sys.argv[0])
    t0 = time.monotonic()
    try:
        test()
    except Exception as e:  # report any failure with its traceback
        import traceback
        traceback.print_exc()
        for d in _workdirs:
            print(f"kept for inspection: {d}", flush=True)
        print(f"FAIL {name}: {e}", flush=True)
        sys.exit(1)
    for d in _workdirs:
        shutil.rmtree(d, ignore_errors=True)
    print(f"PASS {name} ({time.monotonic() - t0:.1f} s)", flush=True)
    sys.exit(0)
