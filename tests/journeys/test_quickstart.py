"""Journey 1 (issue 10.8), README's quick start: `sudo scripts/run` by an
ordinary user on a machine where nothing answers on the example's
homeserver. It starts the local Synapse, registers the example operator and
bot, prints how to sign in, and runs the bot as that user, not root; the
operator's password file is theirs to read. Then Element's crypto
(matrix-js-sdk, cross-signed) signs in exactly as printed, opens an
encrypted DM with the example's agent and gets `pong`, with the example's
default settings (require_verified_sender on).

Deviations, each because the test shares the machine: scripts/run runs from
a copy of the files it uses (so the checkout's examples/secrets and data/
are not touched), the copied example's two ports are free ones instead of
8008/9108, `sudo` is simulated by SUDO_USER (the test already is root) for a
fresh user removed at the end, and MXFLEET_BIN (documented in scripts/run)
reuses this build instead of building build/ again."""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time

import mxtest
from mxtest import check, log

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from peerlib import Peer, ping_in_new_dm  # noqa: E402

FILES = ["scripts/run", "scripts/install-deps", "examples/mxfleet.json", "examples/manifests/pc1.json",
         "tests/homeserver/synapse", "tests/homeserver/mxtest.py"]


def copy_tree(src, dst):
    for f in FILES:
        os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
        shutil.copy2(os.path.join(src, f), os.path.join(dst, f))


def owner_of_pid(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^Uid:\s+(\d+)\s+(\d+)", f.read(), re.M).group(2))


def bot_pids(config):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            argv = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 3 and argv[0].endswith(b"/mxfleet") and argv[1] == b"run" and config.encode() in argv:
            out.append(int(p))
    return out


def test():
    check(os.geteuid() == 0, "this journey creates a user and runs scripts/run as root: run it as root")
    src = os.environ["MX_SOURCE_DIR"]
    work = mxtest.workdir("quickstart-")
    os.chmod(work, 0o755)
    tree = os.path.join(work, "mxfleet")
    copy_tree(src, tree)
    cfg_path = os.path.join(tree, "examples", "mxfleet.json")
    cfg = json.load(open(cfg_path))
    hs_port, http_port = mxtest.free_port(), mxtest.free_port()
    cfg["homeserver"] = cfg["homeserver"].replace(":8008", f":{hs_port}")
    cfg["bot"]["http_listen"] = f"127.0.0.1:{http_port}"
    json.dump(cfg, open(cfg_path, "w"), indent=2)

    human = "mxqs" + secrets.token_hex(3)
    subprocess.run(["useradd", "--user-group", "--no-create-home", "--shell", "/bin/sh", human], check=True)
    out_path = os.path.join(work, "run.out")
    proc = None
    try:
        env = dict(os.environ, SUDO_USER=human, MXFLEET_BIN=os.environ["MXFLEET_BIN"])
        for k in ("MX_HS_ENV", "MXFLEET_RUN_USER", "MXFLEET_LAN"):
            env.pop(k, None)
        with open(out_path, "wb") as out:
            proc = subprocess.Popen([os.path.join(tree, "scripts", "run")], stdout=out, stderr=subprocess.STDOUT,
                                    env=env, cwd=work, start_new_session=True)
        journey(proc, out_path, tree, cfg, human, http_port)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as the README says
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        subprocess.run([os.path.join(tree, "tests", "homeserver", "synapse"), "stop",
                        os.path.join(tree, "data", "synapse")], capture_output=True)
        subprocess.run(["userdel", human], capture_output=True)
        subprocess.run(["groupdel", human], capture_output=True)


def journey(proc, out_path, tree, cfg, human, http_port):
    def output():
        return open(out_path, errors="replace").read()

    def signed_in_text():
        check(proc.poll() is None, f"scripts/run exited with {proc.returncode}:\n{output()[-3000:]}")
        m = re.search(r"homeserver\s+(\S+).*?\n\s+user\s+(\S+)\n\s+password\s+the line in (\S+)", output(), re.S)
        return m and m.groups()
    hs_url, user, pw_file = mxtest.wait_until(signed_in_text, 240, "scripts/run to print how to sign in")
    check(hs_url == cfg["homeserver"], f"printed homeserver {hs_url}, config says {cfg['homeserver']}")
    check("from a phone on the same network" in output(), "no hint for signing in from a phone")

    def healthy():
        check(proc.poll() is None, f"scripts/run exited with {proc.returncode}:\n{output()[-3000:]}")
        try:
            return mxtest.http("GET", f"http://127.0.0.1:{http_port}/health", timeout=5)[0] == 200
        except OSError:
            return False
    mxtest.wait_until(healthy, 120, "the bot's /health")
    uid = int(subprocess.run(["id", "-u", human], capture_output=True, text=True).stdout)
    pids = bot_pids(os.path.join(tree, "examples", "mxfleet.json"))
    check(pids, "cannot find the running bot")
    check(all(owner_of_pid(p) == uid for p in pids),
          f"the bot runs as uid {[owner_of_pid(p) for p in pids]}, not as {human} ({uid})")
    st = os.stat(pw_file)
    check(st.st_uid == uid and st.st_mode & 0o777 == 0o600,
          f"the operator's password file is {st.st_uid} {oct(st.st_mode & 0o777)}, not {human}'s 0600")

    password = open(pw_file).read().strip()
    agent = cfg["devices"][0]["matrix"]["user_id"]
    log(f"signing in as {user} on {hs_url}")
    with Peer(hs_url, os.path.join(os.path.dirname(out_path), "peer.log")) as peer:
        peer("a", "login", user[1:].split(":")[0], password)
        peer("a", "xsign", password)
        ping_in_new_dm(peer, agent)
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.monotonic()
    rc = proc.wait(timeout=30)
    log(f"scripts/run exited {rc} {time.monotonic() - t0:.1f} s after Ctrl-C; its output:\n"
        + "\n".join(ln for ln in output().splitlines() if ln.startswith(("scripts/run", "  "))))


mxtest.run(test)
