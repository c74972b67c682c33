"""`mxfleet device add --via wg --agent-deb` onto a Debian device (issue 16):
the device is a clean bookworm (tests/packaging/debroot overlay) reached
over SSH in the device namespace of tests/provision/wgnet-prov (its sshd
chroots sessions into it), the bot side is the hub namespace with its
wireguard-go and a private Synapse. The agent package comes from
scripts/build-deb (tests/packaging/debcache: once per source state).

The device has what the docs ask of it (iproute2, wireguard-tools,
wireguard-go); its namespace has no route to the Debian mirror, so the
agent's dependencies are fetched into its apt cache beforehand (apt-get
--download-only, the device's own apt): apt on the device still resolves
and installs them.

Checked, with the documented command only:
- a file that is not the agent's package (or no package) is refused up front;
- a package for another architecture fails with the clear message and is
  rolled back; so does a device without apt when there is no bare binary;
- a failure after the agent started (--fail-at 13) rolls back the package
  (purged: it was installed by this run), its files and the bundle;
- onboarding: dpkg shows mxfleet-agent installed and its libraries
  installed by apt as automatic dependencies; agent.json, manifest and key
  in /etc/mxfleet-agent with the owners and modes the package's unit needs
  (its ExecStartPre check passes as its User=mxfleet-agent); the packaged
  unit is the one enabled, none hand-installed; the running agent is the
  packaged /usr/sbin/mxfleet-agent, dropped to mxfleet-agent; it answers the
  bot's `device list` probe and a signed fs.read through the tunnel, audited;
- a re-run changes nothing ("already done"); a failed one (a package for
  another architecture) leaves the installed package and its audit alone,
  and the next re-run brings the agent back; one with a newer package
  upgrades it through apt and replaces the running agent, audit kept;
- a device without apt gets the bare binary when --agent-bin is given too."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import mxtest
from mxtest import check, log

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
DEBROOT = os.path.join(HERE, "debroot")
WGNET = os.path.join(SRC, "tests", "provision", "wgnet-prov")
SYNAPSE = os.path.join(SRC, "tests", "homeserver", "synapse")
sys.path.insert(0, HERE)
import debcache  # noqa: E402


def run(cmd, check_rc=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check_rc:
        check(p.returncode == 0, "%s: expected exit 0, got %d:\n%s\n%s" % (" ".join(cmd), p.returncode,
                                                                          p.stdout, p.stderr))
    return p


class Device:
    """The device's file system (the chroot), seen from the test."""

    def __init__(self, root):
        self.root = root

    def sh(self, script, check_rc=True):
        return run(["chroot", self.root, "/bin/sh", "-ec", script], check_rc,
                   env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                        "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"})

    def stat(self, path):
        return self.sh("stat -c '%a %U %G' " + path).stdout.strip()

    def status(self, pkg):
        """dpkg's status of pkg ('' when dpkg never heard of it)."""
        return self.sh("dpkg-query -W -f='${Status}' %s 2>/dev/null || true" % pkg).stdout.strip()

    def exists(self, path):
        return os.path.lexists(self.root + path)


def prepare_device(dev, deb):
    check(dev.status("mxfleet-agent") == "" and not dev.status("libmicrohttpd12").endswith(" installed"),
          "the device is not clean")
    shutil.copy(deb, dev.root + "/tmp/")
    for _ in range(3):  # the mirror answers; a transient DNS failure gets two more tries
        p = dev.sh("apt-get install -y -q --no-install-recommends iproute2 wireguard-tools wireguard-go\n"
                   "apt-get install -y -q --download-only /tmp/" + os.path.basename(deb), check_rc=False)
        if p.returncode == 0:
            break
    check(p.returncode == 0, "preparing the device: %s\n%s" % (p.stdout, p.stderr))
    os.unlink(dev.root + "/tmp/" + os.path.basename(deb))
    check(dev.status("libmicrohttpd12") == "", "--download-only installed the dependencies")


