"""Tests the synapse script's life cycle: a second start in the same DIR (as
after a killed run) replaces the stale instance instead of failing or leaving
it running; stop leaves no process; --keep keeps users and the port across a
stop/start."""

import os
import subprocess

import mxtest
from mxtest import check

ROOT = os.environ.get("MXFLEET_SYNAPSE_ROOT", "/var/cache/mxfleet/synapse-root")


def script(*args):
    p = subprocess.run([mxtest.SYNAPSE_SCRIPT, *args], capture_output=True, text=True)
    check(p.returncode == 0, f"synapse {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p.stdout.strip()


def pid_of(d):
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(d, "env")))
    with open(f"{ROOT}{env['MX_HS_INNER']}/homeserver.pid") as f:
        return int(f.read())


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test():
    d = mxtest.workdir("synapse-script-")
    try:
        url1 = script("start", d)
        stale = pid_of(d)
        url2 = script("start", d)  # the first instance plays a killed run's leftover
        fresh = pid_of(d)
        check(stale != fresh, "second start reused the stale process")
        check(not alive(stale), f"stale Synapse {stale} still running after a new start")
        status, _, _ = mxtest.http("GET", f"{url2}/_matrix/client/versions")
        check(status == 200, f"new instance at {url2} answers {status}")
        if url1 != url2:
            try:
                mxtest.http("GET", f"{url1}/_matrix/client/versions", timeout=2)
                raise mxtest.TestFailure(f"stale instance still answers at {url1}")
            except OSError:
                pass

        hs = mxtest.Homeserver(os.path.join(d, "env"))
        _, pw = hs.register("keeper")
        script("stop", d, "--keep")
        check(not alive(fresh), "stop left Synapse running")
        check(not os.path.exists(os.path.join(d, "env")), "stop left the env file")
        url3 = script("start", d, "--keep")
        check(url3 == url2, f"--keep moved the server from {url2} to {url3}")
        mxtest.Homeserver(os.path.join(d, "env")).login("keeper", pw)
    finally:
        script("stop", d)


mxtest.run(test)
