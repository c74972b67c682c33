"""Issue 15, fault 1 and the corruption it found: the CLI runs against the
daemon's data directory while the daemon has an LLM turn in flight, in
rounds. Every round re-runs `mxfleet device add` for an existing SSH device
(the documented repair) and, in a seeded order, `device list`, `audit
verify`, `audit show`, `config check` (when this build has it) and every
third round onboards and revokes a throwaway device. After each round:
the turn was answered, PRAGMA integrity_check of every database is ok, the
audit verifies, the daemon logged no SQLite I/O or corruption error; at the
end the same with the daemon stopped. (Before the fix, mx_db_open's
open()+close() dropped the daemon's POSIX locks and the CLI deleted the WAL
the daemon was using: "agent turn failed: sqlite: disk I/O error".)

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


def round_commands(rng, i, add, bot, has_config_check):
    """One round's CLI runs: the repair first (while the turn is surely in
    flight), then the read-only commands in a seeded order; every third
    round a throwaway device is onboarded and revoked."""
    reads = [lambda: faultlib.cli(bot, "device", "list", "--json"),
             lambda: faultlib.cli(bot, "audit", "verify"),
             lambda: faultlib.cli(bot, "audit", "show", "--device", "pc1", "--json")]
    if has_config_check:
        reads.append(lambda: faultlib.cli(bot, "config", "check"))
    rng.shuffle(reads)
    cmds = [add] + reads
    if i % 3 == 2:
        name = f"tmp{i}-{rng.randrange(16 ** 6):06x}"
        cmds += [lambda: add(name), lambda: faultlib.cli(bot, "device", "revoke", name, "--yes")]
    return cmds


def test():
    rng = faultlib.seed()
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
                has_config_check = faultlib.cli(bot, "config", "check", ok=(0, 1, 2)).returncode == 0
                runs = 0
                for i in range(TURNS):
                    op.send_text(room, f"question {i}")

                    def in_flight():
                        faultlib.assert_log_clean(bot)
                        return len(llm.requests("t1")) > i
                    mxtest.wait_until(in_flight, 60, f"LLM request of turn {i}")
                    for cmd in round_commands(rng, i, add, bot, has_config_check):
                        cmd()
                        runs += 1
                    op.wait_messages(room, uid, lambda c: c.get("body") == "slow answer", count=i + 1,
                                     timeout=60)
                    faultlib.assert_log_clean(bot)
                    bot.assert_running()
                    faultlib.check_store(bot)  # beside the running daemon
                mxtest.log(f"{TURNS} turns answered, {runs} CLI runs beside them")
                bot.stop()
            faultlib.check_store(bot)
    finally:
        subprocess.run([FIXTURE, "stop", sshd], capture_output=True)


mxtest.run(test)