def repack(deb, field, value, outdir):
    """The same package with its control field (Architecture, Version) changed."""
    d = tempfile.mkdtemp(dir=outdir)
    run(["dpkg-deb", "-R", deb, d])
    ctl = os.path.join(d, "DEBIAN", "control")
    text = open(ctl).read()
    cur = next(l.split(": ", 1)[1] for l in text.splitlines() if l.startswith(field + ": "))
    with open(ctl, "w") as f:
        f.write(text.replace("%s: %s\n" % (field, cur), "%s: %s\n" % (field, value)))
    out = os.path.join(outdir, os.path.basename(deb).replace("_%s" % cur, "_%s" % value))
    run(["dpkg-deb", "--root-owner-group", "-b", d, out])
    shutil.rmtree(d)
    return out


# ------------------------------------------------------------- the hub side

def signed(key, method, target, body=b""):
    """The documented request signature (docs/agent.md, HTTP API)."""
    ts, nonce = str(int(time.time())), secrets.token_hex(12)
    s = "\n".join(["mxfleet-v1", method, target, ts, nonce, hashlib.sha256(body).hexdigest()])
    sig = hmac.new(key, s.encode(), hashlib.sha256).hexdigest()
    return {"X-Mxfleet-Timestamp": ts, "X-Mxfleet-Nonce": nonce, "X-Mxfleet-Signature": "v1=" + sig,
            "Content-Type": "application/json"}


def agent_call(keyfile, addr, method, target, body=None):
    k = open(keyfile).read().strip()
    key = base64.b64decode(k + "=" * (-len(k) % 4))  # written unpadded
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request("http://%s:7443%s" % (addr, target), data=data if body is not None else None,
                                 headers=signed(key, method, target, data), method=method)
    with urllib.request.urlopen(req, timeout=20) as r:
        return r.status, json.loads(r.read())


class World:
    def __init__(self, work, dev, deb, binary):
        self.work, self.dev, self.deb, self.bin = work, dev, deb, binary
        self.data = os.path.join(work, "data")
        self.cfg = os.path.join(work, "mxfleet.json")

    def setup(self):
        hs = mxtest.Homeserver.from_env()
        op = hs.new_user("alice")
        os.makedirs(os.path.join(self.data, "keys"), mode=0o700)
        shutil.copyfile(os.path.join(os.environ["MXF_WG_DIR"], "user_ed25519"),
                        os.path.join(self.data, "keys", "mxfleet_ed25519"))
        os.chmod(os.path.join(self.data, "keys", "mxfleet_ed25519"), 0o600)
        with open(os.path.join(self.work, "registration.secret"), "w") as f:
            f.write(hs.secret + "\n")
        os.chmod(os.path.join(self.work, "registration.secret"), 0o600)
        cfg = {"homeserver": hs.url, "data_dir": self.data, "operators": [op.user_id],
               "alerts_room": "#operator-alerts-%s:%s" % (secrets.token_hex(3), hs.name),
               "registration": {"shared_secret_file": os.path.join(self.work, "registration.secret")},
               "health": {"wg_interface": os.environ["MXF_WG_IF"]},
               "devices": []}
        with open(self.cfg, "w") as f:
            json.dump(cfg, f, indent=2)
        os.chmod(self.cfg, 0o600)

    def add(self, name, deb, *extra):
        """`mxfleet device add NAME --via wg ...`: (exit code, stdout + stderr)."""
        argv = [self.bin, "device", "add", name, "--via", "wg", "--ssh", "root@192.0.2.2",
                "--hub-endpoint", "192.0.2.1:51820", "--agent-deb", deb, "--config", self.cfg, *extra]
        log("$ " + " ".join(argv))
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log(p.stdout)
        return p.returncode, p.stdout

    def assert_nothing_left(self, what):
        """After a rollback: no package, agent files, bundle, interface or agent."""
        d = self.dev
        check(not d.status("mxfleet-agent").endswith(" installed"),
              "%s: mxfleet-agent still installed: %r" % (what, d.status("mxfleet-agent")))
        for p in ("/opt/mxfleet", "/etc/mxfleet-agent/agent.json", "/etc/mxfleet-agent/agent.key",
                  "/var/lib/mxfleet-agent"):
            check(not d.exists(p), "%s: %s is left on the device" % (what, p))
        check(run(["ip", "netns", "exec", "mxpd" + os.environ["MXF_WG_TAG"], "ip", "link", "show", "wg0"],
                  check_rc=False).returncode != 0, what + ": the device's wg0 is left")
        with open(self.cfg) as f:
            check(json.load(f)["devices"] == [], what + ": the config keeps a device")

    def agent_pid(self):
        return int(open(self.dev.root + "/opt/mxfleet/agent.pid").read())


