"""Fault 7 (issue 15), SSH side: sshd is killed (the listener, the session
processes and the command) while a tool call runs on the host
(tests/devices/sshd-fixture), then started again on the same port and key.

Proves: the call ends within its deadline with a failure the operator sees,
the bot-side audit records the call as failed, the health monitor posts one
[ALERT] ssh_unreachable for the outage (not one per check) and [RESOLVED]
after, and the next call works over a new SSH session (a new login in the
server's log); the audit chain verifies."""

import json
import os
import signal
import subprocess
import time

import mxtest
from mxtest import check, log
from devfix import Sshd
from faultlib import alerts, audit_records, check_store, processes_below, running
from llmfix import ScriptedLLM, llm_block, write_manifest

CALL_MS = 8000
INTERVAL_S = 5


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    work = mxtest.workdir("deadssh-")
    with Sshd(work) as sshd:
        slow = ["/bin/sleep", f"{37 + os.getpid() % 50}"]  # a unique command line to find
        scen = os.path.join(work, "scen.json")
        with open(scen, "w") as f:
            json.dump({"dead": [{"calls": [{"name": "shell.exec", "args": {"argv": slow}}]}, {"echo": True},
                                {"calls": [{"name": "shell.exec", "args": {"argv": ["/bin/echo", "back", "again"]}}]},
                                {"echo": True}]}, f)
        hs = mxtest.Homeserver.from_env()
        with hs, ScriptedLLM(extra_scenarios=scen) as llm:
            op = hs.new_user("alice")
            bot = mxtest.Bot(hs, [op.user_id], [("web", mxtest.unique("agent-web"))],
                             extra={"llm": llm_block([llm.provider("p", "dead", "d1")], ["p"]),
                                    "health": {"interval_s": INTERVAL_S, "pending_s": 0, "keep_firing_s": 0}})
            dev = bot.config["devices"][0]
            dev["backend"] = sshd.backend()
            dev["manifest"] = write_manifest(bot.dir, {
                "version": 1, "platform": "linux", "paths": {"read": [], "write": []},
                "commands": {"allow": [{"argv0": "/bin/sleep", "args": [], "rest": "*"},
                                       {"argv0": "/bin/echo", "args": [], "rest": "*"}]},
                "tools": {"shell.exec": {"timeout_ms": CALL_MS}}})
            bot.write_config()
            with bot:
                bot.start()
                uid = bot.user_id()
                room = mxtest.open_dm(op, bot)
                op.send_text(room, "run the slow job")
                mxtest.wait_until(lambda: running(slow), 60, f"{slow} to run on the host")
                logins = sshd.logins()
                pid = int(open(os.path.join(sshd.dir, "sshd.pid")).read())
                victims = processes_below(pid) + running(slow)
                t_kill = time.monotonic()
                for p in victims:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                log(f"killed sshd and its sessions mid-call: {len(victims)} processes")
                ans = op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""),
                                       timeout=CALL_MS / 1000 + 30)[0]["content"]["body"]
                took = time.monotonic() - t_kill
                log(f"the call ended {took:.1f} s after the kill: {ans[:200]}")
                check(took < CALL_MS / 1000 + 5, f"the call outlived its {CALL_MS} ms deadline: {took:.1f} s")

                alert = "[ALERT] device_id=web status=ssh_unreachable"
                mxtest.wait_until(lambda: alert in bot.log_text(), INTERVAL_S * 4, "the ssh_unreachable alert")
                t_alert = time.monotonic()
                # a bounded look at the next checks: the outage is still on
                mxtest.wait_until(lambda: time.monotonic() - t_alert > INTERVAL_S * 2.5, INTERVAL_S * 3,
                                  "two more health checks")
                n = len(alerts(bot, alert))
                check(n == 1, f"the outage was alerted {n} times")

                subprocess.run(["/usr/sbin/sshd", "-f", os.path.join(sshd.dir, "sshd.conf"),
                                "-E", os.path.join(sshd.dir, "sshd.log")], check=True)
                mxtest.wait_until(lambda: "[RESOLVED] device_id=web status=ssh_unreachable" in bot.log_text(),
                                  INTERVAL_S * 4, "the ssh_unreachable alert to resolve")
                op.send_text(room, "say back again")
                ans = op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""), count=2,
                                       timeout=60)[-1]["content"]["body"]
                check("back again" in ans, f"the call after recovery did not run: {ans[:300]}")
                check(sshd.logins() > logins, f"no new SSH login after the restart ({logins} before the kill)")
                bot.stop()
                recs = audit_records(bot, "web")
                sleeps = [r for r in recs if r.get("args", {}).get("argv") == slow]
                outcome = [r for r in sleeps if r.get("kind") != "intent"]
                check(len(outcome) == 1 and outcome[0].get("status") not in ("done", "pending"),
                      f"the audit does not record the killed call as failed: "
                      f"{[(r.get('kind'), r.get('status')) for r in sleeps]}")
                log(f"audit: the killed call's outcome is '{outcome[0]['status']}'")
                echo = [r for r in recs if r.get("args", {}).get("argv") == ["/bin/echo", "back", "again"]
                        and r.get("kind") != "intent"]
                check(echo and echo[0].get("status") == "done", f"the call after recovery: {echo}")
                check_store(bot)


mxtest.run(test)
