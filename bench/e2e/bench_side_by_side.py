#!/usr/bin/python3
"""bench/e2e/bench_side_by_side.py - encrypted !ping round trip, mxfleet
against a matrix-js-sdk Rust-crypto echo bot, same Synapse, same run.

One private Synapse; Element's crypto (tests/e2e/peer: matrix-js-sdk 37.5 +
Rust crypto) signs in as a cross-signed operator and opens an encrypted DM
with each bot:
  js       bench/e2e/js-echo-bot.mjs: matrix-js-sdk + Rust crypto with the
           SDK's defaults (the way its documentation writes a bot);
  mxfleet  the daemon with its default settings (require_verified_sender on,
           30 s long-poll), one identity.
After a warm-up of 5 round trips per bot, the probe sends BLOCKS blocks of
PER_BLOCK sequential "!ping"s to each bot, alternating which bot goes first
(ABBA...), so drifting machine load hits both alike; each round trip waits
until the reply is decrypted on the probe (woken by the SDK's events, not a
poll). --baseline BIN adds a second mxfleet daemon ("base", e.g. a build of
main) to the same rotation, for a before/after in one run. --pairs sends
each "!ping" twice back to back and reports the second's round trip (it
reaches the bot while the bot answers the first). Prints per bot: p50/p95/max
round trip, RSS (VmRSS, VmHWM) and CPU per message (utime+stime from /proc over
that bot's own blocks only; Synapse's over the same blocks beside it), the ratio mxfleet p50 / js p50, mxfleet's own
handling time (mxfleet_ping_reply_seconds) and the load average.
With --trace DIR, Synapse's access log (one line per request with its
timings) is switched on, every log (Synapse, both bots, probe) is kept in
DIR with the probe's latencies (latencies.json), and each round trip is cut
into segments from Synapse's request times (see trace_segments).
Usage: bench_side_by_side.py [--trace DIR] [--baseline MXFLEET_BIN] [--pairs] MXFLEET_BIN
                             [BLOCKS=10] [PER_BLOCK=10]
"""
import collections
import contextlib
import datetime
import hashlib
import json
import re
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "homeserver"))
import mxtest  # noqa: E402
import peerlib  # noqa: E402
from bench_e2ee import cpu_seconds, report_handling  # noqa: E402


def proc_status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def loadavg():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