def hub_part():
    dev = Device(os.environ["MXF_DEBPUSH_ROOT"])
    deb = os.environ["MXF_DEBPUSH_DEB"]
    work = mxtest.workdir("debpush-")
    w = World(work, dev, deb, os.environ["MXFLEET_BIN"])
    w.setup()
    check(not dev.exists("/run/systemd/system"), "the device has systemd running: not the path under test")

    # not the agent's package, not a package, neither package nor binary:
    # refused before anything is done
    bot_deb = os.path.join(os.path.dirname(deb), os.path.basename(deb).replace("mxfleet-agent_", "mxfleet_"))
    for arg, want in ((bot_deb, "--agent-deb: expected the mxfleet-agent package, '%s' is package 'mxfleet'" % bot_deb),
                      (w.cfg, "--agent-deb: expected a Debian package, '%s' is not one" % w.cfg)):
        rc, out = w.add("wrongdeb", arg)
        check(rc == 1 and want in out and "[1/13]" not in out, "--agent-deb %s: expected %r, got %d" % (arg, want, rc))
    p = run([w.bin, "device", "add", "nothing", "--via", "wg", "--ssh", "root@192.0.2.2", "--hub-endpoint",
             "192.0.2.1:51820", "--config", w.cfg], check_rc=False)
    check(p.returncode == 1 and "--agent-deb FILE or --agent-bin FILE: expected" in p.stderr,
          "neither --agent-deb nor --agent-bin: %d %s" % (p.returncode, p.stderr))
    w.assert_nothing_left("after the refused packages")

    # a package for another architecture: refused with the reason, rolled back
    rc, out = w.add("armdev", repack(deb, "Architecture", "arm64", work))
    check(rc == 1 and "mxfleet-agent.deb is built for arm64, this device is amd64" in out,
          "an arm64 package on an amd64 device: expected exit 1 naming both architectures, got %d" % rc)
    w.assert_nothing_left("after the architecture mismatch")

    # a device without apt and no bare binary in the bundle
    os.rename(dev.root + "/usr/bin/apt-get", dev.root + "/usr/bin/apt-get.off")
    try:
        rc, out = w.add("noapt", deb)
    finally:
        os.rename(dev.root + "/usr/bin/apt-get.off", dev.root + "/usr/bin/apt-get")
    check(rc == 1 and "no apt-get and dpkg to install mxfleet-agent.deb" in out and "--agent-bin" in out,
          "a device without apt: expected exit 1 saying so and naming --agent-bin, got %d" % rc)
    w.assert_nothing_left("after the device without apt")

    # a failure after the packaged agent started: the package goes again
    rc, out = w.add("late", deb, "--fail-at", "13")
    check(rc == 1 and "package mxfleet-agent" in out and "undo [12/13]" in out and "FAILED" not in out,
          "--fail-at 13: expected the package installed, then the start undone, got %d" % rc)
    w.assert_nothing_left("after the rollback of a started package")

    # onboarding for real
    name = "deb" + secrets.token_hex(2)
    ver = run(["dpkg-deb", "--field", deb, "Version"]).stdout.strip()
    rc, out = w.add(name, deb)
    check(rc == 0 and "agent-%s live" % name in out, "device add --agent-deb: expected live, got %d" % rc)
    check("[12/13] start the agent and wait for /v1/health ... started (package mxfleet-agent %s installed by apt)"
          % ver in out, "the start step does not say the package was installed")
    check(dev.status("mxfleet-agent") == "install ok installed", "dpkg -s mxfleet-agent: %r"
          % dev.status("mxfleet-agent"))
    check(dev.sh("dpkg-query -W -f='${Version}' mxfleet-agent").stdout == ver, "the installed version")
    auto = dev.sh("apt-mark showauto").stdout.split()
    for lib in ("libmicrohttpd12", "libcjson1"):
        check(dev.status(lib) == "install ok installed" and lib in auto,
              "%s: expected installed by apt as a dependency, got %r (auto: %s)" % (lib, dev.status(lib), lib in auto))
    for path, want in (("/etc/mxfleet-agent", "750 root mxfleet-agent"),
                       ("/etc/mxfleet-agent/agent.json", "640 root mxfleet-agent"),
                       ("/etc/mxfleet-agent/manifest.json", "640 root mxfleet-agent"),
                       ("/etc/mxfleet-agent/agent.key", "600 mxfleet-agent mxfleet-agent"),
                       ("/var/lib/mxfleet-agent", "700 mxfleet-agent mxfleet-agent")):
        got = dev.stat(path)
        check(got == want, "%s: expected %s, got %s" % (path, want, got))
    aj = json.loads(open(dev.root + "/etc/mxfleet-agent/agent.json").read())
    check((aj["key_file"], aj["manifest"], aj["data_dir"], aj["user"], aj["device"]) ==
          ("/etc/mxfleet-agent/agent.key", "/etc/mxfleet-agent/manifest.json", "/var/lib/mxfleet-agent",
           "mxfleet-agent", name), "agent.json: %r" % aj)
    check(open(dev.root + "/etc/mxfleet-agent/agent.key", "rb").read() ==
          open(os.path.join(w.data, "keys", name + ".hmac"), "rb").read(), "the device's key is not the bot's")
    # the packaged unit: its ExecStartPre passes as its User=, it is the enabled one
    unit = open(dev.root + "/lib/systemd/system/mxfleet-agent.service").read().splitlines()
    user = [l.split("=", 1)[1] for l in unit if l.startswith("User=")][0]
    for pre in [l.split("=", 1)[1] for l in unit if l.startswith("ExecStartPre=")]:
        dev.sh("setpriv --reuid=%s --regid=%s --init-groups -- %s" % (user, user, pre))
    wants = "/etc/systemd/system/multi-user.target.wants/mxfleet-agent.service"
    check(os.readlink(dev.root + wants) == "/lib/systemd/system/mxfleet-agent.service",
          "the packaged unit is not the enabled one")
    check(not dev.exists("/etc/systemd/system/mxfleet-agent.service"), "a unit was installed by hand")
    pid = w.agent_pid()
    check(os.readlink("/proc/%d/exe" % pid) == dev.root + "/usr/sbin/mxfleet-agent",
          "the agent runs %s, not the packaged binary" % os.readlink("/proc/%d/exe" % pid))
    uid = int(dev.sh("id -u mxfleet-agent").stdout)
    real = [int(x) for x in open("/proc/%d/status" % pid).read().split("Uid:")[1].split()[:4]]
    check(real == [uid] * 4, "the agent did not drop to mxfleet-agent (uid %d): %r" % (uid, real))

    # the bot reaches it: its device probe and a signed tool call through the tunnel
    listed = json.loads(run([w.bin, "device", "list", "--json", "--config", w.cfg]).stdout)
    check(listed and listed[0]["name"] == name and listed[0]["agent"]["ok"] and listed[0]["online"],
          "device list: %r" % listed)
    token = "debpush-" + secrets.token_hex(8)
    with open(dev.root + "/var/log/mxfleet-debpush.log", "w") as f:
        f.write(token + "\n")
    os.chmod(dev.root + "/var/log/mxfleet-debpush.log", 0o644)
    addr = listed[0]["mesh_address"]
    status, reply = agent_call(os.path.join(w.data, "keys", name + ".hmac"), addr, "POST", "/v1/call",
                               {"request_id": "debpush-1", "tool": "fs.read",
                                "args": {"path": "/var/log/mxfleet-debpush.log"}})
    check(status == 200 and reply.get("status") == "done" and token in reply.get("stdout", ""),
          "signed fs.read through the tunnel: %d %r" % (status, reply))
    _, audit = agent_call(os.path.join(w.data, "keys", name + ".hmac"), addr, "GET", "/v1/audit?since=0")
    check(any(r.get("seq") == reply.get("audit_seq") and "fs.read" in json.dumps(r) for r in audit["records"]),
          "the call (audit_seq %r) is not in the agent's audit: %r" % (reply.get("audit_seq"), audit))
    check(os.path.exists(dev.root + "/var/lib/mxfleet-agent/audit"), "the audit is not in the package's data_dir")

    # a re-run changes nothing
    cfg_before = open(w.cfg, "rb").read()
    rc, out = w.add(name, deb)
    check(rc == 0 and out.count("already done") == 12, "re-run: expected 12 steps already done, got %d:\n%s"
          % (out.count("already done"), out))
    check(open(w.cfg, "rb").read() == cfg_before, "the re-run changed the config")
    check(w.agent_pid() == pid, "the re-run restarted the agent")

    # a re-run with a package for another architecture fails; its rollback
    # leaves the package that was there (and its audit) alone; the next
    # re-run with the right package brings the agent back
    size = agent_call(os.path.join(w.data, "keys", name + ".hmac"), addr, "GET", "/v1/audit?since=0")[1]["size"]
    rc, out = w.add(name, os.path.join(work, os.path.basename(deb).replace("_amd64.deb", "_arm64.deb")))
    check(rc == 1 and "is built for arm64, this device is amd64" in out and "FAILED" not in out,
          "re-run with an arm64 package: expected exit 1 naming both architectures, got %d" % rc)
    check(dev.status("mxfleet-agent") == "install ok installed", "the failed re-run removed the package: %r"
          % dev.status("mxfleet-agent"))
    check(dev.exists("/var/lib/mxfleet-agent/audit") and dev.exists("/etc/mxfleet-agent/agent.key"),
          "the failed re-run removed the agent's audit or key")
    rc, out = w.add(name, deb)
    check(rc == 0 and "started (package mxfleet-agent %s installed by apt)" % ver in out,
          "re-run after the failed one: expected the agent started again, got %d" % rc)
    pid = w.agent_pid()
    health = agent_call(os.path.join(w.data, "keys", name + ".hmac"), addr, "GET", "/v1/health")[1]
    check(health.get("audit_size", 0) >= size, "the audit after the failed re-run: %r, had %d" % (health, size))

    # a newer package: the re-run uploads it, apt upgrades, the agent is
    # replaced and keeps its audit chain
    newer = repack(deb, "Version", ver + "+next1", work)
    size = agent_call(os.path.join(w.data, "keys", name + ".hmac"), addr, "GET", "/v1/audit?since=0")[1]["size"]
    rc, out = w.add(name, newer)
    check(rc == 0 and "[11/13] upload the agent bundle over SSH ... bundle " in out and
          "started (package mxfleet-agent %s+next1 installed by apt)" % ver in out,
          "re-run with a newer package: expected it uploaded and installed, got %d" % rc)
    check(dev.sh("dpkg-query -W -f='${Version}' mxfleet-agent").stdout == ver + "+next1", "the upgraded version")
    check(w.agent_pid() != pid and not os.path.exists("/proc/%d" % pid), "the old agent still runs")
    health = agent_call(os.path.join(w.data, "keys", name + ".hmac"), addr, "GET", "/v1/health")[1]
    check(health.get("ok") and health.get("audit_size", 0) >= size,
          "after the upgrade: expected a healthy agent with the audit kept (%d records), got %r" % (size, health))

    # a device without apt, the bare binary given too: it runs that instead.
    # The same namespace plays that device: the first one's tunnel goes
    # down first (two tunnels to the hub from one namespace would route the
    # second's replies through the first)
    run(["ip", "netns", "exec", "mxpd" + os.environ["MXF_WG_TAG"], "chroot", dev.root, "sh",
         "/opt/mxfleet/install.sh", "stop"])
    fb = "bin" + secrets.token_hex(2)
    os.rename(dev.root + "/usr/bin/apt-get", dev.root + "/usr/bin/apt-get.off")
    try:
        rc, out = w.add(fb, deb, "--agent-bin", os.environ["MXFLEET_AGENT_BIN"], "--remote-dir", "/opt/mxfleet-fb")
    finally:
        os.rename(dev.root + "/usr/bin/apt-get.off", dev.root + "/usr/bin/apt-get")
    check(rc == 0 and "started (bare binary)" in out, "no apt, --agent-bin too: expected the bare binary, got %d" % rc)
    fbpid = int(open(dev.root + "/opt/mxfleet-fb/agent.pid").read())
    check(os.readlink("/proc/%d/exe" % fbpid) == dev.root + "/opt/mxfleet-fb/mxfleet-agent",
          "the fallback agent runs %s" % os.readlink("/proc/%d/exe" % fbpid))
    listed = {d["name"]: d for d in json.loads(run([w.bin, "device", "list", "--json", "--config", w.cfg]).stdout)}
    check(listed[fb]["agent"]["ok"], "device list after the fallback: %r" % listed[fb])


