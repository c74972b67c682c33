"""Shared helpers of the fault-injection tests (tests/faults, bench/faults):
running the documented CLI beside the daemon, and the after-round store
checks every fault test ends with (PRAGMA integrity_check of every SQLite
file in data_dir, no SQLite I/O/corruption line in the daemon's log,
`mxfleet audit verify`). Stdlib + mxtest only."""

import glob
import json
import os
import random
import sqlite3
import subprocess

import mxtest
from mxtest import check

# What the daemon logs when its database is being corrupted under it.
BAD_LOG = ("disk I/O error", "database disk image is malformed", "file is not a database")


def seed():
    """The run's random seed: MX_FAULT_SEED (ctest fixes it), else a fresh one,
    printed so a failing run can be replayed."""
    s = int(os.environ.get("MX_FAULT_SEED") or random.randrange(1 << 30))
    mxtest.log(f"fault seed {s} (replay with MX_FAULT_SEED={s})")
    return random.Random(s)


def cli(bot, *args, ok=(0,), timeout=120):
    """Runs `mxfleet ARGS --config <bot's config>` in the bot's directory (as
    an operator would on the bot host); fails on an exit code not in ok."""
    argv = [bot.bin, *args, "--config", bot.config_path]
    p = subprocess.run(argv, capture_output=True, text=True, cwd=bot.dir, timeout=timeout)
    check(p.returncode in ok, f"{' '.join(args)}: exit {p.returncode}: {p.stdout[-800:]}{p.stderr[-800:]}")
    return p


def ssh_device_adder(bot, hs, sshd_dir, name):
    """Gives bot's config the registration secret and returns add(): one run
    of `mxfleet device add NAME --via ssh` against the sshd fixture in
    sshd_dir (idempotent: every run after the first is the repair path);
    add(OTHER) onboards another device on the same host."""
    secret = os.path.join(bot.dir, "secrets", "registration.secret")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(hs.secret + "\n")
    bot.config["registration"] = {"shared_secret_file": "secrets/registration.secret"}
    bot.write_config()
    port = open(os.path.join(sshd_dir, "port")).read().strip()
    user = open(os.path.join(sshd_dir, "user")).read().strip()
    key = os.path.join(sshd_dir, "user_ed25519")

    def add(device=name):
        return cli(bot, "device", "add", device, "--via", "ssh", "--ssh", f"{user}@127.0.0.1:{port}",
                   "--key", key)
    return add


def databases(bot):
    data = os.path.join(bot.dir, bot.config.get("data_dir", "data"))
    return sorted(glob.glob(os.path.join(data, "*.db")) + glob.glob(os.path.join(data, "*", "*.db")))


def integrity(path):
    """PRAGMA integrity_check of one database, read-only (it never creates
    or checkpoints anything)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return "; ".join(r[0] for r in con.execute("PRAGMA integrity_check").fetchall())
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        return f"error: {e}"


def sqlite_errors(text):
    return [line for line in text.splitlines() if any(b in line for b in BAD_LOG)]


def assert_log_clean(bot):
    """Fails at once, naming the lines, when the daemon logged SQLite I/O or
    corruption errors."""
    bad = sqlite_errors(bot.log_text())
    check(not bad, f"the daemon logged SQLite errors: {bad[:5]}")


def check_store(bot, log_text=None):
    """The store is intact: every database passes integrity_check, the log
    has no SQLite corruption line, `audit verify` exits 0."""
    dbs = databases(bot)
    check(dbs, f"no databases under {bot.dir}")
    for db in dbs:
        res = integrity(db)
        check(res == "ok", f"PRAGMA integrity_check of {db}: {res}")
    text = bot.log_text() if log_text is None else log_text
    bad = sqlite_errors(text)
    check(not bad, f"the daemon logged SQLite errors: {bad[:5]}")
    v = cli(bot, "audit", "verify", ok=(0, 1, 2, 3))
    check(v.returncode == 0, f"audit verify failed ({v.returncode}): {v.stdout[-800:]}{v.stderr[-800:]}")
    mxtest.log(f"store ok: {len(dbs)} databases pass integrity_check, audit verifies")


def processes_below(pid):
    """pid and every process below it (by /proc parent links): what a test
    kills to take down a server it started, sessions included."""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(p))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def running(argv):
    """PIDs whose command line is exactly argv (a tool call's command on a
    device, which shares the test's PID namespace)."""
    want = "\0".join(argv) + "\0"
    pids = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline") as f:
                if f.read() == want:
                    pids.append(int(p))
        except OSError:
            pass
    return pids


def alerts(bot, prefix):
    """The alerts the health monitor posted whose text starts with prefix
    (counted in the log line each is posted with: the alerts room is
    encrypted)."""
    return [line for line in bot.log_text().splitlines() if f'msg="{prefix}' in line]


def audit_records(bot, device):
    """`mxfleet audit show --json` of one device, as a list of records."""
    p = cli(bot, "audit", "show", "--device", device, "--json")
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
