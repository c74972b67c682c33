"""Fault 7 (issue 15), WireGuard side: the device's WireGuard link goes down
(`ip link set ... down` in the device's namespace: packets are dropped
silently, no reset reaches the bot) while a tool call runs on the device
through mxfleet-agent (tests/devices/wgnet), and comes back later.

Proves: the call ends within its deadline (the call's timeout plus the
backend's slack), the operator is told it failed, the bot-side audit records
it as failed, the health monitor posts one [ALERT] for the outage (not one
per check) and [RESOLVED] after, and the next call works through the tunnel.

Sets up its own tunnel and re-runs itself in the hub namespace with a
private Synapse, like tests/bot/integration/test_wg_device.py."""

import json
import os
import subprocess
import time

import mxtest
from mxtest import check, log
from devfix import wgnet_main
from faultlib import alerts, audit_records, check_store, running
from llmfix import ScriptedLLM, llm_block, write_manifest
CALL_MS = 8000
SLACK_S = 5  # DEV_WG_SLACK_MS and scheduling
INTERVAL_S = 5


def netns_names(wg):
    """The device namespace and its WireGuard interface, named as wgnet does."""
    tag = subprocess.run(f"printf '%s' '{wg}' | cksum | cut -d' ' -f1 | tail -c 6", shell=True,
                         capture_output=True, text=True, check=True).stdout.strip()
    return f"mxdev{tag}", f"mxwd{tag}", f"mxwh{tag}"


def link(wg, state):
    ns, ifname, _ = netns_names(wg)
    subprocess.run(["ip", "-n", ns, "link", "set", ifname, state], check=True)
    if state == "up":  # the address's route went with the link
        subprocess.run(["ip", "-n", ns, "route", "replace", "198.51.100.0/24", "dev", ifname], check=True)


def inside(wg):
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    dev_root = os.path.join(wg, "dev-root")
    work = mxtest.workdir("deadwg-")
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"dead": [{"calls": [{"name": "shell.exec", "args": {"argv": ["/bin/sleep", "30"]}}]},
                            {"echo": True},
                            {"calls": [{"name": "fs.read", "args": {"path": os.path.join(dev_root, "hello.txt")}}]},
                            {"echo": True}]}, f)
    hs = mxtest.Homeserver.start_own(name="deadwg")
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("wgtest", mxtest.unique("agent-wgtest"))],
                         extra={"llm": llm_block([llm.provider("p", "dead", "w1")], ["p"]),
                                "health": {"interval_s": INTERVAL_S, "pending_s": 0, "keep_firing_s": 0,
                                           "wg_interface": netns_names(wg)[2]}})
        dev = bot.config["devices"][0]
        dev["backend"] = {"kind": "wg", "address": "198.51.100.2", "port": 7443,
                          "hmac_key_file": os.path.join(wg, "agent.key")}
        dev["manifest"] = write_manifest(bot.dir, {
            "version": 1, "platform": "linux", "paths": {"read": [dev_root], "write": []},
            "commands": {"allow": [{"argv0": "/bin/sleep", "args": ["*"]}]},
            "tools": {"fs.read": {}, "shell.exec": {"timeout_ms": CALL_MS}}})
        bot.write_config()
        with bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            op.send_text(room, "run the slow job")
            mxtest.wait_until(lambda: running(["/bin/sleep", "30"]), 60, "the call to run on the device")
            t_down = time.monotonic()
            link(wg, "down")
            log("the device's WireGuard link is down")
            ans = op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""),
                                   timeout=CALL_MS / 1000 + 60)[0]["content"]["body"]
            took = time.monotonic() - t_down
            log(f"the call ended {took:.1f} s after the link went down: {ans[:200]}")
            check(took < CALL_MS / 1000 + SLACK_S + 3, f"the call outlived its deadline: {took:.1f} s")
            check("fail" in ans.lower() or "timed out" in ans.lower() or "timeout" in ans.lower(),
                  f"the operator is not told the call failed: {ans[:300]}")

            mxtest.wait_until(lambda: alerts(bot, "[ALERT] device_id=wgtest"), INTERVAL_S * 6,
                              "an alert for the dead link")
            t_alert = time.monotonic()
            mxtest.wait_until(lambda: time.monotonic() - t_alert > INTERVAL_S * 2.5, INTERVAL_S * 3,
                              "two more health checks")
            posted = alerts(bot, "[ALERT] device_id=wgtest")
            check(len(posted) == 1, f"the outage was alerted {len(posted)} times: {posted}")

            link(wg, "up")
            mxtest.wait_until(lambda: alerts(bot, "[RESOLVED] device_id=wgtest"), INTERVAL_S * 6,
                              "the alert to resolve")
            op.send_text(room, "read hello")
            ans = op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""), count=2,
                                   timeout=60)[-1]["content"]["body"]
            check("hello from the device" in ans, f"the call after recovery failed: {ans[:300]}")
            bot.stop()
            recs = audit_records(bot, "wgtest")
            out = [r for r in recs if r.get("tool") == "shell.exec" and r.get("kind") != "intent"]
            check(len(out) == 1 and out[0].get("status") not in ("done", "pending"),
                  f"the audit does not record the cut call as failed: {[(r.get('kind'), r.get('status')) for r in recs]}")
            log(f"audit: the cut call's outcome is '{out[0]['status']}'")
            check_store(bot)


wgnet_main(__file__, inside, "deadwg-net")
