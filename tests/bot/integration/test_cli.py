"""The CLI: --help, --version, `run --help` exit 0 with useful text; a
malformed config (bad JSON, a bad value, an unknown key, a missing file) makes
`mxfleet run` exit non-zero with an error naming the file and the key path."""

import json
import os
import subprocess

import mxtest
from mxtest import check

GOOD = {"homeserver": "http://127.0.0.1:9", "data_dir": "data",
        "operators": ["@alice:mxfleet.test"], "alerts_room": "#operator-alerts:mxfleet.test",
        "devices": [{"name": "pc1", "matrix": {"user_id": "@agent-pc1:mxfleet.test",
                                               "password_file": "pc1.pw"}}]}


def mxfleet(*args):
    p = subprocess.run([mxtest.mxfleet_bin(), *args], capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout + p.stderr


def bad_config(d, name, text, *expected):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    rc, out = mxfleet("run", "--config", path)
    check(rc != 0, f"{name}: exit 0 for a malformed config; output: {out}")
    check(name in out, f"{name}: the error does not name the file: {out!r}")
    for e in expected:
        check(e in out, f"{name}: the error lacks {e!r}: {out!r}")
    check("Traceback" not in out and "AddressSanitizer" not in out, f"{name}: crash: {out}")


def test():
    rc, out = mxfleet("--help")
    check(rc == 0 and "run" in out and "usage" in out.lower(), f"--help: rc {rc}: {out}")
    rc, out = mxfleet("--version")
    version = os.environ.get("MXFLEET_VERSION", "")
    check(rc == 0 and version and version in out, f"--version: rc {rc}, want {version}: {out}")
    rc, out = mxfleet("run", "--help")
    check(rc == 0 and "--config" in out and "--http" in out, f"run --help: rc {rc}: {out}")
    rc, out = mxfleet("no-such-command")
    check(rc != 0 and "no-such-command" in out, f"unknown command: rc {rc}: {out}")
    rc, out = mxfleet("run")  # the documented default path (no such file here)
    default = os.environ.get("MXFLEET_CONFIG") or "/etc/mxfleet/mxfleet.json"
    check(rc != 0 and default in out, f"run without --config: rc {rc}: {out}")

    d = mxtest.workdir("cli-")
    with open(os.path.join(d, "pc1.pw"), "w") as f:
        f.write("x\n")
    bad_config(d, "syntax.json", '{"homeserver": "http://x",,}')
    cfg = json.loads(json.dumps(GOOD))
    cfg["devices"][0]["matrix"]["user_id"] = "pc"
    bad_config(d, "userid.json", json.dumps(cfg), "devices[0].matrix.user_id", "'pc'")
    cfg = json.loads(json.dumps(GOOD))
    cfg["devices"][0]["bogus_key"] = 1
    bad_config(d, "unknown.json", json.dumps(cfg), "bogus_key")
    cfg = json.loads(json.dumps(GOOD))
    del cfg["homeserver"]
    bad_config(d, "missing.json", json.dumps(cfg), "homeserver")
    rc, out = mxfleet("run", "--config", os.path.join(d, "absent.json"))
    check(rc != 0 and "absent.json" in out, f"missing file: rc {rc}: {out}")


mxtest.run(test)
