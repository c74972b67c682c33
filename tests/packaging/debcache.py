"""The Debian packages of this checkout for the packaging tests, built once
per source state: scripts/build-deb into /var/cache/mxfleet/debs/KEY, where
KEY hashes every file build-deb copies (tracked and untracked, not ignored)
with its content, so an edit (committed or not) builds anew and an unchanged
tree reuses the build. Two tests in one run (packaging_deb_install,
packaging_deb_push) pay for one build. MXFLEET_TEST_DEBS=DIR uses packages
built before by `scripts/build-deb DIR` instead. Only the newest few
builds are kept."""

import fcntl
import hashlib
import os
import shutil
import subprocess

CACHE = os.environ.get("MXFLEET_DEB_CACHE", "/var/cache/mxfleet/debs")
KEEP = 3


def _tree_key(src):
    p = subprocess.run(["git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if p.returncode != 0:
        return None  # not a git checkout: no reliable key, build every time
    h = hashlib.sha256()
    for rel in sorted(set(p.stdout.decode().split("\0")) - {""}):
        path = os.path.join(src, rel)
        if not os.path.isfile(path):
            continue
        h.update(rel.encode() + b"\0")
        if os.path.islink(path):
            h.update(b"link:" + os.readlink(path).encode())
        else:
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        h.update(b"%o" % (os.stat(path).st_mode & 0o111))
    return h.hexdigest()[:24]


def debs(src, scratch):
    """Directory holding mxfleet_*.deb, mxfleet-agent_*.deb and the .changes."""
    if os.environ.get("MXFLEET_TEST_DEBS"):
        return os.environ["MXFLEET_TEST_DEBS"]
    build = os.path.join(src, "scripts", "build-deb")
    key = _tree_key(src)
    if key is None:
        out = os.path.join(scratch, "dist")
        subprocess.run([build, out], check=True)
        return out
    os.makedirs(CACHE, exist_ok=True)
    out = os.path.join(CACHE, key)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(out, ".done")):
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run([build, out], check=True)
            open(os.path.join(out, ".done"), "w").close()
        os.utime(out)
        old = sorted((d for d in os.listdir(CACHE) if not d.startswith(".")),
                     key=lambda d: os.path.getmtime(os.path.join(CACHE, d)), reverse=True)[KEEP:]
        for d in old:
            shutil.rmtree(os.path.join(CACHE, d), ignore_errors=True)
    return out
