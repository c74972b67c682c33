"""Issue 15, the corruption it found: `mxfleet device add` re-run for an
existing SSH device (the documented repair) while the daemon runs with an
LLM turn in flight, against the same data directory. Every turn must be
answered, the daemon must log no SQLite I/O or corruption error, and
afterwards PRAGMA integrity_check of every database says ok and the audit
verifies. (Before the fix, mx_db_open's open()+close() dropped the daemon's
POSIX locks and the CLI deleted the WAL the daemon was using.)

Real components: Synapse fixture, sshd fixture (tests/devices/sshd-fixture),
the scripted LLM provider with a slow answer."""

import json
import os
import subprocess

import faultlib
import mxtest
from mxtest import check
from llmfix import REPO, ScriptedLLM, llm_block

FIXTURE = os.path.join(REPO, "tests", "devices", "sshd-fixture")
TURNS = int(os.environ.get("MX_FAULT_TURNS", "12"))


def answers(op, room, uid):
    return sum(1 for e in op.messages_from(room, uid) if e["content"].get("body") == "slow answer")


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    work = mxtest.workdir("clibeside-")
    os.chmod(work, 0o755)  # sshd reads authorized_keys as the fixture user
    sshd = os.path.join(work, "sshd")
    subprocess.run([FIXTURE, "start", sshd], check=True, capture_output=True)
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"slow_text": [{"text": "slow answer", "delay_s": 2.5}]}, f)
    try:
        hs = mxtest.Homeserver.from_env()
        with hs, ScriptedLLM(extra_scenarios=scen) as llm:
            op = hs.new_user("alice")
            bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                             extra={"llm": llm_block([llm.provider("p", "slow_text", "t1")], ["p"])})
            add = faultlib.ssh_device_adder(bot, hs, sshd, "web-" + mxtest.unique("x")[-6:])
            add()  # onboard once, before the daemon starts (the documented order)
            with bot:
                bot.start()
                uid = bot.user_id("pc1")
                room = mxtest.open_dm(op, bot, "pc1")
                runs = 0
                for i in range(TURNS):
                    op.send_text(room, f"question {i}")
                    # the turn is in flight once the model has its request
                    def in_flight():
                        faultlib.assert_log_clean(bot)
                        return len(llm.requests("t1")) > i
                    mxtest.wait_until(in_flight, 60, f"LLM request of turn {i}")
                    add()
                    runs += 1
                    if answers(op, room, uid) <= i:
                        add()  # a second run while the same turn may still be in flight
                        runs += 1
                    op.wait_messages(room, uid, lambda c: c.get("body") == "slow answer", count=i + 1,
                                     timeout=60)
                    faultlib.assert_log_clean(bot)
                    bot.assert_running()
                mxtest.log(f"{TURNS} turns answered, device add ran {runs} times beside them")
                bot.stop()
            faultlib.check_store(bot)
    finally:
        subprocess.run([FIXTURE, "stop", sshd], capture_output=True)


mxtest.run(test)
