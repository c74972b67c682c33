"""Operations: `mxfleet run` against a homeserver that is down warns within
10 s (it used to stay silent for the 120 s of its first call), naming the
device, not the Matrix user ID; under systemd (JOURNAL_STREAM names stderr)
every line carries its journald priority ("<4>" for a warning); the config's
log_level sets the level (debug lines appear only with "debug"), and
--log-level overrides it. No homeserver is started: port 9 refuses."""

import json
import os
import re
import signal
import subprocess
import time

import mxtest
from mxtest import check


def config(d, **extra):
    os.makedirs(os.path.join(d, "secrets"), exist_ok=True)
    with open(os.path.join(d, "secrets", "pc1.pw"), "w") as f:
        f.write("pw\n")
    cfg = {"homeserver": "http://127.0.0.1:9", "data_dir": "data",
           "operators": ["@alice:example.org"],
           "devices": [{"name": "pc1", "matrix": {"user_id": "@agent-pc1:example.org",
                                                  "password_file": "secrets/pc1.pw"}}]}
    cfg.update(extra)
    path = os.path.join(d, "mxfleet.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def run_until_warning(d, journal=False, args=()):
    """Starts the daemon, returns its log once the outage warning is there
    (deadline 10 s from the start), then stops it."""
    log_path = os.path.join(d, f"run-{len(os.listdir(d))}.log")
    log = open(log_path, "wb")
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    if journal:
        st = os.fstat(log.fileno())
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    started = time.monotonic()
    p = subprocess.Popen([mxtest.mxfleet_bin(), "run", "--config", config(d, **run_until_warning.extra),
                          *args], stdout=log, stderr=log, env=env, cwd=d)
    try:
        def warned():
            with open(log_path) as f:
                text = f.read()
            return text if "unreachable" in text else None
        text = mxtest.wait_until(warned, 10, "a warning that the homeserver is unreachable")
        check(time.monotonic() - started <= 10.5, "the warning took longer than 10 s")
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        log.close()
    with open(log_path) as f:
        return f.read()


run_until_warning.extra = {}


def test():
    d = mxtest.workdir("opslog-")
    # under systemd: priorities, the device name as the only identity label
    text = run_until_warning(d, journal=True)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    warn = [ln for ln in lines if "unreachable" in ln]
    check(warn and warn[0].startswith("<4>") and "level=warn id=pc1 " in warn[0],
          f"outage warning: {warn}")
    check(all(re.match(r"^<[3467]>\d{4}-", ln) for ln in lines), f"a line without its priority: {lines}")
    check(all(("<6>" in ln[:3]) == ("level=info" in ln) for ln in lines), f"priority/level mismatch: {lines}")
    ids = set(re.findall(r" id=(\S+) ", text))
    check(ids <= {"-", "pc1"}, f"log lines name identities other than the device name: {ids}")
    check("level=debug" not in text, f"debug lines at the default level: {text}")

    # not under systemd: plain lines; the config's log_level applies
    run_until_warning.extra = {"log_level": "debug"}
    text = run_until_warning(d)
    check(not text.lstrip().startswith("<"), f"priority prefix outside the journal: {text[:200]}")
    check("level=debug" in text, f"log_level debug in the config shows no debug lines: {text}")
    # --log-level wins over the config
    text = run_until_warning(d, args=("--log-level", "info"))
    check("level=debug" not in text, f"--log-level info did not override log_level debug: {text}")


mxtest.run(test)
