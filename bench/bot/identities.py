#!/usr/bin/env python3
"""Benchmark: N device identities in one mxfleet process against a private
test Synapse. For each N prints the time until every identity has finished
its first sync (/health turns 200), the resident memory (VmRSS, and VmHWM
peak) and the idle CPU (utime+stime over an idle window, as % of one core).

  bench/bot/identities.py --mxfleet build/bot/mxfleet [--counts 1,50,200]
                          [--idle 10] [--sync-timeout-ms 30000]

Needs root (the Synapse chroot). Not part of ctest; figures go into
docs/performance.md. Target: 200 identities <= 64 MB RSS, near-zero idle CPU.
"""

import argparse
import concurrent.futures
import os
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


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def synapse_pid(hs):
    """The test Synapse's pid, from the pid file inside the chroot."""
    root = os.environ.get("MXFLEET_SYNAPSE_ROOT", "/var/cache/mxfleet/synapse-root")
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(hs._owned_dir, "env")))
    with open(f"{root}{env['MX_HS_INNER']}/homeserver.pid") as f:
        return int(f.read())


def register_all(hs, count):
    """Registers agent-b0..agent-b<count-1> in parallel; returns {localpart: pw}."""
    names = [f"agent-b{i}" for i in range(count)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: (n, hs.register(n)[1]), names))
    return dict(results)


def run_one(hs, binary, n, passwords, idle_s, sync_timeout_ms, hs_pid):
    devices = [(f"b{i}", f"agent-b{i}") for i in range(n)]
    os.environ["MXFLEET_BIN"] = binary
    bot = mxtest.Bot(hs, [hs.user_id("bench-op")], devices, passwords=passwords,
                     bot_opts={"sync_timeout_ms": sync_timeout_ms})
    with bot:
        hs_c0 = cpu_ticks(hs_pid)
        bot.start(log_level="warn", wait_healthy=False)
        bot.wait_healthy(300, interval=0.05)
        first_sync = bot.healthy_after
        pid = bot.proc.pid
        # CPU seconds each side spent on start-up: shows who bounds first sync
        start_cpu = cpu_ticks(pid) / CLK_TCK
        hs_cpu = (cpu_ticks(hs_pid) - hs_c0) / CLK_TCK
        time.sleep(2)  # let post-sync work (display names, alerts room) finish
        c0, w0 = cpu_ticks(pid), time.monotonic()
        time.sleep(idle_s)
        c1, w1 = cpu_ticks(pid), time.monotonic()
        bot.assert_running()
        rss = proc_status(pid, "VmRSS")
        hwm = proc_status(pid, "VmHWM")
        bot.stop()
    cpu_pct = 100.0 * (c1 - c0) / CLK_TCK / (w1 - w0)
    return {"n": n, "first_sync_s": first_sync, "rss_mb": rss / 1024, "hwm_mb": hwm / 1024,
            "start_cpu_s": start_cpu, "hs_cpu_s": hs_cpu,
            "idle_cpu_pct": cpu_pct, "idle_s": w1 - w0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mxfleet", required=True, help="path of the built mxfleet binary")
    ap.add_argument("--counts", default="1,50,200", help="comma-separated identity counts")
    ap.add_argument("--idle", type=float, default=10.0, help="idle window in seconds")
    ap.add_argument("--sync-timeout-ms", type=int, default=30000,
                    help="bot.sync_timeout_ms (long-poll length) for the run")
    args = ap.parse_args()
    binary = os.path.abspath(args.mxfleet)
    if not os.access(binary, os.X_OK):
        sys.exit(f"--mxfleet: expected an executable, got '{args.mxfleet}'")
    counts = [int(c) for c in args.counts.split(",")]

    with mxtest.Homeserver.start_own() as hs:
        t0 = time.monotonic()
        passwords = register_all(hs, max(counts))
        hs.register("bench-op")
        print(f"registered {max(counts)} users in {time.monotonic() - t0:.1f} s", flush=True)
        hs_pid = synapse_pid(hs)
        rows = [run_one(hs, binary, n, passwords, args.idle, args.sync_timeout_ms, hs_pid)
                for n in counts]

    print(f"\n| identities | first sync, all (s) | RSS (MB) | peak RSS (MB) "
          f"| idle CPU over {args.idle:.0f} s | bot CPU to first sync (s) | Synapse CPU meanwhile (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']} | {r['first_sync_s']:.2f} | {r['rss_mb']:.1f} | {r['hwm_mb']:.1f} "
              f"| {r['idle_cpu_pct']:.2f} % | {r['start_cpu_s']:.2f} | {r['hs_cpu_s']:.2f} |")
    big = [r for r in rows if r["n"] >= 200]
    if big and big[0]["rss_mb"] > 64:
        print(f"\nover target: {big[0]['rss_mb']:.1f} MB RSS with {big[0]['n']} identities (target 64 MB)")
        return 1
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        import shutil
        for d in mxtest._workdirs:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(rc)
