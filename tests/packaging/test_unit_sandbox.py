"""The shipped systemd unit's sandbox and the shipped example manifest
(examples/manifests/pc1.json, the local device the example config runs)
agree (issue 10.6): every tool, read root and command the manifest grants
can work under the unit, as the unprivileged service user. Rules:
- proc.list needs the other processes in /proc: no ProtectProc=invisible or
  noaccess, no ProcSubset=pid;
- a read root under /var/log needs the adm group (Debian's logs are
  root:adm 0640); /home or /root needs ProtectHome other than yes/tmpfs;
  no read root may be under InaccessiblePaths;
- journalctl needs the systemd-journal group; systemctl needs AF_UNIX;
- every write root must be writable (ReadWritePaths) under ProtectSystem=strict.
The same holds for the shard template mxfleet@.service, which must differ
from mxfleet.service only in its config, state directory and description
(both units as packaging/systemd/units.cmake writes them at install).
Also runs `systemd-analyze verify` on both when systemd-analyze exists."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNIT = os.path.join(SRC, "packaging", "systemd", "mxfleet.service")
UNITS_CMAKE = os.path.join(SRC, "packaging", "systemd", "units.cmake")
MANIFEST = os.path.join(SRC, "examples", "manifests", "pc1.json")


def unit_settings(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def words(u, key):
    return [w for v in u.get(key, []) for w in v.split()]


def under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def problems(u, m):
    bad = []
    tools = m.get("tools", {})
    reads = m.get("paths", {}).get("read", [])
    writes = m.get("paths", {}).get("write", [])
    argv0 = [os.path.basename(c["argv0"]) for kind in ("allow", "ask")
             for c in m.get("commands", {}).get(kind, [])]
    groups = words(u, "SupplementaryGroups")
    if "proc.list" in tools:
        if set(u.get("ProtectProc", [])) & {"invisible", "noaccess", "ptraceable"}:
            bad.append(f"proc.list is granted but ProtectProc={u['ProtectProc'][-1]} hides other processes")
        if "pid" in u.get("ProcSubset", []):
            bad.append("proc.list is granted but ProcSubset=pid hides /proc/PID")
    if any(under(p, ["/var/log"]) for p in reads) and "adm" not in groups:
        bad.append("a read root under /var/log needs SupplementaryGroups=adm")
    if any(under(p, ["/home", "/root", "/run/user"]) for p in reads) and \
            u.get("ProtectHome", ["no"])[-1] in ("yes", "true", "tmpfs"):
        bad.append(f"a read root under /home needs ProtectHome other than {u['ProtectHome'][-1]}")
    hidden = [p.lstrip("-") for p in words(u, "InaccessiblePaths")]
    bad += [f"read root {p} is in InaccessiblePaths" for p in reads if under(p, hidden)]
    if "journalctl" in argv0 and "systemd-journal" not in groups:
        bad.append("journalctl is allowed but the unit lacks SupplementaryGroups=systemd-journal")
    if "systemctl" in argv0 and "AF_UNIX" not in words(u, "RestrictAddressFamilies"):
        bad.append("systemctl is allowed but AF_UNIX is not in RestrictAddressFamilies")
    if u.get("ProtectSystem", ["no"])[-1] == "strict":
        rw = [p.lstrip("-") for p in words(u, "ReadWritePaths")]
        bad += [f"write root {p} is read-only (not in ReadWritePaths)" for p in writes if not under(p, rw)]
    return bad


def installed_units(d):
    """mxfleet.service and mxfleet@.service as an install writes them
    (packaging/systemd/units.cmake), ExecStart naming /bin/true so that
    systemd-analyze need not find an installed binary."""
    r = subprocess.run(["cmake", f"-DSRC={UNIT}", "-DBIN=/bin/true", f"-DDEST={d}", "-P", UNITS_CMAKE],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL test_unit_sandbox.py: units.cmake: {r.stdout}{r.stderr}")
        sys.exit(1)
    return os.path.join(d, "mxfleet.service"), os.path.join(d, "mxfleet@.service")


def template_problems(single, template):
    """The template differs from the single unit only where an instance must:
    its own config and its own state directory (two shards sharing either
    would run one Matrix device twice, or fail on data_dir's lock)."""
    bad = []
    want = {"ExecStartPre": ["/bin/true config check --config /etc/mxfleet/%i.json"],
            "ExecStart": ["/bin/true run --config /etc/mxfleet/%i.json"],
            "StateDirectory": ["mxfleet/%i"], "ReadWritePaths": ["/var/lib/mxfleet/%i"]}
    for k, v in want.items():
        if template.get(k) != v:
            bad.append(f"mxfleet@.service: expected {k}={v[0]}, got {template.get(k)}")
    for k in set(single) | set(template):
        if k not in want and k != "Description" and single.get(k) != template.get(k):
            bad.append(f"mxfleet@.service: {k}={template.get(k)} differs from mxfleet.service's {single.get(k)}")
    return bad


def main():
    m = json.load(open(MANIFEST))
    # the rules themselves must be able to fail
    assert problems({"ProtectProc": ["invisible"]}, {"tools": {"proc.list": {}}}), "rule check is a stub"
    assert template_problems({"StateDirectory": ["mxfleet"]}, {"StateDirectory": ["mxfleet"]}), "stub"
    analyze = shutil.which("systemd-analyze")
    bad = []
    with tempfile.TemporaryDirectory() as d:
        single, template = installed_units(d)
        bad += problems(unit_settings(single), m)
        bad += [f"mxfleet@.service: {p}" for p in problems(unit_settings(template), m)]
        bad += template_problems(unit_settings(single), unit_settings(template))
        if analyze:
            # a template is verified as one of its instances
            instance = os.path.join(d, "mxfleet@shard1.service")
            shutil.copyfile(template, instance)
            for path in (single, instance):
                r = subprocess.run([analyze, "verify", path], capture_output=True, text=True)
                name = os.path.basename(path)
                lines = [ln for ln in (r.stdout + r.stderr).splitlines()
                         if name in ln and "not executable" not in ln]
                bad += [f"systemd-analyze verify: {ln}" for ln in lines]
    if bad:
        print("FAIL test_unit_sandbox.py:\n  " + "\n  ".join(bad))
        sys.exit(1)
    print("PASS test_unit_sandbox.py")


main()
