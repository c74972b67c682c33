#!/usr/bin/env python3
"""Benchmark: the long version of tests/faults/test_hs_storm.py - a bigger
429/5xx storm between the mxfleet daemon and a private Synapse, over several
seeds. For each seed prints the faults injected, the send attempts, the
seconds the storm took and what was lost or doubled (both must be 0); exits
non-zero when anything was.

  sudo bench/faults/hs_storm.py --mxfleet build/bot/mxfleet
                                [--seeds 1,2,3] [--pings 200] [--rate 0.4]

Needs root (the Synapse chroot). Not part of ctest; figures go into
docs/testing.md ("Fault injection").
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
TEST = os.path.join(REPO, "tests", "faults", "test_hs_storm.py")
sys.path.insert(0, os.path.join(REPO, "tests", "homeserver"))
import mxtest  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mxfleet", required=True, help="the mxfleet binary")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--pings", type=int, default=200)
    ap.add_argument("--rate", type=float, default=0.4)
    a = ap.parse_args()
    hs_dir = mxtest.workdir("bench-storm-")
    subprocess.run([mxtest.SYNAPSE_SCRIPT, "start", hs_dir], check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ, MXFLEET_BIN=os.path.abspath(a.mxfleet), MX_HS_ENV=os.path.join(hs_dir, "env"),
               MX_FAULT_PINGS=str(a.pings), MX_FAULT_RATE=str(a.rate), PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join([os.path.join(REPO, "tests", d) for d in
                                           ("homeserver", "faults", os.path.join("bot", "integration"))]))
    bad = 0
    print(f"{'seed':>5} {'pings':>6} {'faults':>7} {'sends':>6} {'seconds':>8} {'lost':>5} {'doubled':>8}  result")
    try:
        for seed in a.seeds.split(","):
            r = subprocess.run([sys.executable, TEST], env=dict(env, MX_FAULT_SEED=seed),
                               capture_output=True, text=True, timeout=1800)
            m = re.search(r"STORM .*?faults=(\d+) send_attempts=(\d+) lost=(\d+) doubled=(\d+) seconds=([\d.]+)",
                          r.stdout)
            ok = r.returncode == 0
            if not m:
                print(f"{seed:>5} no summary; the run failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
                bad += 1
                continue
            faults, sends, lost, doubled, secs = m.groups()
            bad += (not ok) or int(lost) or int(doubled)
            last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
            print(f"{seed:>5} {a.pings:>6} {faults:>7} {sends:>6} {secs:>8} {lost:>5} {doubled:>8}  "
                  f"{'ok' if ok else last[:200]}", flush=True)
    finally:
        subprocess.run([mxtest.SYNAPSE_SCRIPT, "stop", hs_dir], check=False)
    sys.exit(1 if bad else 0)


main()
