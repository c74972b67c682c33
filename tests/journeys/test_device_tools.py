"""Journey 2 (issue 10.1), as docs/operations.md "Onboarding" tells it:
`mxfleet device add NAME --via ssh` against a real sshd, then - without
touching the manifest it generated - the operator asks in an encrypted DM
and an LLM turn (the scripted provider) calls `fs.read` on a file of that
host; the file's content reaches the operator's DM. Then the same with
`--via wg`: onboarding installs mxfleet-agent on a device in its own
network namespace and the read goes through the wireguard-go tunnel
(tests/provision/wgnet-prov: the script re-runs itself in the hub
namespace, with a private Synapse there). The operator is a cross-signed
Element-crypto peer (matrix-js-sdk Rust crypto) and every setting is the
default (require_verified_sender on). The config is written by hand with
only the keys the docs name; `device add` writes the rest. (A local device
is not onboarded by `device add`, so it has no journey here.)

Before issue 10.1 the SSH manifest (the linux template) named fs.* tools
the ssh backend did not serve: the model was offered no tool at all."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import time

import mxtest
from mxtest import check, log

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "bot", "integration"))
from peerlib import Peer  # noqa: E402
from llmfix import ScriptedLLM  # noqa: E402


def sh(*argv, **kw):
    log("$ " + " ".join(argv))
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    check(r.returncode == 0, f"{' '.join(argv[:3])} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def reply_with(peer, room, sender, needle, secs):
    """The first decrypted message from sender containing needle; fails
    listing what came instead when none does within secs."""
    deadline = time.monotonic() + secs
    seen = []
    while True:
        left = int(deadline - time.monotonic())
        check(left > 0, f"no message with {needle!r} from {sender} within {secs} s; got {seen}")
        r = peer("a", "wait_reply", room, sender, left)
        body = r.get("body", "")
        seen.append(body[:200])
        if needle in body:
            check(r.get("encrypted"), f"the answer was not encrypted: {r}")
            return body


def host_file(tag):
    """A file with unguessable content under /var/log, a readable root of
    the shipped SSH manifest; removed again by the caller."""
    path = f"/var/log/mxfleet-journey-{tag}.log"
    token = "journey-" + secrets.token_hex(8)
    with open(path, "w") as f:
        f.write(f"the host says {token}\n")
    os.chmod(path, 0o644)
    return path, token


def onboard_and_read(hs, work, binary, llm, op, peer, path, token, via, add_args, key):
    """Writes a minimal config, runs `device add NAME --via VIA ADD_ARGS`,
    starts the daemon and has the operator ask for the file."""
    data = os.path.join(work, "data")
    os.makedirs(data, mode=0o700)
    scen_run = via
    if True:
        with open(os.path.join(work, "registration.secret"), "w") as f:
            f.write(hs.secret + "\n")
        os.chmod(os.path.join(work, "registration.secret"), 0o600)
        port = mxtest.free_port()
        provider = llm.provider("scripted", "journey_read", scen_run)
        config = {"homeserver": hs.url, "data_dir": data, "operators": [op.user_id],
                  "alerts_room": f"#operator-alerts-{secrets.token_hex(3)}:{hs.name}",
                  "registration": {"shared_secret_file": os.path.join(work, "registration.secret")},
                  "bot": {"http_listen": f"127.0.0.1:{port}"},
                  "llm": {"providers": [provider]},
                  "devices": []}
        cfg = os.path.join(work, "mxfleet.json")
        with open(cfg, "w") as f:
            json.dump(config, f, indent=2)
        os.chmod(cfg, 0o600)
        # the fleet key where device add looks by default, authorised on the host
        keys = os.path.join(data, "keys")
        os.makedirs(keys, mode=0o700)
        shutil.copyfile(key, os.path.join(keys, "mxfleet_ed25519"))
        os.chmod(os.path.join(keys, "mxfleet_ed25519"), 0o600)
        name = via + secrets.token_hex(2)
        out = sh(binary, "device", "add", name, "--via", via, *add_args, "--config", cfg)
        check(f"agent-{name} live" in out, f"device add did not finish:\n{out}")
        manifest = os.path.join(data, "manifests", f"{name}.json")
        before = open(manifest, "rb").read()

        log_path = os.path.join(work, "mxfleet.log")
        with open(log_path, "ab") as logf:
            proc = subprocess.Popen([binary, "run", "--config", cfg], stdout=logf, stderr=logf, cwd=work,
                                    preexec_fn=mxtest._die_with_parent)
        try:
            def healthy():
                check(proc.poll() is None, f"mxfleet exited with {proc.returncode}:\n{open(log_path).read()[-3000:]}")
                try:
                    return mxtest.http("GET", f"http://127.0.0.1:{port}/health", timeout=5)[0] == 200
                except OSError:
                    return False
            mxtest.wait_until(healthy, 90, "mxfleet's /health")
            agent = f"@agent-{name}:{hs.name}"
            room = peer("a", "create_dm", agent)["room_id"]
            peer("a", "wait_join", room, agent, 60)
            peer("a", "send", room, f"what does {path} say?")
            body = reply_with(peer, room, agent, token, 120)
            log(f"the answer carries the host's file: {body[:160]!r}")
            reqs = llm.requests(scen_run)
            check(reqs, "the scripted provider got no request")
            offered = [t.get("function", {}).get("name") or t.get("name") for t in reqs[0].get("body", {}).get("tools", [])]
            check("fs.read" in offered and not any(n and n.startswith("ssh.") for n in offered),
                  f"the model was offered {offered}")
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        check(open(manifest, "rb").read() == before, "the generated manifest changed")
        return name


def with_world(work, part, path, token):
    """Scripted LLM, operator (cross-signed Element crypto) and the part's
    journey against the homeserver of MX_HS_ENV."""
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    binary = os.environ["MXFLEET_BIN"]
    hs = mxtest.Homeserver.from_env()
    scen = os.path.join(work, "scenarios.json")
    with open(scen, "w") as f:
        json.dump({"journey_read": [{"calls": [{"name": "fs.read", "args": {"path": path}}]}, {"echo": True}]}, f)
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        with Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            peer("a", "login", op.user_id.split(":")[0][1:], op.password)
            peer("a", "xsign", op.password)
            part(hs, work, binary, llm, op, peer, path, token)


def ssh_part(hs, work, binary, llm, op, peer, path, token):
    sshd = os.environ["MX_JOURNEY_SSHD_DIR"]
    ssh_user = open(os.path.join(sshd, "user")).read().strip()
    ssh_port = open(os.path.join(sshd, "port")).read().strip()
    onboard_and_read(hs, work, binary, llm, op, peer, path, token, "ssh",
                     ["--ssh", f"{ssh_user}@127.0.0.1:{ssh_port}"], os.path.join(sshd, "user_ed25519"))


def wg_part(hs, work, binary, llm, op, peer, path, token):
    """Inside the hub namespace of wgnet-prov: the device is 192.0.2.2 (sshd
    lets root in with the world's key); the namespaces share this file
    system, so the agent's files go under the test's directory
    (--remote-dir), its interface gets a name of its own (--device-if) and
    systemd is left alone (--no-systemd), as docs/operations.md describes."""
    wg = os.environ["MXF_WG_DIR"]
    tag = os.environ["MXF_WG_TAG"]
    onboard_and_read(hs, work, binary, llm, op, peer, path, token, "wg",
                     ["--ssh", "root@192.0.2.2", "--hub-endpoint", "192.0.2.1:51820",
                      "--agent-bin", os.environ["MXFLEET_AGENT_BIN"], "--wg-if", os.environ["MXF_WG_IF"],
                      "--device-if", f"mxjw{tag}", "--remote-dir", os.path.join(work, "device-opt"),
                      "--no-systemd"], os.path.join(wg, "user_ed25519"))


def run_part(part):
    work = mxtest.workdir("devtools-")
    os.chmod(work, 0o755)
    path, token = host_file(secrets.token_hex(4))
    try:
        with_world(work, part, path, token)
    finally:
        os.unlink(path)


def main():
    if os.environ.get("MXF_WG_DIR"):  # re-run inside the hub namespace
        mxtest.run(lambda: run_part(wg_part))
        return
    if os.environ.get("MX_JOURNEY_PART") == "wg":
        # the hub's private Synapse, wireguard-go and the device's sshd
        wgnet = os.path.join(HERE, "..", "provision", "wgnet-prov")
        synapse = os.path.join(HERE, "..", "homeserver", "synapse")
        wgdir = os.path.join(os.environ.get("MX_TEST_TMP") or "/tmp", "journey-wgnet")
        if subprocess.run([wgnet, "setup", wgdir, synapse]).returncode:
            print("FAIL test_device_tools.py: wgnet-prov setup failed", flush=True)
            sys.exit(1)
        try:
            env = dict(os.environ)
            env.pop("MX_HS_ENV", None)  # the shared Synapse is not reachable from the hub namespace
            rc = subprocess.run([wgnet, "exec", wgdir, "--", sys.executable, os.path.abspath(__file__)],
                                env=env).returncode
        finally:
            subprocess.run([wgnet, "cleanup", wgdir])
        sys.exit(rc)
    mxtest.run(lambda: run_part(ssh_part))


main()