# ------------------------------------------------------------- outside

def mounted_under(path):
    with open("/proc/mounts") as f:
        return [l.split()[1] for l in f if l.split()[1] == path or l.split()[1].startswith(path + "/")]


def main():
    if os.geteuid() != 0:
        print("test_deb_push: needs root (chroot, mounts, network namespaces)", file=sys.stderr)
        return 1
    # sshd's ChrootDirectory wants the device root and every parent root's
    # and closed to others: not under /tmp
    base = "/var/cache/mxfleet/tmp"
    os.makedirs(base, mode=0o755, exist_ok=True)
    os.chmod(base, 0o755)
    work = tempfile.mkdtemp(prefix="debpush.", dir=base)
    os.chmod(work, 0o755)
    debs = debcache.debs(SRC, work)
    deb = sorted(p for p in os.listdir(debs) if p.startswith("mxfleet-agent_") and p.endswith(".deb"))[-1]
    deb = os.path.join(debs, deb)
    os.environ.setdefault("MXFLEET_AGENT_BIN", os.path.join(os.path.dirname(os.path.dirname(
        os.environ["MXFLEET_BIN"])), "devices", "agent", "mxfleet-agent"))
    wgdir = os.path.join(work, "wgnet")
    try:
        run([DEBROOT, "up", work])
        dev = Device(os.path.join(work, "root"))
        prepare_device(dev, deb)
        env = dict(os.environ, MXF_DEVICE_ROOT=dev.root)
        p = subprocess.run([WGNET, "setup", wgdir, SYNAPSE], env=env)
        check(p.returncode == 0, "wgnet-prov setup failed")
        env = dict(os.environ, MXF_DEBPUSH_ROOT=dev.root, MXF_DEBPUSH_DEB=deb)
        env.pop("MX_HS_ENV", None)  # the shared Synapse is not reachable from the hub namespace
        rc = subprocess.run([WGNET, "exec", wgdir, "--", sys.executable, os.path.abspath(__file__)],
                            env=env).returncode
        return rc
    finally:
        subprocess.run([WGNET, "cleanup", wgdir])
        run([DEBROOT, "down", work], check_rc=False)
        left = mounted_under(work)
        if left:
            print("test_deb_push: still mounted, %s kept: %s" % (work, left), file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if os.environ.get("MXF_WG_DIR"):  # re-run inside the hub namespace
        mxtest.run(hub_part)
    else:
        try:
            sys.exit(main())
        except AssertionError as e:
            print("FAIL: %s" % e, file=sys.stderr)
            sys.exit(1)
