"""scripts/run installs what building and running need, not the test
toolchain (issue 10.8): run from a copy of scripts/ on a machine where
dpkg-query reports nothing installed, with apt-get, cmake and the built
binary replaced by stubs that record their arguments, it asks apt-get for
the build packages plus python3, curl, debootstrap and iproute2, and for
none of sshd, Node, espeak, pocketsphinx, wireguard-go, nio."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TEST_ONLY = {"openssh-server", "nodejs", "npm", "espeak-ng", "pocketsphinx", "pocketsphinx-en-us",
             "wireguard-go", "wireguard-tools", "python3-matrix-nio", "sox", "opus-tools", "clang"}
RUN = {"python3", "curl", "debootstrap", "iproute2", "cmake", "libolm-dev", "build-essential"}


def stub(path, body):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def main():
    with tempfile.TemporaryDirectory() as d:
        tree = os.path.join(d, "mxfleet")
        os.makedirs(os.path.join(tree, "scripts"))
        for f in ("run", "install-deps"):
            shutil.copy2(os.path.join(SRC, "scripts", f), os.path.join(tree, "scripts", f))
        stubs = os.path.join(d, "stubs")
        os.makedirs(stubs)
        log = os.path.join(d, "calls.log")
        stub(os.path.join(stubs, "dpkg-query"), "exit 1")
        stub(os.path.join(stubs, "apt-get"), f'echo "apt-get $*" >>{log}')
        stub(os.path.join(stubs, "sudo"), 'exec "$@"')
        stub(os.path.join(stubs, "cmake"), f'echo "cmake $*" >>{log}')
        os.makedirs(os.path.join(d, "b", "bot"))
        stub(os.path.join(d, "b", "bot", "mxfleet"), f'echo "mxfleet $*" >>{log}')
        cfg = os.path.join(d, "my.json")
        json.dump({"homeserver": "http://127.0.0.1:9", "operators": [], "devices": []}, open(cfg, "w"))
        env = dict(os.environ, PATH=stubs + ":" + os.environ["PATH"], MXFLEET_BUILD_DIR=os.path.join(d, "b"),
                   MXFLEET_RUN_USER="root")
        for k in ("MXFLEET_BIN", "SUDO_USER"):
            env.pop(k, None)
        r = subprocess.run([os.path.join(tree, "scripts", "run"), cfg], env=env, capture_output=True, text=True,
                           timeout=120)
        calls = open(log).read() if os.path.exists(log) else ""
        if r.returncode != 0 or "mxfleet run --config" not in calls:
            print(f"FAIL test_run_deps.py: scripts/run exited {r.returncode}\n{r.stdout}\n{r.stderr}\n{calls}")
            sys.exit(1)
        pkgs = set()
        for line in calls.splitlines():
            if line.startswith("apt-get") and " install " in line:
                pkgs |= {w for w in line.split() if not w.startswith("-") and w not in ("apt-get", "install")}
        bad = sorted(pkgs & TEST_ONLY)
        missing = sorted(RUN - pkgs)
        if bad or missing:
            print(f"FAIL test_run_deps.py: scripts/run installs test-only {bad}, lacks {missing}; asked for "
                  f"{sorted(pkgs)}")
            sys.exit(1)
    print("PASS test_run_deps.py")


main()
