#!/usr/bin/env python3
"""Benchmark: the ceiling of one mxfleet process plus one Synapse (issue 14.5).

For each N (--counts) a fresh mxfleet process runs N device identities
(fresh accounts, E2EE on) against one private test Synapse (chroot, SQLite),
and the bench prints:
  first sync   seconds until all N have synced (/health 200), CPU seconds
               the bot and Synapse spent on it, and Synapse's costliest
               endpoints meanwhile (from its access log);
  idle         bot and Synapse CPU (% of one core) and RSS over --idle s
               with N long-polls open (bot.sync_timeout_ms 30000);
  storm        (when N >= --storm-ids) --operators operators open DMs with
               --storm-ids identities, then send unencrypted `!ping`s
               round-robin over those DMs at each rate of --rates for
               --stage seconds. Round trip = PUT of the !ping started to the
               pong (matched by m.in_reply_to) arriving in the operator's
               /sync. Per rate: p50/p95, pongs per second, lost, bot CPU
               (main thread = sync loop, workers = replies), Synapse CPU,
               this probe's own CPU, bot disk writes, and Synapse's per-request
               timings (CPU, DB time) for /send and /sync. The rates stop
               rising once a stage saturates (throughput under 90 % of the
               offered rate, or p95 over --p95-limit s, or pongs lost).
Load average is printed beside every figure: the machine may be shared.

  sudo bench/bot/storm.py --mxfleet build/bot/mxfleet
        [--counts 200,1000,2000] [--storm-at 200,1000] [--storm-ids 200] [--operators 10]
        [--rates 5,10,20,40,80,160] [--stage 20] [--idle 20]

Needs root (the Synapse chroot). Not part of ctest; figures go into
docs/scaling.md.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "homeserver"))
sys.path.insert(0, HERE)
import mxtest  # noqa: E402
from identities import cpu_ticks, proc_status, synapse_pid, CLK_TCK  # noqa: E402

SYNAPSE_ROOT = os.environ.get("MXFLEET_SYNAPSE_ROOT", "/var/cache/mxfleet/synapse-root")


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def thread_ticks(pid):
    """(main thread ticks, all other threads' ticks) of process pid."""
    main = other = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        t = int(fields[11]) + int(fields[12])
        if int(tid) == pid:
            main += t
        else:
            other += t
    return main, other


def write_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- Synapse's access log

# "Processed request: REAL/SEND ru=(UTIME, STIME) db=(SCHED/TXN TIME/TXNS) BYTES CODE "METHOD URI ..."
ACCESS_RE = re.compile(r"Processed request: ([\d.]+)sec/[\d.]+sec ru=\(([\d.]+)sec, ([\d.]+)sec\) "
                       r"db=\(([\d.]+)sec/([\d.]+)sec/(\d+)\) \d+B (\d+)!? \"(\w+) (\S+)")


def endpoint(method, uri):
    """A request's endpoint class: the path with IDs and tokens replaced."""
    path = urllib.parse.urlsplit(uri).path
    path = re.sub(r"^/_matrix/client/(v3|r0|unstable|v1)", "", path)
    parts = []
    for seg in path.split("/"):
        seg = urllib.parse.unquote(seg)
        if seg[:1] in "!@#$" and len(seg) > 1:
            seg = "{" + {"!": "room", "@": "user", "#": "alias", "$": "event"}[seg[0]] + "}"
        elif parts and parts[-1] in ("m.room.message", "m.room.encrypted", "filter", "sendToDevice") \
                or (len(parts) >= 2 and parts[-2] == "sendToDevice"):
            seg = "{id}"
        parts.append(seg)
    return f"{method} {'/'.join(parts)}"


class AccessLog:
    """Turns on Synapse's access log (synapse.access.http at INFO, into its own
    file) by rewriting log.yaml and sending SIGHUP, which reloads it."""

    def __init__(self, hs, hs_pid):
        env = dict(line.strip().split("=", 1) for line in open(os.path.join(hs._owned_dir, "env")))
        inner = env["MX_HS_INNER"]
        self.path = f"{SYNAPSE_ROOT}{inner}/access.log"
        with open(f"{SYNAPSE_ROOT}{inner}/log.yaml", "w") as f:
            f.write(f"""version: 1
formatters:
  precise: {{format: '%(asctime)s %(levelname)s %(name)s %(message)s'}}
handlers:
  file: {{class: logging.FileHandler, formatter: precise, filename: {inner}/homeserver.log}}
  access: {{class: logging.FileHandler, formatter: precise, filename: {inner}/access.log}}
loggers:
  synapse.access.http: {{level: INFO, handlers: [access], propagate: false}}
root: {{level: WARNING, handlers: [file]}}
disable_existing_loggers: false
""")
        os.kill(hs_pid, signal.SIGHUP)

        def logged():  # each probe is itself a request the reloaded config logs
            mxtest.http("GET", f"{hs.url}/_matrix/client/versions")
            return os.path.exists(self.path) and os.path.getsize(self.path) > 0
        mxtest.wait_until(logged, 30, "Synapse's access log after SIGHUP", interval=0.2)

    def offset(self):
        return os.path.getsize(self.path)

    def since(self, offset):
        """{endpoint: [count, real s, cpu s, db txn s, db wait s]} of the
        requests logged after offset (db wait: queued for Synapse's database
        connection, which SQLite makes a single one)."""
        out = {}
        with open(self.path, errors="replace") as f:
            f.seek(offset)
            for line in f:
                m = ACCESS_RE.search(line)
                if not m:
                    continue
                real, ut, st, sched, db, _txns, _code, method, uri = m.groups()
                e = out.setdefault(endpoint(method, uri), [0, 0.0, 0.0, 0.0, 0.0])
                e[0] += 1
                e[1] += float(real)
                e[2] += float(ut) + float(st)
                e[3] += float(db)
                e[4] += float(sched)
        return out


def top_endpoints(stats, n=5):
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:n]
    return "; ".join(f"{k} x{v[0]} cpu {v[2]:.1f} s" for k, v in rows)


