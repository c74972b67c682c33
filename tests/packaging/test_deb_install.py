"""The Debian packages as a new user meets them (issue 16): scripts/build-deb
builds mxfleet and mxfleet-agent once, lintian reports no tag
beyond the overrides docs/packaging.md explains; they are installed with
`apt-get install ./mxfleet_*.deb ./mxfleet-agent_*.deb` into a clean Debian
bookworm (tests/packaging/debroot: cached debootstrap, a throwaway overlay per
run), where apt resolves the runtime libraries. Inside it: both binaries run,
the service users, directories, owners and modes are as docs/packaging.md
says, the units are enabled and not started, templates/prompts/examples/man
pages are where they belong, `mxfleet config check` fails on the shipped
config until the operator writes the password file and then passes (as the
mxfleet user), `mxfleet-agent --check-config` passes on its example, an
upgrade to a newer build keeps the operator's edited config and the bot's
state, remove keeps state and purge removes it (but not the operator's
secrets). In between, the installed bot, configured by editing
/etc/mxfleet/mxfleet.json for the test Synapse and run as the mxfleet user
the way its unit runs it (config check, then run), answers an encrypted
!ping from a cross-signed Element operator (matrix-js-sdk Rust crypto), and
again after the upgrade, from the state it kept.

The newer build is the same build with its version bumped (dpkg-deb
repack), so CI pays for one package build (tests/packaging/debcache, shared
with packaging_deb_push). MXFLEET_TEST_DEBS=DIR reuses packages built before
by scripts/build-deb DIR."""

import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile

import mxtest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from peerlib import Peer, operator, ping_in_new_dm  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import debcache  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEBROOT = os.path.join(SRC, "tests", "packaging", "debroot")
NEXT = "+test1"  # appended to the built version for the upgrade


def run(cmd, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s: expected exit 0, got %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    return p


class Root:
    def __init__(self, path):
        self.path = path

    def sh(self, script, check=True):
        return run(["chroot", self.path, "/bin/sh", "-ec", script], check=check,
                   env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                        "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"})

    def apt(self, args):
        # the mirror answers; a transient DNS failure gets two more tries
        last = None
        for _ in range(3):
            last = self.sh("cd /tmp/debs && apt-get -y -q -o Dpkg::Options::=--force-confold " + args, check=False)
            if last.returncode == 0:
                return last.stdout
        raise AssertionError("apt-get %s: expected success, got %d:\n%s" % (args, last.returncode, last.stdout))

    def stat(self, path):
        return self.sh("stat -c '%a %U %G' " + path).stdout.strip()

    def read(self, path):
        with open(self.path + path, "rb") as f:
            return f.read()


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_eq(got, want, what):
    expect(got == want, "%s: expected %r, got %r" % (what, want, got))


def bump(deb, outdir):
    """The same package under a newer version: the upgrade's new build."""
    d = tempfile.mkdtemp(dir=outdir)
    run(["dpkg-deb", "-R", deb, d])
    ctl = os.path.join(d, "DEBIAN", "control")
    lines = open(ctl).read().splitlines()
    ver = next(l.split(": ", 1)[1] for l in lines if l.startswith("Version: "))
    with open(ctl, "w") as f:
        f.write("\n".join(l.replace(ver, ver + NEXT) if l.startswith("Version: ") else l for l in lines) + "\n")
    name = os.path.basename(deb).replace("_" + ver + "_", "_" + ver + NEXT + "_")
    run(["dpkg-deb", "--root-owner-group", "-b", d, os.path.join(outdir, name)])
    shutil.rmtree(d)
    return name, ver


