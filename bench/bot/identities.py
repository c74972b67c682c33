#!/usr/bin/env python3
"""Benchmark: N device identities in one mxfleet process against a private
test Synapse. For each N prints the time until every identity has finished
its first sync (/health turns 200), the resident memory (VmRSS, and VmHWM
peak) and the idle CPU (the scheduler's runtime of its threads over an idle window, as % of one core),
with the load average beside it (the machine is shared: repeat when busy).

  bench/bot/identities.py --mxfleet build/bot/mxfleet [--counts 1,200,1000]
                          [--idle 60] [--settle 2] [--sync-timeout-ms 30000]

With --restart N (issue 14.3) it starts N identities, waits until all are
healthy, stops the daemon (SIGTERM) and starts it again --repeat times,
printing the time until all N are healthy again, the bot's and Synapse's CPU
meanwhile and the requests of each kind the restart made (counted by a
recording proxy when --count-requests). With --restart-idle S it then
starts once more and prints the idle CPU over S seconds from --idle-settle
seconds after healthy, with the long-poll renewals answered meanwhile (from
/metrics) and the bot's CPU per renewal. --state DIR keeps the Synapse
instance, the registered users and the bot's data_dir for the next run
(registering and first-starting 1,000 identities takes minutes).

The idle window should span two long-polls of the length in force so every
identity's renewal falls in it (the renewals come in step after a start):
2 x 120 s once the daemon has stretched its long-poll to the default
bot.sync_timeout_max_ms, which takes it some 400 s after a start
(--idle-settle 400 --restart-idle 240); 2 x 30 s with
--sync-timeout-max-ms 30000, which keeps the long-poll at 30 s. Needs root
(the Synapse chroot). Not part of ctest; figures go into
docs/performance.md. Targets (issue 14): 1,000 identities
<= 64 MB RSS and <= 0.5 % of one core idle; a restart of 1,000 identities
healthy in <= 10 s.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "homeserver"))
import mxtest  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def cpu_seconds(pid):
    """The process's time on a CPU, exact: the scheduler's per-thread runtime
    (/proc/PID/task/*/schedstat, ns). utime+stime are charged per clock tick
    (1/100 s) to whoever runs when it fires, a sample: an idle window of 60 s
    at 0.5 % is some 30 ticks, +-18 % from one window to the next."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total / 1e9


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def synapse_pid(hs, directory=None):
    """The test Synapse's pid, from the pid file inside the chroot."""
    root = os.environ.get("MXFLEET_SYNAPSE_ROOT", "/var/cache/mxfleet/synapse-root")
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(directory or hs._owned_dir, "env")))
    with open(f"{root}{env['MX_HS_INNER']}/homeserver.pid") as f:
        return int(f.read())


def register_all(hs, count):
    """Registers agent-b0..agent-b<count-1> in parallel; returns {localpart: pw}."""
    names = [f"agent-b{i}" for i in range(count)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: (n, hs.register(n)[1]), names))
    return dict(results)


def run_one(hs, binary, n, passwords, idle_s, opts, hs_pid, settle_s=2.0):
    devices = [(f"b{i}", f"agent-b{i}") for i in range(n)]
    os.environ["MXFLEET_BIN"] = binary
    bot = mxtest.Bot(hs, [hs.user_id("bench-op")], devices, passwords=passwords, bot_opts=opts)
    with bot:
        hs_c0 = cpu_ticks(hs_pid)
        bot.start(log_level="warn", wait_healthy=False)
        bot.wait_healthy(300, interval=0.05)
        first_sync = bot.healthy_after
        pid = bot.proc.pid
        # CPU seconds each side spent on start-up: shows who bounds first sync
        start_cpu = cpu_ticks(pid) / CLK_TCK
        hs_cpu = (cpu_ticks(hs_pid) - hs_c0) / CLK_TCK
        time.sleep(settle_s)  # let post-sync work (display names, alerts room) finish
        c0, w0 = cpu_seconds(pid), time.monotonic()
        time.sleep(idle_s)
        c1, w1 = cpu_seconds(pid), time.monotonic()
        load = os.getloadavg()[0]
        bot.assert_running()
        rss = proc_status(pid, "VmRSS")
        hwm = proc_status(pid, "VmHWM")
        bot.stop()
    cpu_pct = 100.0 * (c1 - c0) / (w1 - w0)
    return {"n": n, "first_sync_s": first_sync, "rss_mb": rss / 1024, "hwm_mb": hwm / 1024,
            "start_cpu_s": start_cpu, "hs_cpu_s": hs_cpu,
            "idle_cpu_pct": cpu_pct, "idle_s": w1 - w0, "load": load}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def restart_homeserver(state):
    """The bench's Synapse: kept in state/synapse across runs when state is
    given (users stay registered), else a private one deleted at the end.
    Returns (hs, synapse directory, stop function)."""
    if not state:
        hs = mxtest.Homeserver.start_own()
        return hs, hs._owned_dir, hs.stop
    directory = os.path.join(state, "synapse")
    os.makedirs(directory, exist_ok=True)
    subprocess.run([mxtest.SYNAPSE_SCRIPT, "start", directory, "--keep"], check=True, stdout=subprocess.DEVNULL)
    hs = mxtest.Homeserver(os.path.join(directory, "env"))
    return hs, directory, lambda: subprocess.run([mxtest.SYNAPSE_SCRIPT, "stop", directory, "--keep"], check=False)


def restart_users(hs, state, n):
    """{localpart: password} for agent-b0..b<n-1> and bench-op, registered
    once per state directory."""
    path = os.path.join(state, "users.json") if state else None
    users = {}
    if path and os.path.exists(path):
        with open(path) as f:
            users = json.load(f)
    missing = n - sum(1 for k in users if k.startswith("agent-b"))
    if missing > 0 or "bench-op" not in users:
        t0 = time.monotonic()
        names = [f"agent-b{i}" for i in range(n) if f"agent-b{i}" not in users]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            users.update(pool.map(lambda u: (u, hs.register(u)[1]), names))
        if "bench-op" not in users:
            users["bench-op"] = hs.register("bench-op")[1]
        print(f"registered {len(names)} users in {time.monotonic() - t0:.1f} s", flush=True)
        if path:
            with open(path, "w") as f:
                json.dump(users, f)
    return users


def request_kinds(entries):
    """Counts the proxy's log by request kind (method and path, IDs cut)."""
    kinds = collections.Counter()
    for e in entries:
        parts = e["path"].split("/")
        key = "/".join(p if not p or p[0] not in "!@#%$" else "*" for p in parts[4:7])
        if key == "sync":  # the first of a run returns at once, later ones long-poll
            key += " (timeout=0)" if e["query"].get("timeout") == ["0"] else " (long-poll)"
        kinds[f"{e['method']} {key}"] += 1
    return kinds


def idle_after_start(bot, args):
    """--restart-idle: one more start, then the idle CPU over a window that
    begins --idle-settle seconds after all are healthy (past the first health
    round, which verifies every audit chain once), with the long-poll
    renewals answered meanwhile (from /metrics) and the CPU per renewal."""
    bot.start(log_level="warn", wait_healthy=False)
    bot.wait_healthy(600, interval=0.1)
    pid = bot.proc.pid
    time.sleep(args.idle_settle)
    rss = proc_status(pid, "VmRSS")  # before the first /metrics render (4 KB of text per identity)
    # the renders' own CPU stays outside the window: counts before and after it
    s0 = int(bot.metric_total("mxfleet_syncs_total"))
    len0 = bot.metric_total("mxfleet_sync_longpoll_seconds")
    c0, w0 = cpu_seconds(pid), time.monotonic()
    time.sleep(args.restart_idle)
    c1, w1 = cpu_seconds(pid), time.monotonic()
    s1 = int(bot.metric_total("mxfleet_syncs_total"))
    len1 = bot.metric_total("mxfleet_sync_longpoll_seconds")
    load = loadavg()
    rss_scraped = proc_status(pid, "VmRSS")  # after two renders: an operator's Prometheus scrapes
    bot.assert_running()
    bot.stop(limit=30)
    cpu_s = c1 - c0
    renewals = max(s1 - s0, 1)
    return {"idle_cpu_pct": 100.0 * cpu_s / (w1 - w0), "idle_s": w1 - w0, "renewals": s1 - s0,
            "us_per_renewal": 1e6 * cpu_s / renewals, "rss_mb": rss / 1024,
            "rss_scraped_mb": rss_scraped / 1024, "load": load, "longpoll_s": (len0, len1)}


def bot_opts(args):
    o = {"sync_timeout_ms": args.sync_timeout_ms}
    if args.sync_timeout_max_ms:
        o["sync_timeout_max_ms"] = args.sync_timeout_max_ms
    return o


def run_restart(args, binary):
    """Issue 14.3: N identities, started, stopped and started again."""
    n = args.restart
    state = os.path.abspath(args.state) if args.state else None
    hs, hs_dir, hs_stop = restart_homeserver(state)
    proxy = None
    try:
        users = restart_users(hs, state, n)
        hs_pid = synapse_pid(hs, hs_dir)
        if args.count_requests:
            sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "faults"))
            from faultproxy import FaultProxy
            proxy = FaultProxy(hs.url)
        bot_dir = os.path.join(state, "bot") if state else mxtest.workdir("bench-restart-")
        os.makedirs(bot_dir, exist_ok=True)
        os.environ["MXFLEET_BIN"] = binary
        devices = [(f"b{i}", f"agent-b{i}") for i in range(n)]
        bot = mxtest.Bot(hs, [hs.user_id("bench-op")], devices, directory=bot_dir, passwords=users,
                         alerts_room=f"#bench-alerts:{hs.name}",
                         bot_opts=bot_opts(args))
        if proxy:
            bot.config["homeserver"] = proxy.url
            bot.write_config()
        rows = []
        with bot:
            first = not os.path.exists(os.path.join(bot_dir, "data", "mxfleet.db"))
            bot.start(log_level="warn", wait_healthy=False)
            bot.wait_healthy(1800, interval=0.2)
            print(f"{'first start' if first else 'start'} of {n}: all healthy after {bot.healthy_after:.2f} s "
                  f"(load {loadavg()})", flush=True)
            time.sleep(args.settle)  # post-sync work (one-time keys, alerts room) done before the stop
            bot.stop(limit=30)
            for _ in range(args.repeat):
                load0 = loadavg()
                t_req = time.monotonic()
                hs_c0 = cpu_ticks(hs_pid)
                bot.start(log_level="warn", wait_healthy=False)
                bot.wait_healthy(600, interval=0.02)
                pid = bot.proc.pid
                bot_cpu = cpu_ticks(pid) / CLK_TCK
                hs_cpu = (cpu_ticks(hs_pid) - hs_c0) / CLK_TCK
                kinds = request_kinds(proxy.entries(t_req)) if proxy else {}
                rows.append({"healthy_s": bot.healthy_after, "bot_cpu_s": bot_cpu, "hs_cpu_s": hs_cpu,
                             "load": load0, "kinds": kinds})
                time.sleep(args.settle)
                bot.stop(limit=30)
            if args.restart_idle:
                idle = idle_after_start(bot, args)
    finally:
        if proxy:
            proxy.stop()
        hs_stop()
    print(f"\n| identities | restart to all healthy (s) | bot CPU (s) | Synapse CPU (s) | load average before |")
    print("|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {n} | {r['healthy_s']:.2f} | {r['bot_cpu_s']:.2f} | {r['hs_cpu_s']:.2f} | {r['load']} |")
    for i, r in enumerate(rows):
        if r["kinds"]:
            print(f"requests of restart {i + 1} answered until all healthy (through the proxy): "
                  + ", ".join(f"{k} x{v}" for k, v in sorted(r["kinds"].items())))
    if args.restart_idle:
        print(f"\nidle after a restart of {n} (window {idle['idle_s']:.0f} s from {args.idle_settle:.0f} s after "
              f"healthy): {idle['idle_cpu_pct']:.3f} % of one core, {idle['renewals']} long-poll renewals, "
              f"{idle['us_per_renewal']:.0f} us of bot CPU per renewal, RSS {idle['rss_mb']:.1f} MB "
              f"({idle['rss_scraped_mb']:.1f} MB after two /metrics scrapes), "
              f"long-poll {idle['longpoll_s'][0]:g} s at the start of the window, {idle['longpoll_s'][1]:g} s at "
              f"its end, load average {idle['load']}")
    worst = max(r["healthy_s"] for r in rows) if rows else 0
    if n >= 1000 and worst > 10:
        print(f"\nover target: a restart of {n} identities took {worst:.2f} s (target 10 s)")
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mxfleet", required=True, help="path of the built mxfleet binary")
    ap.add_argument("--counts", default="1,200,1000", help="comma-separated identity counts")
    ap.add_argument("--idle", type=float, default=60.0, help="idle window in seconds")
    ap.add_argument("--sync-timeout-ms", type=int, default=30000,
                    help="bot.sync_timeout_ms (long-poll length at the start) for the run")
    ap.add_argument("--sync-timeout-max-ms", type=int,
                    help="bot.sync_timeout_max_ms (the longest the long-poll is stretched to; the same as "
                         "--sync-timeout-ms: not stretched) for the run; default: the daemon's")
    ap.add_argument("--restart", type=int, metavar="N", help="restart benchmark with N identities (issue 14.3)")
    ap.add_argument("--repeat", type=int, default=3, help="--restart: restarts to time")
    ap.add_argument("--state", help="--restart: directory keeping Synapse, users and the bot's data across runs")
    ap.add_argument("--settle", type=float,
                    help="seconds between the last first sync and the idle window (default 2); "
                         "--restart: after healthy before each stop (default 5)")
    ap.add_argument("--restart-idle", type=float, default=0, metavar="SECONDS",
                    help="--restart: after the restarts, start once more and measure the idle CPU over SECONDS")
    ap.add_argument("--idle-settle", type=float, default=70.0,
                    help="--restart-idle: seconds after healthy before the window (default 70: past the first "
                         "health round)")
    ap.add_argument("--count-requests", action="store_true",
                    help="--restart: route the bot through a recording proxy and count each kind of request")
    args = ap.parse_args()
    binary = os.path.abspath(args.mxfleet)
    if not os.access(binary, os.X_OK):
        sys.exit(f"--mxfleet: expected an executable, got '{args.mxfleet}'")
    if args.settle is None:
        args.settle = 5.0 if args.restart else 2.0
    if args.restart:
        return run_restart(args, binary)
    counts = [int(c) for c in args.counts.split(",")]

    with mxtest.Homeserver.start_own() as hs:
        t0 = time.monotonic()
        passwords = register_all(hs, max(counts))
        hs.register("bench-op")
        print(f"registered {max(counts)} users in {time.monotonic() - t0:.1f} s", flush=True)
        hs_pid = synapse_pid(hs)
        rows = [run_one(hs, binary, n, passwords, args.idle, bot_opts(args), hs_pid, args.settle)
                for n in counts]

    print(f"\n| identities | first sync, all (s) | RSS (MB) | peak RSS (MB) "
          f"| idle CPU over {args.idle:.0f} s | load average | bot CPU to first sync (s) | Synapse CPU meanwhile (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']} | {r['first_sync_s']:.2f} | {r['rss_mb']:.1f} | {r['hwm_mb']:.1f} "
              f"| {r['idle_cpu_pct']:.2f} % | {r['load']:.2f} | {r['start_cpu_s']:.2f} | {r['hs_cpu_s']:.2f} |")
    over = [r for r in rows if r["n"] >= 1000 and (r["rss_mb"] > 64 or r["idle_cpu_pct"] > 0.5)]
    for r in over:
        print(f"\nover target with {r['n']} identities: {r['rss_mb']:.1f} MB RSS (target 64 MB), "
              f"{r['idle_cpu_pct']:.2f} % idle CPU (target 0.5 %)")
    return 1 if over else 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        import shutil
        for d in mxtest._workdirs:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(rc)