# ---------------------------------------------------------------- a fast client

class Conn:
    """One persistent HTTP/1.1 connection to the homeserver (urllib opens a
    new one per request, which would make the probe the bottleneck)."""

    def __init__(self, url, token, timeout=120):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.token, self.timeout = u.hostname, u.port, token, timeout
        self.c = None

    def request(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(3):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.c.request(method, "/_matrix/client/v3" + path, data, headers)
                r = self.c.getresponse()
                text = r.read()
                if r.status == 429:
                    time.sleep(json.loads(text).get("retry_after_ms", 200) / 1000)
                    continue
                if r.status != 200:
                    raise mxtest.MatrixError(r.status, text[:300], f"{method} {path}")
                return json.loads(text)
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = None
                if attempt == 2:
                    raise
        raise mxtest.TestFailure(f"{method} {path}: still rate-limited after 3 tries")


SYNC_FILTER = json.dumps({
    "presence": {"types": []}, "account_data": {"types": []},
    "room": {"timeline": {"types": ["m.room.message"], "limit": 200},
             "state": {"types": []}, "ephemeral": {"types": []},
             "account_data": {"types": []}}})


class Probe:
    """Operators' side of the storm: a /sync loop per operator that stamps
    each pong's arrival, and a sender pool that PUTs !pings on a schedule."""

    def __init__(self, hs, operators):
        self.hs = hs
        self.ops = operators  # [(mxtest.Client, [room, ...])]
        self.lock = threading.Lock()
        self.sent = {}      # event_id of a !ping -> monotonic time its PUT started
        self.arrived = {}   # event_id of a !ping -> monotonic time its pong arrived
        self.stop = threading.Event()
        self.threads = []

    def start(self):
        for op, _rooms in self.ops:
            conn = Conn(self.hs.url, op.token)
            since = conn.request("GET", "/sync?" + urllib.parse.urlencode(
                {"timeout": 0, "filter": SYNC_FILTER}))["next_batch"]
            t = threading.Thread(target=self._sync_loop, args=(op.user_id, conn, since), daemon=True)
            t.start()
            self.threads.append(t)

    def _sync_loop(self, me, conn, since):
        while not self.stop.is_set():
            try:
                resp = conn.request("GET", "/sync?" + urllib.parse.urlencode(
                    {"since": since, "timeout": 5000, "filter": SYNC_FILTER}))
            except (mxtest.MatrixError, OSError, http.client.HTTPException) as e:
                print(f"    {me}: /sync failed ({e}); retrying", flush=True)
                time.sleep(0.5)
                continue
            now = time.monotonic()
            since = resp["next_batch"]
            for room in resp.get("rooms", {}).get("join", {}).values():
                for ev in room.get("timeline", {}).get("events", []):
                    if ev.get("sender") == me:
                        continue
                    irt = ev.get("content", {}).get("m.relates_to", {}).get("m.in_reply_to", {})
                    if irt.get("event_id") and ev["content"].get("body", "").startswith("pong"):
                        with self.lock:
                            self.arrived.setdefault(irt["event_id"], now)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)

    def run_stage(self, rate, seconds, drain_s):
        """Sends rate*seconds !pings round-robin over every room (32 senders,
        so a slow homeserver lowers the rate actually sent); returns (sorted
        round trips in s, first send, last pong, last send, sent, lost)."""
        targets = [(op, room) for op, rooms in self.ops for room in rooms]
        total = max(1, int(rate * seconds))
        plan = [targets[i % len(targets)] for i in range(total)]
        conns = threading.local()
        t0 = time.monotonic() + 0.2
        ids = [None] * total

        def send(i):
            op, room = plan[i]
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if not hasattr(conns, "by_op"):
                conns.by_op = {}
            c = conns.by_op.setdefault(op.user_id, Conn(self.hs.url, op.token))
            txn = f"storm-{os.getpid()}-{rate}-{i}-{time.monotonic_ns()}"
            start = time.monotonic()
            ev = c.request("PUT", f"/rooms/{mxtest.q(room)}/send/m.room.message/{txn}",
                           {"msgtype": "m.text", "body": "!ping"})["event_id"]
            with self.lock:
                self.sent[ev] = start
            ids[i] = ev

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            list(pool.map(send, range(total)))
        last_send = time.monotonic()
        deadline = last_send + drain_s
        while time.monotonic() < deadline:
            with self.lock:
                if all(e in self.arrived for e in ids):
                    break
            time.sleep(0.05)
        with self.lock:
            rtt = sorted(self.arrived[e] - self.sent[e] for e in ids if e in self.arrived)
            arrivals = [self.arrived[e] for e in ids if e in self.arrived]
            first = min(self.sent[e] for e in ids)
        return rtt, first, max(arrivals) if arrivals else last_send, last_send, total, total - len(rtt)