def checks_after_install(r, ver):
    expect_eq(r.sh("mxfleet --version").stdout.strip(), "mxfleet " + ver.split("-")[0].split("+")[0],
              "mxfleet --version")
    expect(r.sh("mxfleet-agent --version").stdout.startswith("mxfleet-agent "), "mxfleet-agent --version")
    for user, home in (("mxfleet", "/var/lib/mxfleet"), ("mxfleet-agent", "/var/lib/mxfleet-agent")):
        pw = r.sh("getent passwd " + user).stdout.strip().split(":")
        expect(int(pw[2]) < 1000, "%s: expected a system uid, got %s" % (user, pw[2]))
        expect_eq((pw[5], pw[6]), (home, "/usr/sbin/nologin"), user + " home and shell")
        r.sh("getent group " + user)
    expect_eq(r.stat("/etc/mxfleet"), "750 root mxfleet", "/etc/mxfleet")
    expect_eq(r.stat("/etc/mxfleet/mxfleet.json"), "640 root mxfleet", "/etc/mxfleet/mxfleet.json")
    expect_eq(r.stat("/var/lib/mxfleet"), "700 mxfleet mxfleet", "/var/lib/mxfleet")
    expect_eq(r.stat("/etc/mxfleet-agent"), "750 root mxfleet-agent", "/etc/mxfleet-agent")
    expect_eq(r.stat("/var/lib/mxfleet-agent"), "700 mxfleet-agent mxfleet-agent", "/var/lib/mxfleet-agent")
    conff = r.sh("dpkg-query -W -f='${Conffiles}' mxfleet").stdout
    expect("/etc/mxfleet/mxfleet.json" in conff, "mxfleet.json is not a conffile: " + conff)
    for unit in ("mxfleet", "mxfleet-agent"):
        wants = "/etc/systemd/system/multi-user.target.wants/%s.service" % unit
        expect(os.path.islink(r.path + wants), unit + ".service is not enabled (no " + wants + ")")
        expect_eq(r.sh("readlink " + wants).stdout.strip(), "/lib/systemd/system/%s.service" % unit, wants)
        # enabled, never started by the package; on upgrade a running unit
        # is restarted (try-restart), not stopped and left down
        post = r.read("/var/lib/dpkg/info/%s.postinst" % unit).decode()
        starts = [l for l in post.splitlines() if "deb-systemd-invoke" in l and "try-restart" not in l]
        expect(not starts, unit + ".postinst starts the unit: %r" % starts)
        expect("deb-systemd-invoke try-restart %s.service" % unit in post, unit + ".postinst: no try-restart on upgrade")
        pre = r.read("/var/lib/dpkg/info/%s.preinst" % unit).decode() \
            if os.path.exists(r.path + "/var/lib/dpkg/info/%s.preinst" % unit) else ""
        expect("deb-systemd-invoke stop" not in pre, unit + ".preinst stops the unit on upgrade")
    unit = r.read("/lib/systemd/system/mxfleet.service").decode()
    expect("ExecStart=/usr/bin/mxfleet run --config /etc/mxfleet/mxfleet.json" in unit,
           "mxfleet.service does not start the installed binary")
    for f in ("/usr/share/mxfleet/templates/linux.json", "/usr/share/mxfleet/templates/linux-ssh.json",
              "/usr/share/mxfleet/prompts/device.md", "/usr/share/mxfleet/examples/mxfleet.json",
              "/usr/share/mxfleet/systemd/mxfleet-agent.service", "/usr/share/mxfleet/systemd/mxfleet@.service",
              "/usr/share/mxfleet/examples/agent/agent.json", "/usr/share/mxfleet/examples/agent/manifest.json"):
        expect(os.path.isfile(r.path + f), f + " is not installed")
    # man pages, generated from --help (every subcommand) and docs/config.md
    man1 = r.sh("zcat /usr/share/man/man1/mxfleet.1.gz").stdout
    for cmd in ("config", "device", "audit", "trust"):
        expect("mxfleet %s" % cmd in man1.replace("\\-", "-"), "mxfleet(1) lacks 'mxfleet %s'" % cmd)
    man5 = r.sh("zcat /usr/share/man/man5/mxfleet.json.5.gz").stdout
    expect("homeserver" in man5 and "alerts_room" in man5, "mxfleet.json(5) lacks the config keys")
    man8 = r.sh("zcat /usr/share/man/man8/mxfleet-agent.8.gz").stdout
    expect("check" in man8 and "config" in man8, "mxfleet-agent(8) lacks --check-config")


def configure_for(r, hs, op):
    """The operator's edit: /etc/mxfleet/mxfleet.json for this homeserver,
    the device's password in the file it names. Returns (agent, port)."""
    agent, pw = hs.register("agent-deb" + secrets.token_hex(3))
    port = mxtest.free_port()
    cfg = json.loads(r.read("/etc/mxfleet/mxfleet.json"))
    cfg.update({"homeserver": hs.url, "operators": [op.user_id],
                "alerts_room": "#operator-alerts-%s:%s" % (secrets.token_hex(3), hs.name),
                "bot": {"http_listen": "127.0.0.1:%d" % port}})
    cfg["devices"][0]["matrix"]["user_id"] = agent
    # written in place: the files keep the owner and mode the package gave them
    with open(r.path + "/etc/mxfleet/mxfleet.json", "w") as f:
        f.write(json.dumps(cfg, indent=2) + "\n")
    with open(r.path + "/etc/mxfleet/secrets/pc1.pw", "w") as f:
        f.write(pw + "\n")
    return agent, port


