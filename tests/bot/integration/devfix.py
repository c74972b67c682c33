"""Device fixtures shared by the daemon's tests (tests/bot/integration,
tests/faults): a private sshd from tests/devices/sshd-fixture with the
bot's known_hosts pinned to its host key, and a WireGuard link to
mxfleet-agent from tests/devices/wgnet with the test re-run inside the hub
namespace. Stdlib + mxtest only; every fixture is stopped also on failure."""

import os
import subprocess
import sys

import mxtest

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
SSHD_FIXTURE = os.path.join(REPO, "tests", "devices", "sshd-fixture")
WGNET = os.path.join(REPO, "tests", "devices", "wgnet")


class Sshd:
    """The key-only sshd of the fixture in WORK/sshd (a context manager).
    Attributes: dir, port, user, key_file, known_hosts (WORK/known_hosts)."""

    def __init__(self, work):
        self.dir = os.path.join(work, "sshd")
        subprocess.run([SSHD_FIXTURE, "start", self.dir], check=True, capture_output=True)
        self.port = int(open(os.path.join(self.dir, "port")).read())
        self.user = open(os.path.join(self.dir, "user")).read().strip()
        self.key_file = os.path.join(self.dir, "user_ed25519")
        os.chmod(work, 0o755)
        self.known_hosts = os.path.join(work, "known_hosts")
        with open(os.path.join(self.dir, "host_ed25519.pub")) as f:
            kt, kb = f.read().split()[:2]
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kt} {kb}\n")

    def backend(self):
        """The device's `backend` block for the bot's config."""
        return {"kind": "ssh", "host": "127.0.0.1", "port": self.port, "user": self.user,
                "key_file": self.key_file, "known_hosts": self.known_hosts}

    def logins(self):
        """Accepted logins so far (the server logs VERBOSE)."""
        with open(os.path.join(self.dir, "sshd.log")) as f:
            return f.read().count("Accepted publickey")

    def stop(self):
        subprocess.run([SSHD_FIXTURE, "stop", self.dir], capture_output=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def wgnet_main(script, inside, net_name):
    """The main of a WireGuard test: sets up the tunnel in
    $MX_TEST_TMP/net_name, re-runs `script` inside the hub namespace (where
    it finds the tunnel's directory in MXF_WG_DIR and runs inside(dir) with a
    private Synapse: the shared one is not reachable from there), then tears
    the tunnel down and exits with the inner run's code."""
    name = os.path.basename(script)
    wg = os.environ.get("MXF_WG_DIR")
    if wg:
        mxtest.run(lambda: inside(wg))
        return
    agent = os.environ.get("MXFLEET_AGENT_BIN")
    if not agent:
        print(f"FAIL {name}: MXFLEET_AGENT_BIN is not set", flush=True)
        sys.exit(1)
    wgdir = os.path.join(os.environ.get("MX_TEST_TMP") or "/tmp", net_name)
    if subprocess.run([WGNET, "setup", wgdir, agent]).returncode:
        print(f"FAIL {name}: wgnet setup failed", flush=True)
        sys.exit(1)
    try:
        env = dict(os.environ)
        env.pop("MX_HS_ENV", None)
        rc = subprocess.run([WGNET, "exec", wgdir, "--", sys.executable, os.path.abspath(script)],
                            env=env).returncode
    finally:
        subprocess.run([WGNET, "cleanup", wgdir])
    sys.exit(rc)