def pct(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def ping_handling(metrics_text):
    """(count, sum s) of mxfleet_ping_reply_seconds over all identities."""
    cnt = sum(int(v) for v in re.findall(r'mxfleet_ping_reply_seconds_count\{[^}]*\} (\d+)', metrics_text))
    tot = sum(float(v) for v in re.findall(r'mxfleet_ping_reply_seconds_sum\{[^}]*\} ([0-9.e+-]+)', metrics_text))
    return cnt, tot


# ---------------------------------------------------------------- one N

def register_many(hs, names, workers=8):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(lambda n: (n, hs.register(n)[1]), names))


def run_n(hs, hs_pid, access, binary, n, args, tag):
    print(f"\n=== N = {n} (load {loadavg()})", flush=True)
    names = [f"{tag}i{i}" for i in range(n)]
    passwords = register_many(hs, [f"agent-{x}" for x in names])
    storm_names = names[:args.storm_ids] if n >= args.storm_ids and n in args.storm_at else []
    op_ids = [hs.user_id(f"storm-{tag}-op{k}") for k in range(args.operators)] if storm_names else []
    # operators are named up front: the config lists them
    for uid in op_ids:
        hs.register(uid[1:].split(":")[0], password="storm-op-pw")
    os.environ["MXFLEET_BIN"] = binary
    bot = mxtest.Bot(hs, op_ids or [hs.user_id("bench-op")], [(x, f"agent-{x}") for x in names],
                     passwords=passwords, bot_opts={"sync_timeout_ms": 30000})
    out = {"n": n}
    with bot:
        off = access.offset()
        hs_c0 = cpu_ticks(hs_pid)
        bot.start(log_level="warn", wait_healthy=False)
        bot.wait_healthy(max(300, n), interval=0.1)
        pid = bot.proc.pid
        out.update(first_sync_s=bot.healthy_after, bot_start_cpu_s=cpu_ticks(pid) / CLK_TCK,
                   hs_start_cpu_s=(cpu_ticks(hs_pid) - hs_c0) / CLK_TCK, load_sync=loadavg())
        print(f"first sync: {bot.healthy_after:.1f} s; bot CPU {out['bot_start_cpu_s']:.1f} s, "
              f"Synapse CPU {out['hs_start_cpu_s']:.1f} s (load {out['load_sync']})", flush=True)
        print(f"  Synapse's costliest endpoints: {top_endpoints(access.since(off))}", flush=True)
        time.sleep(3)
        c0, h0, w0 = cpu_ticks(pid), cpu_ticks(hs_pid), time.monotonic()
        off = access.offset()
        time.sleep(args.idle)
        c1, h1, w1 = cpu_ticks(pid), cpu_ticks(hs_pid), time.monotonic()
        bot.assert_running()
        idle_req = access.since(off)
        out.update(idle_bot_pct=100 * (c1 - c0) / CLK_TCK / (w1 - w0),
                   idle_hs_pct=100 * (h1 - h0) / CLK_TCK / (w1 - w0),
                   rss_mb=proc_status(pid, "VmRSS") / 1024, hwm_mb=proc_status(pid, "VmHWM") / 1024,
                   hs_rss_mb=proc_status(hs_pid, "VmRSS") / 1024, load_idle=loadavg(),
                   idle_req_s=sum(v[0] for v in idle_req.values()) / (w1 - w0))
        print(f"idle over {w1 - w0:.0f} s: bot {out['idle_bot_pct']:.2f} % CPU, {out['rss_mb']:.1f} MB RSS "
              f"(peak {out['hwm_mb']:.1f}); Synapse {out['idle_hs_pct']:.2f} % CPU, {out['hs_rss_mb']:.0f} MB RSS, "
              f"{out['idle_req_s']:.1f} requests/s (load {out['load_idle']})", flush=True)
        if storm_names:
            out["storm"] = storm(hs, hs_pid, access, bot, storm_names, op_ids, args)
        bot.stop(limit=30)
    return out


