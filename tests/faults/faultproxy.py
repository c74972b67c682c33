"""faultproxy - an HTTP proxy of ours between the mxfleet daemon and the test
Synapse that injects homeserver faults (stdlib only, test code).

Owns: forwarding each request to the upstream homeserver and, when the
test's rule says so, answering instead with a 429 (retry_after_ms in the body
and/or a Retry-After header) or a 5xx (before forwarding, or after Synapse
has already acted on it: the case where a client that does not reuse its
txnId sends twice), stalling (accept, read the request, never answer until
released), or rewriting a /sync response (truncate it, add hostile events).
Every request is logged with its arrival time and what was done to it, so a
test can check the client's waits and count its retries.

A rule is a callable rule(req) -> Action or None (None: forward as is); req
has method, path (without query), query, body (bytes) and t (arrival,
time.monotonic()). The proxy runs in a thread of the test process.
"""

import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Action:
    """What to do with one request.
    kind: "error" (answer status without forwarding), "error_after" (forward,
    drop Synapse's answer, answer status), "stall" (this and every later
    request hang until release_stalls(); the hung ones never get an answer),
    "rewrite" (forward; body -> rewrite(status, bytes)), "deadline" (forward;
    when Synapse has not answered within deadline_s, answer 504 as a reverse
    proxy's read timeout does)."""

    def __init__(self, kind, status=0, body=None, headers=None, rewrite=None, note="", deadline_s=None):
        self.kind = kind
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.rewrite = rewrite
        self.note = note
        self.deadline_s = deadline_s


def rate_limited(retry_after_ms=None, header_s=None):
    """A 429 M_LIMIT_EXCEEDED as Synapse sends it (body field and/or header)."""
    body = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests"}
    if retry_after_ms is not None:
        body["retry_after_ms"] = retry_after_ms
    headers = {"Retry-After": str(header_s)} if header_s is not None else {}
    # the wait the client owes: the header (seconds) wins, as in the spec
    wait = header_s * 1000 if header_s is not None else retry_after_ms
    return Action("error", 429, body, headers, note=f"429 wait={wait}")


def read_timeout(seconds):
    """nginx's proxy_read_timeout: Synapse silent for `seconds` -> 504."""
    return Action("deadline", 504, deadline_s=seconds, note=f"504 after {seconds} s")


def server_error(status=502, after=False):
    body = {"errcode": "M_UNKNOWN", "error": f"injected {status}"}
    return Action("error_after" if after else "error", status, body,
                  note=f"{status}{' after forwarding' if after else ''}")


class Request:
    def __init__(self, method, raw_path, body, t):
        self.method = method
        parts = urllib.parse.urlsplit(raw_path)
        self.path = parts.path
        self.query = urllib.parse.parse_qs(parts.query)
        self.raw_path = raw_path
        self.body = body
        self.t = t


