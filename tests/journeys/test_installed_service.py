"""Journey 4 (issue 10.6), as docs/operations.md "Running as a service"
tells it: `cmake --install` into a prefix, a system user for the service,
/etc/mxfleet (root:USER 0750) and /var/lib/mxfleet (USER 0700), the config
written by hand, `mxfleet device add` run as root, then the installed
binary started as the unprivileged service user (as the shipped unit does:
User=, its ExecStart). It must start, and a cross-signed Element operator
(matrix-js-sdk Rust crypto) gets `pong` in an encrypted DM with the new
identity, default settings (require_verified_sender on). The two roots are
directories of the test (not the machine's /etc and /var/lib), the user a
fresh system user removed at the end."""

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys

import mxtest
from mxtest import check, log

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from peerlib import Peer, operator, ping_in_new_dm  # noqa: E402


def sh(*argv, **kw):
    log("$ " + " ".join(argv))
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    check(r.returncode == 0, f"{argv[0]} {argv[1] if len(argv) > 1 else ''} exited {r.returncode}:\n"
                             f"{r.stdout}\n{r.stderr}")
    return r.stdout


def install_dir(path, mode, uid, gid):
    os.makedirs(path, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def install_file(path, text, mode, uid, gid):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def test():
    check(os.geteuid() == 0, "this journey creates a system user: run it as root")
    build, src = os.environ["MX_BUILD_DIR"], os.environ["MX_SOURCE_DIR"]
    sshd = os.environ["MX_JOURNEY_SSHD_DIR"]
    hs = mxtest.Homeserver.from_env()
    work = mxtest.workdir("installed-")
    os.chmod(work, 0o755)  # the service user walks through it, as through /
    prefix = os.path.join(work, "prefix")
    sh("cmake", "--install", build, "--prefix", prefix)
    share = os.path.join(prefix, "share", "mxfleet")
    for f in ("templates/linux.json", "prompts/device.md", "systemd/mxfleet.service",
              "systemd/mxfleet@.service", "systemd/mxfleet-agent.service", "examples/mxfleet.json"):
        check(os.path.isfile(os.path.join(share, f)), f"cmake --install did not install share/mxfleet/{f}")
    unit = open(os.path.join(share, "systemd", "mxfleet.service")).read()
    binary = os.path.join(prefix, "bin", "mxfleet")
    # what systemd would run, in order: ExecStartPre lines, then ExecStart
    execs = [ln.split("=", 1)[1].split() for ln in unit.splitlines() if ln.startswith("ExecStartPre=")]
    execs += [ln.split("=", 1)[1].split() for ln in unit.splitlines() if ln.startswith("ExecStart=")]
    check(execs and all(cmd[0] == binary for cmd in execs),
          f"the installed unit does not run the installed binary: {execs}")

    user = "mxfj" + secrets.token_hex(3)
    sh("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", user)
    try:
        journey(hs, work, binary, execs, user, sshd)
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", user], capture_output=True)


def as_user(uid, gid, cmd, cfg_path):
    """cmd from the unit, as User=/Group= with the unit's config path mapped."""
    cmd = [cfg_path if a == "/etc/mxfleet/mxfleet.json" else a for a in cmd]
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"] + cmd


def journey(hs, work, binary, execs, user, sshd):
    pw = pwd.getpwnam(user)
    uid, gid = pw.pw_uid, pw.pw_gid
    etc = os.path.join(work, "etc", "mxfleet")
    data = os.path.join(work, "var", "lib", "mxfleet")
    # install -d -m 0700 -o mxfleet -g mxfleet /var/lib/mxfleet
    install_dir(data, 0o700, uid, gid)
    # install -d -m 0750 -o root -g mxfleet /etc/mxfleet
    install_dir(etc, 0o750, 0, gid)
    op = hs.new_user("alice")
    install_file(os.path.join(etc, "registration.secret"), hs.secret + "\n", 0o600, 0, 0)
    port = mxtest.free_port()
    config = {"homeserver": hs.url, "data_dir": data, "operators": [op.user_id],
              "alerts_room": f"#operator-alerts-{secrets.token_hex(3)}:{hs.name}",
              "registration": {"shared_secret_file": "registration.secret"},
              "bot": {"http_listen": f"127.0.0.1:{port}"}, "devices": []}
    cfg_path = os.path.join(etc, "mxfleet.json")
    install_file(cfg_path, json.dumps(config, indent=2) + "\n", 0o640, 0, gid)
    # the fleet's SSH key where device add looks by default, authorised on the host
    keys = os.path.join(data, "keys")
    os.makedirs(keys, mode=0o700)
    shutil.copyfile(os.path.join(sshd, "user_ed25519"), os.path.join(keys, "mxfleet_ed25519"))
    os.chmod(os.path.join(keys, "mxfleet_ed25519"), 0o600)
    ssh_user = open(os.path.join(sshd, "user")).read().strip()
    ssh_port = open(os.path.join(sshd, "port")).read().strip()

    name = "pc" + secrets.token_hex(2)
    out = sh(binary, "device", "add", name, "--via", "ssh", "--ssh", f"{ssh_user}@127.0.0.1:{ssh_port}",
             "--config", cfg_path)
    check(f"agent-{name} live" in out, f"device add did not finish:\n{out}")
    st = os.stat(cfg_path)
    check((st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid, 0o640),
          f"device add changed the config's owner/mode to {st.st_uid}:{st.st_gid} {oct(st.st_mode & 0o777)}")
    for root, dirs, files in os.walk(data):
        for f in dirs + files:
            p = os.path.join(root, f)
            check(os.lstat(p).st_uid == uid, f"device add left {p} owned by uid {os.lstat(p).st_uid}, not {user}")

    # the service: User=USER, the installed unit's ExecStartPre then ExecStart
    for pre in execs[:-1]:
        sh(*as_user(uid, gid, pre, cfg_path), cwd="/")
    log_path = os.path.join(work, "mxfleet.log")
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(as_user(uid, gid, execs[-1], cfg_path),
                                stdout=logf, stderr=logf, cwd="/", preexec_fn=mxtest._die_with_parent)
    try:
        def healthy():
            check(proc.poll() is None, f"the service exited with {proc.returncode}:\n{open(log_path).read()[-3000:]}")
            try:
                return mxtest.http("GET", f"http://127.0.0.1:{port}/health", timeout=5)[0] == 200
            except OSError:
                return False
        mxtest.wait_until(healthy, 90, "the service's /health")
        agent = f"@agent-{name}:{hs.name}"
        with Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            operator(peer, op)
            ping_in_new_dm(peer, agent)
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=10) == 0, f"the service did not stop cleanly:\n{open(log_path).read()[-3000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


mxtest.run(test)