def serve_and_ping(r, peer, agent, port, logpath):
    """The unit's commands as its User=mxfleet: ExecStartPre, ExecStart;
    Element's !ping answered in a new encrypted DM; SIGTERM stops it cleanly."""
    unit = r.read("/lib/systemd/system/mxfleet.service").decode().splitlines()
    pre = [l.split("=", 1)[1] for l in unit if l.startswith("ExecStartPre=")]
    start = [l.split("=", 1)[1] for l in unit if l.startswith("ExecStart=")][0]
    as_mxfleet = ["chroot", r.path, "setpriv", "--reuid=mxfleet", "--regid=mxfleet", "--init-groups", "--"]
    for cmd in pre:
        run(as_mxfleet + cmd.split(), cwd="/")
    with open(logpath, "ab") as logf:
        proc = subprocess.Popen(as_mxfleet + start.split(), stdout=logf, stderr=logf, cwd="/")
    try:
        def healthy():
            mxtest.check(proc.poll() is None, "the installed bot exited with %s:\n%s"
                         % (proc.returncode, open(logpath).read()[-3000:]))
            try:
                return mxtest.http("GET", "http://127.0.0.1:%d/health" % port, timeout=5)[0] == 200
            except OSError:
                return False
        mxtest.wait_until(healthy, 90, "the installed bot's /health")
        try:
            ping_in_new_dm(peer, agent)
        except Exception:
            print("installed bot's log:\n" + open(logpath).read()[-4000:], file=sys.stderr)
            raise
        proc.send_signal(signal.SIGTERM)
        expect_eq(proc.wait(timeout=15), 0, "the installed bot's exit status after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    if os.geteuid() != 0:
        print("test_deb_install: needs root (chroot, mounts)", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="mxfleet-debtest.")
    cleanup = []
    debs = debcache.debs(SRC, work)
    try:
        # lintian: nothing beyond the overrides docs/packaging.md explains
        changes = sorted(glob.glob(os.path.join(debs, "mxfleet_*.changes")))[-1]
        p = run(["lintian", "--pedantic", "--display-info", "--fail-on", "error,warning,info,pedantic",
                 changes], check=False)
        tags = [l for l in p.stdout.splitlines() if l[:2] in ("E:", "W:", "I:", "P:", "X:")]
        expect(p.returncode == 0 and not tags, "lintian reports tags not explained in docs/packaging.md "
               "(exit %d):\n%s" % (p.returncode, p.stdout))
        main_deb = sorted(glob.glob(os.path.join(debs, "mxfleet_*.deb")))[-1]
        agent_deb = sorted(glob.glob(os.path.join(debs, "mxfleet-agent_*.deb")))[-1]
        run([DEBROOT, "up", work])
        r = Root(os.path.join(work, "root"))
        os.makedirs(r.path + "/tmp/debs")
        for d in (main_deb, agent_deb):
            shutil.copy(d, r.path + "/tmp/debs/")
        new_main, ver = bump(main_deb, r.path + "/tmp/debs")
        new_agent, _ = bump(agent_deb, r.path + "/tmp/debs")
        expect(r.sh("command -v mxfleet || true").stdout.strip() == "", "the chroot is not clean")

        r.apt("install ./%s ./%s" % (os.path.basename(main_deb), os.path.basename(agent_deb)))
        checks_after_install(r, ver)

        # the shipped config names a password file the operator has not written yet
        p = r.sh("runuser -u mxfleet -- mxfleet config check", check=False)
        expect(p.returncode == 1 and "devices[0].matrix.password_file" in p.stdout,
               "config check without the password file: expected exit 1 naming "
               "devices[0].matrix.password_file, got %d:\n%s" % (p.returncode, p.stdout))
        r.sh("install -d -m 0750 -o root -g mxfleet /etc/mxfleet/secrets\n"
             "umask 027; head -c 24 /dev/urandom | base64 > /etc/mxfleet/secrets/pc1.pw\n"
             "chgrp mxfleet /etc/mxfleet/secrets/pc1.pw")
        p = r.sh("runuser -u mxfleet -- mxfleet config check", check=False)
        expect_eq(p.returncode, 0, "config check on the shipped config as mxfleet:\n" + p.stdout)

        # the agent's example, put in place as docs/agent.md says
        r.sh("cp /usr/share/mxfleet/examples/agent/agent.json /usr/share/mxfleet/examples/agent/manifest.json "
             "/etc/mxfleet-agent/\n"
             "umask 077; head -c 32 /dev/urandom | base64 > /etc/mxfleet-agent/agent.key")
        p = r.sh("mxfleet-agent --config /etc/mxfleet-agent/agent.json --check-config", check=False)
        expect_eq(p.returncode, 0, "mxfleet-agent --check-config on its example:\n" + p.stdout)

        # the operator points the config at the homeserver; the bot, run as
        # its unit runs it, answers Element's encrypted !ping
        hs = mxtest.Homeserver.from_env()
        cleanup.append(hs.stop)
        op = hs.new_user("alice")
        agent, port = configure_for(r, hs, op)
        peer = Peer(hs.url, os.path.join(work, "peer.log"))
        with peer:
            operator(peer, op)
            serve_and_ping(r, peer, agent, port, os.path.join(work, "bot.log"))

            # upgrade: the operator's edits (content, owner, mode) and the bot's state stay
            r.sh("chmod 0600 /etc/mxfleet/mxfleet.json; chown mxfleet /etc/mxfleet/mxfleet.json\n"
                 "runuser -u mxfleet -- sh -c 'echo state > /var/lib/mxfleet/marker'")
            state = sorted(os.listdir(r.path + "/var/lib/mxfleet"))
            edited = r.read("/etc/mxfleet/mxfleet.json")
            expect(hs.url.encode() in edited, "the edit did not take")
            r.apt("install ./%s ./%s" % (new_main, new_agent))
            expect_eq(r.sh("dpkg-query -W -f='${Version}' mxfleet").stdout, ver + NEXT, "version after upgrade")
            expect_eq(r.read("/etc/mxfleet/mxfleet.json"), edited, "the edited config after the upgrade")
            expect_eq(r.stat("/etc/mxfleet/mxfleet.json"), "600 mxfleet mxfleet", "the edited config's mode after the upgrade")
            expect_eq(r.read("/var/lib/mxfleet/marker"), b"state\n", "the bot's state after the upgrade")
            expect_eq(r.stat("/var/lib/mxfleet"), "700 mxfleet mxfleet", "/var/lib/mxfleet after the upgrade")
            expect_eq(r.stat("/etc/mxfleet"), "750 root mxfleet", "/etc/mxfleet after the upgrade")
            p = r.sh("runuser -u mxfleet -- mxfleet config check", check=False)
            expect_eq(p.returncode, 0, "config check after the upgrade:\n" + p.stdout)
            expect_eq(sorted(os.listdir(r.path + "/var/lib/mxfleet")), state, "the bot's state files after the upgrade")
            serve_and_ping(r, peer, agent, port, os.path.join(work, "bot.log"))

        # remove keeps state and config, purge removes state, never the operator's secrets
        r.apt("remove mxfleet")
        expect(os.path.exists(r.path + "/var/lib/mxfleet/marker"), "remove deleted the bot's state")
        expect(os.path.exists(r.path + "/etc/mxfleet/mxfleet.json"), "remove deleted the config")
        r.apt("purge mxfleet mxfleet-agent")
        expect(not os.path.exists(r.path + "/var/lib/mxfleet"), "purge left /var/lib/mxfleet")
        expect(not os.path.exists(r.path + "/var/lib/mxfleet-agent"), "purge left /var/lib/mxfleet-agent")
        expect(not os.path.exists(r.path + "/etc/mxfleet/mxfleet.json"), "purge left the conffile")
        expect(os.path.exists(r.path + "/etc/mxfleet/secrets/pc1.pw"), "purge deleted the operator's secret")
        print("test_deb_install: ok (%s, upgrade to %s)" % (ver, ver + NEXT))
        return 0
    finally:
        for c in cleanup:
            c()
        run([DEBROOT, "down", work], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