def quiet_joins(access, quiet_s=5, timeout=120):
    """Waits until Synapse has logged no /join for quiet_s seconds: the bot
    joins each invited DM more than once (repeats a few seconds apart), and
    those joins must not land inside a measured stage."""
    off = access.offset()
    last = time.monotonic()
    deadline = last + timeout
    while time.monotonic() < deadline and time.monotonic() - last < quiet_s:
        time.sleep(0.5)
        if any(k.startswith("POST /join/") for k in access.since(off)):
            last = time.monotonic()
        off = access.offset()


def storm(hs, hs_pid, access, bot, names, op_ids, args):
    t = time.monotonic()
    ops = [(hs.login(uid[1:].split(":")[0], "storm-op-pw"), []) for uid in op_ids]
    jobs = [(ops[i % len(ops)], name) for i, name in enumerate(names)]

    def create(job):
        (op, rooms), name = job
        room = op.create_dm(bot.user_id(name))
        return op, rooms, room, bot.user_id(name)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        made = list(pool.map(create, jobs))
    pending = {(room, uid): op for op, _r, room, uid in made}

    def joined():
        for (room, uid), op in list(pending.items()):
            if op.membership(room, uid) == "join":
                del pending[(room, uid)]
        return not pending
    mxtest.wait_until(joined, 300, f"the bot to join {len(made)} DMs", interval=1.0)
    for _op, rooms, room, _uid in made:
        rooms.append(room)
    quiet_joins(access)
    print(f"storm: {len(ops)} operators opened DMs with {len(names)} identities in "
          f"{time.monotonic() - t:.0f} s", flush=True)
    probe = Probe(hs, ops)
    probe.start()
    pid = bot.proc.pid
    rows = []
    try:
        rtt, *_rest, lost = probe.run_stage(10, len(names) / 10, 60)  # warm-up: one !ping per DM
        if lost:
            raise mxtest.TestFailure(f"warm-up: {lost} of {len(names)} !pings got no pong in 60 s")
        print(f"warm-up: one !ping per DM answered, p50 {1000 * pct(rtt, .5):.0f} ms", flush=True)
        print("| offered /s | sent | pongs /s | p50 ms | p95 ms | lost | bot CPU % (main / workers) "
              "| Synapse CPU % | probe CPU % | bot writes MB/s | Synapse /send: ms, CPU ms, DB wait ms, DB ms "
              "| bot handling ms | load |", flush=True)
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|", flush=True)
        for rate in [float(r) for r in args.rates.split(",")]:
            time.sleep(2)
            m0, o0 = thread_ticks(pid)
            h0, p0, wb0 = cpu_ticks(hs_pid), os.times(), write_bytes(pid)
            k0 = ping_handling(bot.metrics()[1])
            off, w0 = access.offset(), time.monotonic()
            rtt, first, last_arrival, last_send, total, lost = probe.run_stage(rate, args.stage, args.drain)
            w1 = time.monotonic()
            m1, o1 = thread_ticks(pid)
            h1, p1, wb1 = cpu_ticks(hs_pid), os.times(), write_bytes(pid)
            k1 = ping_handling(bot.metrics()[1])
            req = access.since(off)
            span = w1 - w0
            sends = [v for k, v in req.items() if k.startswith("PUT /rooms/{room}/send/")]
            sn = sum(v[0] for v in sends) or 1
            r = {"rate": rate, "sent": total, "sent_per_s": total / max(last_send - first, 1e-3),
                 "tput": len(rtt) / max(last_arrival - first, 1e-3),
                 "p50": pct(rtt, .5), "p95": pct(rtt, .95), "lost": lost,
                 "bot_main": 100 * (m1 - m0) / CLK_TCK / span, "bot_workers": 100 * (o1 - o0) / CLK_TCK / span,
                 "hs": 100 * (h1 - h0) / CLK_TCK / span,
                 "probe": 100 * ((p1.user + p1.system) - (p0.user + p0.system)) / span,
                 "writes": (wb1 - wb0) / span / 1e6,
                 "send_ms": 1000 * sum(v[1] for v in sends) / sn, "send_cpu_ms": 1000 * sum(v[2] for v in sends) / sn,
                 "send_db_ms": 1000 * sum(v[3] for v in sends) / sn,
                 "send_wait_ms": 1000 * sum(v[4] for v in sends) / sn,
                 "handling_ms": 1000 * (k1[1] - k0[1]) / max(k1[0] - k0[0], 1),
                 "load": loadavg(), "top": top_endpoints(req, 4)}
            rows.append(r)
            print(f"| {rate:g} | {total} ({r['sent_per_s']:.0f}/s) | {r['tput']:.1f} | {1000 * r['p50']:.0f} "
                  f"| {1000 * r['p95']:.0f} | {lost} | {r['bot_main'] + r['bot_workers']:.0f} "
                  f"({r['bot_main']:.0f} / {r['bot_workers']:.0f}) | {r['hs']:.0f} | {r['probe']:.0f} "
                  f"| {r['writes']:.2f} | {r['send_ms']:.0f}, {r['send_cpu_ms']:.1f}, {r['send_wait_ms']:.0f}, {r['send_db_ms']:.1f} "
                  f"| {r['handling_ms']:.1f} | {r['load']} |", flush=True)
            print(f"    Synapse's costliest endpoints: {r['top']}", flush=True)
            bot.assert_running()
            if lost or r["tput"] < 0.9 * rate or r["p95"] > args.p95_limit:
                print(f"    saturated at {rate:g} !ping/s offered", flush=True)
                break
    finally:
        probe.close()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mxfleet", required=True, help="path of the built mxfleet binary")
    ap.add_argument("--counts", default="200,1000,2000", help="comma-separated identity counts")
    ap.add_argument("--storm-at", default="",
                    help="comma-separated counts to run the storm at (default: every count)")
    ap.add_argument("--storm-ids", type=int, default=200, help="identities the storm is spread over")
    ap.add_argument("--operators", type=int, default=10, help="operators sending the storm")
    ap.add_argument("--rates", default="5,10,20,40,80,160", help="offered !ping rates per second")
    ap.add_argument("--stage", type=float, default=20, help="seconds each rate is offered")
    ap.add_argument("--drain", type=float, default=30, help="seconds to wait for the last pongs")
    ap.add_argument("--p95-limit", type=float, default=5.0, help="p95 (s) over which a rate saturates")
    ap.add_argument("--idle", type=float, default=35.0,
                    help="idle window in seconds (longer than the 30 s long-poll, so every renewal is seen)")
    ap.add_argument("--save-access-log", metavar="PATH", help="keep a copy of Synapse's access log")
    args = ap.parse_args()
    binary = os.path.abspath(args.mxfleet)
    if not os.access(binary, os.X_OK):
        sys.exit(f"--mxfleet: expected an executable, got '{args.mxfleet}'")
    counts = [int(c) for c in args.counts.split(",")]
    args.storm_at = [int(c) for c in args.storm_at.split(",")] if args.storm_at else counts
    print(f"storm bench: {os.cpu_count()} CPUs, load {loadavg()}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}", flush=True)
    with mxtest.Homeserver.start_own() as hs:
        hs.register("bench-op")
        hs_pid = synapse_pid(hs)
        access = AccessLog(hs, hs_pid)
        try:
            rows = [run_n(hs, hs_pid, access, binary, n, args, f"s{k}") for k, n in enumerate(counts)]
        finally:
            if args.save_access_log:
                shutil.copyfile(access.path, args.save_access_log)
    print("\n| identities | first sync (s) | bot CPU to sync (s) | Synapse CPU to sync (s) | idle bot CPU "
          "| idle Synapse CPU | bot RSS (MB) | Synapse RSS (MB) | storm: best pongs/s (p50/p95 ms) | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ok = [s for s in r.get("storm", []) if not s["lost"] and s["tput"] >= 0.9 * s["rate"]]
        best = max(ok, key=lambda s: s["tput"]) if ok else None
        st = f"{best['tput']:.0f} ({1000 * best['p50']:.0f}/{1000 * best['p95']:.0f})" if best else "-"
        print(f"| {r['n']} | {r['first_sync_s']:.1f} | {r['bot_start_cpu_s']:.1f} | {r['hs_start_cpu_s']:.1f} "
              f"| {r['idle_bot_pct']:.2f} % | {r['idle_hs_pct']:.2f} % | {r['rss_mb']:.1f} | {r['hs_rss_mb']:.0f} "
              f"| {st} | {r['load_sync']} / {r['load_idle']} |")
    return 0


if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    finally:
        for d in mxtest._workdirs:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(rc)