class JsBot:
    """bench/e2e/js-echo-bot.mjs under Node, from the peer's install."""

    def __init__(self, hs, peer_dir, log_path):
        self.localpart = mxtest.unique("jsbot")
        _, pw = hs.register(self.localpart)
        # node resolves matrix-js-sdk next to the script: run it from there
        self.script = os.path.join(peer_dir, "js-echo-bot.mjs")
        shutil.copyfile(os.path.join(HERE, "js-echo-bot.mjs"), self.script)
        self.log = open(log_path, "ab")
        env = dict(os.environ, MX_HS_URL=hs.url, BOT_USER=self.localpart, BOT_PW=pw)
        self.proc = subprocess.Popen(["node", self.script], cwd=peer_dir, env=env, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        mxtest.check(line.startswith("js-echo-bot: ready "), f"js echo bot did not start: '{line.strip()}'")
        self.user_id = line.split()[2]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def synapse_inner_dir(hs):
    """Where tests/homeserver/synapse keeps this instance's files (chroot)."""
    root = os.environ.get("MXFLEET_SYNAPSE_ROOT", "/var/cache/mxfleet/synapse-root")
    d = hs._owned_dir
    return f"{root}/run-dirs/{os.path.basename(d)}-{hashlib.sha256((d + chr(10)).encode()).hexdigest()[:8]}"


def synapse_access_log(hs):
    """Switches on synapse.access.http at INFO (per-request timings) and
    has Synapse reload its logging config (SIGHUP); returns the log path."""
    inner = synapse_inner_dir(hs)
    with open(os.path.join(inner, "log.yaml"), "a") as f:
        f.write("loggers: {synapse.access.http: {level: INFO}}\n")
    os.kill(synapse_pid(hs), signal.SIGHUP)
    return os.path.join(inner, "homeserver.log")


def synapse_pid(hs):
    with open(os.path.join(synapse_inner_dir(hs), "homeserver.pid")) as f:
        return int(f.read().strip())


ACCESS = re.compile(r'^(\S+ \S+) INFO .*\{(@[^}]+)\} Processed request: ([0-9.]+)sec.* \d+B \d+ "(\S+) (\S+)')


def trace_segments(synapse_log, operator, bots):
    """Per bot, the median of each segment of a round trip, from Synapse's
    access log (request end times, start = end - wall time):
      ping PUT       the probe's send of !ping, in Synapse
      -> bot sync    ping PUT start to the bot's /sync response carrying it
      bot            that /sync response written to the bot's PUT received:
                     the bot's own work plus both directions over loopback
      bot PUT        the bot's send, in Synapse
      -> probe sync  bot PUT start to the probe's /sync response carrying it
    bots: {name: user_id}."""
    reqs = []
    with open(synapse_log) as f:
        for line in f:
            m = ACCESS.search(line)
            if not m:
                continue
            end = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() * 1000
            path = m.group(5)
            kind = "sync" if "/sync" in path else "send" if "/send/" in path else "other"
            room = re.search(r"/rooms/([^/]+)/", path)
            reqs.append({"end": end, "start": end - 1000 * float(m.group(3)), "user": m.group(2), "kind": kind,
                         "room": room.group(1).replace("%21", "!").replace("%3A", ":") if room else None})
    reqs.sort(key=lambda r: r["end"])
    seg = collections.defaultdict(lambda: collections.defaultdict(list))
    for p in reqs:
        if p["user"] != operator or p["kind"] != "send":
            continue
        for name, uid in bots.items():
            put = next((r for r in reqs if r["user"] == uid and r["kind"] == "send" and r["room"] == p["room"]
                        and r["start"] > p["start"]), None)
            if not put:
                continue
            syncs = [r for r in reqs if r["user"] == uid and r["kind"] == "sync" and p["start"] < r["end"] <= put["start"]]
            seen = next((r for r in reqs if r["user"] == operator and r["kind"] == "sync" and r["end"] > put["start"]),
                        None)
            own = next((r for r in reqs if r["user"] == operator and r["kind"] == "sync" and r["end"] > p["start"]),
                       None)
            if not syncs or not seen or not own:
                continue
            s = seg[name]
            s["ping PUT"].append(p["end"] - p["start"])
            s["-> bot sync"].append(syncs[-1]["end"] - p["start"])
            s["bot"].append(put["start"] - syncs[-1]["end"])
            s["bot PUT"].append(put["end"] - put["start"])
            s["-> probe sync"].append(seen["end"] - put["start"])
            s["total"].append(seen["end"] - p["start"])
            s["first"].append(syncs[-1]["end"] <= own["end"])
    print_segments(seg, bots)
    return seg


SEGMENTS = ["ping PUT", "-> bot sync", "bot", "bot PUT", "-> probe sync", "total"]


def print_segments(seg, bots):
    """Medians per segment, and how often Synapse answered the bot's /sync
    woken by the !ping before the probe's own /sync woken by it (the order
    of its per-user streams in a Python set: fixed for a run, drawn anew
    for each bot; answered second, the bot gets the !ping 2-4 ms later)."""
    print("  trace, median ms per segment (Synapse's access log):")
    print("  " + f"{'bot':<8}" + "".join(f"{n:>14}" for n in SEGMENTS) + f"{'woken first':>14}")
    for name in bots:
        s = seg[name]
        if s:
            print("  " + f"{name:<8}" + "".join(f"{statistics.median(s[n]):14.1f}" for n in SEGMENTS)
                  + f"{sum(s['first'])}/{len(s['first'])}".rjust(14))


def pct(lat, q):
    return lat[min(len(lat) - 1, int(q * len(lat)))]


def block_orders(names):
    """The order of the bots in each block: every rotation of names, then
    the same reversed (ABBA... for two), so drifting load hits each alike."""
    rot = [names[i:] + names[:i] for i in range(len(names))]
    return rot + [list(reversed(r)) for r in rot]


def run(mxfleet_bin, blocks, per_block, trace, baseline=None, pairs=False):
    os.environ["MXFLEET_BIN"] = mxfleet_bin
    peer_dir = peerlib.peer_dir()
    work = trace or mxtest.workdir("side-by-side-")
    os.makedirs(work, exist_ok=True)
    hs = mxtest.Homeserver.start_own()
    hs_log = synapse_access_log(hs) if trace else None
    js = op = None
    uids, mxs = {}, {}
    try:
        op = hs.new_user("alice")
        js = JsBot(hs, peer_dir, os.path.join(work, "js-echo-bot.log"))
        with contextlib.ExitStack() as stack:
            for name, binary in [("mxfleet", mxfleet_bin)] + ([("base", baseline)] if baseline else []):
                mx = stack.enter_context(mxtest.Bot(
                    hs, [op.user_id], [("pc1", mxtest.unique(f"agent-{name}"))],
                    bot_opts={"require_verified_sender": True, "sync_timeout_ms": 30000},
                    directory=os.path.join(work, name) if trace else None))
                mx.bin = binary
                mx.start(log_level="info")
                mxs[name] = mx
            peer = stack.enter_context(peerlib.Peer(hs.url, os.path.join(work, "peer.log")))
            peerlib.operator(peer, op)
            bots = {name: (mx.user_id(), mx.proc.pid) for name, mx in mxs.items()}
            bots["js"] = (js.user_id, js.proc.pid)
            uids = {name: uid for name, (uid, _) in bots.items()}
            rooms = {}
            for name, (uid, _) in bots.items():
                rooms[name] = peer("a", "create_dm", uid)["room_id"]
                peer("a", "wait_join", rooms[name], uid, 60)
                peer("a", "bench", rooms[name], uid, 5, "!ping")  # warm-up: sessions, key shares
            lat = {name: [] for name in bots}
            cpu = {name: 0.0 for name in bots}
            hs_cpu = {name: 0.0 for name in bots}
            hs_pid = synapse_pid(hs)
            orders = block_orders(list(bots))
            load_start = loadavg()
            for b in range(blocks):
                for name in orders[b % len(orders)]:
                    uid, pid = bots[name]
                    c0, h0 = cpu_seconds(pid), cpu_seconds(hs_pid)
                    lat[name] += peer("a", "bench_pair" if pairs else "bench", rooms[name], uid, per_block,
                                      "!ping")["latencies_ms"]
                    cpu[name] += cpu_seconds(pid) - c0
                    hs_cpu[name] += cpu_seconds(hs_pid) - h0
            load_end = loadavg()
            n = blocks * per_block
            print(f"encrypted !ping round trip{' of the second of two sent back to back' if pairs else ''}, "
                  f"{n} per bot in {blocks} alternating blocks of {per_block}, "
                  f"probe: matrix-js-sdk 37.5 Rust crypto, cross-signed operator, same Synapse")
            if trace:
                with open(os.path.join(work, "latencies.json"), "w") as f:
                    json.dump(lat, f)
            if baseline:
                print(f"  mxfleet: {mxfleet_bin}\n  base:    {baseline}")
            print(f"  {load_start} at the start, {load_end} at the end, {time.strftime('%Y-%m-%d %H:%M %Z')}")
            print(f"  {'bot':<8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'mean ms':>8} "
                  f"{'RSS MB':>7} {'peak MB':>7} {'CPU ms/msg':>10} {'Synapse CPU ms/msg':>18}")
            for name, (uid, pid) in bots.items():
                s = sorted(lat[name])
                print(f"  {name:<8} {pct(s, 0.5):8.1f} {pct(s, 0.95):8.1f} {s[-1]:8.1f} {statistics.mean(s):8.1f} "
                      f"{proc_status_kb(pid, 'VmRSS') / 1024:7.1f} {proc_status_kb(pid, 'VmHWM') / 1024:7.1f} "
                      f"{1000 * cpu[name] / n:10.2f} {1000 * hs_cpu[name] / n:18.1f}")
            for name in mxs:
                ratio = pct(sorted(lat[name]), 0.5) / pct(sorted(lat["js"]), 0.5)
                print(f"  {name} p50 / js p50 = {ratio:.2f} (target <= 0.80)")
            for name, mx in mxs.items():
                print(f"  {name}:")
                report_handling(mx.metrics()[1])
                mx.stop()
    finally:
        if js:
            js.stop()
        if hs_log:
            shutil.copyfile(hs_log, os.path.join(work, "synapse.log"))
        hs.stop()
    if trace and not pairs and js and len(uids) == len(mxs) + 1:
        trace_segments(os.path.join(work, "synapse.log"), op.user_id, uids)
    if not trace:
        shutil.rmtree(work, ignore_errors=True)


def main():
    args, trace, baseline, pairs = sys.argv[1:], None, None, False
    while args[:1] in (["--trace"], ["--baseline"], ["--pairs"]):
        if args[0] == "--pairs":
            pairs, args = True, args[1:]
            continue
        if len(args) < 2:
            break
        if args[0] == "--trace":
            trace = os.path.abspath(args[1])
        else:
            baseline = os.path.abspath(args[1])
        args = args[2:]
    if not args:
        sys.exit("usage: bench_side_by_side.py [--trace DIR] [--baseline MXFLEET_BIN] [--pairs] MXFLEET_BIN "
                 "[BLOCKS=10] [PER_BLOCK=10]")
    blocks = int(args[1]) if len(args) > 1 else 10
    per_block = int(args[2]) if len(args) > 2 else 10
    run(os.path.abspath(args[0]), blocks, per_block, trace, baseline, pairs)


if __name__ == "__main__":
    main()
