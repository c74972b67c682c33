"""Journey 3 (issue 10.4, 10.5), docs/operations.md "Alerts" and
docs/mobile-control.md: a device onboarded with `mxfleet device add --via wg`
(real wireguard-go and mxfleet-agent in a second network namespace), the bot
running with default settings, the operator on Element (matrix-js-sdk Rust
crypto, cross-signed) in the operator-alerts room it was invited to. The
agent is stopped: exactly one `[ALERT] device_id=NAME status=agent_down`
arrives in the encrypted alerts room, Element's push rules on it say notify,
and Synapse lists it in the operator's /notifications (what reaches the
phone); `!health` from the operator answers there with agent_down.

Runs inside the hub namespace of tests/provision/wgnet-prov (private
Synapse, hub wireguard-go, an sshd in the device namespace for onboarding).
The only settings besides the required ones are health.interval_s and
pending_s (5 s each, not security settings), so the alert comes in seconds,
not minutes; `--no-systemd`/`--remote-dir`/`--device-if` keep the device
namespace's agent off the host's systemd, as in test_prov_wg."""

import json
import os
import re
import secrets
import signal
import subprocess
import sys

import mxtest
from mxtest import check, log

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from peerlib import Peer, next_matching, notified, operator  # noqa: E402


def test():
    wg_dir, wg_if = os.environ["MXF_WG_DIR"], os.environ["MXF_WG_IF"]
    binary, agent_bin = mxtest.mxfleet_bin(), os.environ["MXFLEET_AGENT_BIN"]
    hs = mxtest.Homeserver.from_env()
    work = mxtest.workdir("agent-alert-")
    os.chmod(work, 0o755)  # the agent drops to an unprivileged user and reads its bundle here
    op = hs.new_user("alice")
    alias = f"#operator-alerts:{hs.name}"
    with open(os.path.join(work, "registration.secret"), "w") as f:
        f.write(hs.secret + "\n")
    os.chmod(os.path.join(work, "registration.secret"), 0o600)
    port = mxtest.free_port()
    cfg_path = os.path.join(work, "mxfleet.json")
    with open(cfg_path, "w") as f:
        json.dump({"homeserver": hs.url, "data_dir": "data", "operators": [op.user_id], "alerts_room": alias,
                   "registration": {"shared_secret_file": "registration.secret"},
                   "health": {"wg_interface": wg_if, "interval_s": 5, "pending_s": 5},
                   "bot": {"http_listen": f"127.0.0.1:{port}"}, "devices": []}, f, indent=2)
    name = "lap" + secrets.token_hex(2)
    remote = os.path.join(work, "remote")
    r = subprocess.run([binary, "device", "add", name, "--via", "wg", "--ssh", "root@192.0.2.2",
                        "--key", os.path.join(wg_dir, "user_ed25519"), "--hub-endpoint", "192.0.2.1:51820",
                        "--agent-bin", agent_bin, "--remote-dir", remote, "--device-if", f"mxj{secrets.token_hex(2)}",
                        "--no-systemd", "--config", cfg_path], capture_output=True, text=True, timeout=180)
    log(r.stdout + r.stderr)
    check(r.returncode == 0 and f"agent-{name} live" in r.stdout, "device add --via wg failed")

    log_path = os.path.join(work, "mxfleet.log")
    with open(log_path, "ab") as logf:
        bot = subprocess.Popen([binary, "run", "--config", cfg_path], stdout=logf, stderr=logf, cwd=work,
                               preexec_fn=mxtest._die_with_parent)
    try:
        def healthy():
            check(bot.poll() is None, f"mxfleet exited {bot.returncode}:\n{open(log_path).read()[-3000:]}")
            try:
                return mxtest.http("GET", f"http://127.0.0.1:{port}/health", timeout=5)[0] == 200
            except OSError:
                return False
        mxtest.wait_until(healthy, 90, "the bot's /health")
        uid = f"@agent-{name}:{hs.name}"
        with Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            operator(peer, op)
            room = mxtest.wait_until(lambda: op.resolve_alias(alias), 60, "the alerts room")
            mxtest.wait_until(lambda: room in op.invites(), 60, "the invite to the alerts room")
            peer("a", "join", room)  # waits for the room's encryption
            seen = []
            # healthy first: !health answers, no alert yet
            peer("a", "send", room, "!health")
            ok = next_matching(peer, room, uid, lambda b: name in b and "[ALERT]" not in b, 60, seen)
            check("agent_down" not in ok["body"], f"the agent is reported down before it was stopped: {ok['body']}")

            # the agent stops (as `systemctl stop mxfleet-agent` would)
            pid = int(open(os.path.join(remote, "agent.pid")).read())
            os.kill(pid, signal.SIGTERM)
            want = rf"^\[ALERT\] device_id={re.escape(name)} status=agent_down"
            alert = next_matching(peer, room, uid, lambda b: re.search(want, b), 120, seen)
            check(alert["encrypted"], "the alert was sent in clear")
            acts = peer("a", "push_actions", room, alert["event_id"])
            check(acts["notify"], f"Element's push rules do not notify for the alert: {acts}")
            mxtest.wait_until(lambda: notified(op, alert["event_id"]), 30, "the alert in the operator's /notifications")

            peer("a", "send", room, "!health")
            h = next_matching(peer, room, uid, lambda b: name in b and "[ALERT]" not in b, 60, seen)
            check("agent_down" in h["body"], f"!health does not report the stopped agent: {h['body']}")
            # several more checks have run: still one alert
            check(len([s for s in seen if re.search(want, s["body"])]) == 1,
                  f"expected exactly one agent_down alert, got {[s['body'] for s in seen]}")
        bot.send_signal(signal.SIGTERM)
        check(bot.wait(timeout=10) == 0, "mxfleet did not stop cleanly")
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
        # the device side (wireguard-go, a restarted agent) goes with the
        # namespaces: journey_wgnet_cleanup ends everything left in them


mxtest.run(test)