class FaultProxy:
    def __init__(self, upstream_url, rule=None):
        u = urllib.parse.urlsplit(upstream_url)
        self.up_host, self.up_port = u.hostname, u.port or 80
        self.rule = rule
        self.log = []  # dicts: t, method, path, query, body (request bytes), action, status
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        self.stopping = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _any(self):
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    # ---- control
    def stall_all(self):
        """From now on every request is accepted and never answered."""
        self.release.clear()

    def release_stalls(self):
        """New requests are forwarded again. The stalled ones stay open and
        silent until stop(), like requests a hung server lost: only the
        client's own timeouts get it out of them."""
        self.release.set()

    def entries(self, since=0.0):
        with self.lock:
            return [e for e in self.log if e["t"] >= since]

    def stop(self):
        self.stopping.set()
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- one request
    def _record(self, req, action, status):
        with self.lock:
            self.log.append({"t": req.t, "method": req.method, "path": req.path, "query": req.query,
                             "body": req.body, "action": action, "status": status})

    def _handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        req = Request(h.command, h.path, body, time.monotonic())
        action = self.rule(req) if self.rule and self.release.is_set() else None
        if not self.release.is_set() or (action and action.kind == "stall"):
            self.release.clear()
            self._record(req, "stall", 0)
            self.stopping.wait()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if action and action.kind == "error":
            self._record(req, action.note, action.status)
            return self._answer(h, action.status, json.dumps(action.body).encode(), action.headers)
        try:
            status, headers, data = self._forward(h, req, action.deadline_s if action else None)
        except OSError as e:
            if isinstance(e, socket.timeout) and action and action.kind == "deadline":
                self._record(req, action.note, action.status)
                return self._answer(h, action.status, b"<html><head><title>504 Gateway Time-out</title></head></html>",
                                    {"Content-Type": "text/html"})
            self._record(req, f"upstream failed: {e}", 502)
            return self._answer(h, 502, b'{"errcode":"M_UNKNOWN","error":"upstream down"}', {})
        if action and action.kind == "error_after":
            self._record(req, action.note, action.status)
            return self._answer(h, action.status, json.dumps(action.body).encode(), action.headers)
        if action and action.kind == "rewrite":
            data = action.rewrite(status, data)
            self._record(req, action.note or "rewrite", status)
        else:
            self._record(req, "forward", status)
        keep = {k: v for k, v in headers if k.lower() in ("content-type", "retry-after")}
        self._answer(h, status, data, keep)

    def _forward(self, h, req, timeout=None):
        conn = http.client.HTTPConnection(self.up_host, self.up_port, timeout=timeout or 300)
        try:
            hdrs = {k: v for k, v in h.headers.items()
                    if k.lower() not in ("host", "connection", "accept-encoding", "content-length")}
            conn.request(req.method, req.raw_path, body=req.body if req.body or req.method in ("POST", "PUT")
                         else None, headers=hdrs)
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    @staticmethod
    def _answer(h, status, data, headers):
        try:
            h.send_response(status)
            h.send_header("Content-Type", headers.pop("Content-Type", headers.pop("content-type",
                                                                                    "application/json")))
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


def proxied_bot(hs, proxy, operator, **kw):
    """An mxtest.Bot for one device (pc1) that reaches the homeserver only
    through proxy; the operator's client still talks to Synapse directly."""
    import mxtest
    bot = mxtest.Bot(hs, [operator.user_id], [("pc1", mxtest.unique("agent-pc1"))], **kw)
    bot.config["homeserver"] = proxy.url
    bot.write_config()
    return bot


@contextlib.contextmanager
def proxied_dm(rule=None, **bot_kw):
    """The common start of a proxy test: the Synapse fixture, a FaultProxy
    with rule, an operator, a running bot behind the proxy (proxied_bot) and
    the operator's DM with it. Yields (proxy, op, bot, room); everything is
    stopped on the way out, also on failure."""
    import mxtest
    hs = mxtest.Homeserver.from_env()
    with hs, FaultProxy(hs.url, rule) as proxy:
        op = hs.new_user("alice")
        bot = proxied_bot(hs, proxy, op, **bot_kw)
        with bot:
            bot.start()
            yield proxy, op, bot, mxtest.open_dm(op, bot)


def bot_sends(entries):
    """The bot's PUT /rooms/{room}/send/{type}/{txn} requests in the log."""
    return [e for e in entries if e["method"] == "PUT" and "/send/" in e["path"]]


def check_waits(entries, tolerance_ms=60):
    """For every injected 429 on a retried request (a /sync, or a send with
    its txnId in the path), the next request of the same kind must come no
    sooner than the wait the 429 asked for. Returns a list of violations."""
    bad = []
    for i, e in enumerate(entries):
        if not e["action"].startswith("429 wait="):
            continue
        wait = int(e["action"].split("=", 1)[1])
        key = "/sync" if e["path"].endswith("/sync") else e["path"]
        if key != "/sync" and "/send/" not in key:
            continue
        nxt = next((f for f in entries[i + 1:] if (f["path"].endswith("/sync") if key == "/sync"
                                                   else f["path"] == key)), None)
        if nxt is None:
            continue
        gap = (nxt["t"] - e["t"]) * 1000
        if gap + tolerance_ms < wait:
            bad.append(f"{e['method']} {e['path']}: retried after {gap:.0f} ms, asked to wait {wait} ms")
    return bad
