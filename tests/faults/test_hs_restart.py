"""Issue 15 fault 3: the homeserver restarts (Synapse stopped and started
again on its database and port: an own instance, not the shared fixture)
- mid-sync: while the bot long-polls /sync, and again right after an
  operator's !ping was stored (the bot may not have fetched it yet);
- mid-send: while an LLM turn is thinking, so its answer is sent while the
  homeserver is down or coming back.
The bot reconnects with backoff (its log says it retries), answers every
command exactly once as Synapse stores it (one reply per txnId: a reply
sent again after a lost answer is not a second event), loses nothing, and
its store is intact afterwards."""

import json
import os
import subprocess
import time

import faultlib
import mxtest
from mxtest import check
from llmfix import ScriptedLLM, llm_block

SLOW = 3.0  # seconds the scripted model thinks


def restart(hs, down_s):
    """Stops Synapse, keeps it down for down_s seconds (polled: it must
    really refuse), then starts it again on the same database and port."""
    directory = hs._owned_dir
    subprocess.run([mxtest.SYNAPSE_SCRIPT, "stop", directory, "--keep"], check=True, stdout=subprocess.DEVNULL)

    def refused():
        try:
            mxtest.http("GET", f"{hs.url}/_matrix/client/versions", timeout=2)
            return False
        except OSError:
            return True
    mxtest.wait_until(refused, 30, "Synapse to stop answering")
    time.sleep(down_s)  # the outage itself: the bot must ride it out
    subprocess.run([mxtest.SYNAPSE_SCRIPT, "start", directory, "--keep"], check=True, stdout=subprocess.DEVNULL)
    mxtest.log(f"homeserver restarted after {down_s:.1f} s down")


def slow_answers(op, room, uid):
    return [e for e in op.messages_from(room, uid) if e["content"].get("body") == "slow answer"]


def test():
    rng = faultlib.seed()
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    work = mxtest.workdir("hsrestart-")
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"slow_text": [{"text": "slow answer", "delay_s": SLOW}]}, f)
    hs = mxtest.Homeserver.start_own(name="faults-hs-restart")
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         extra={"llm": llm_block([llm.provider("p", "slow_text", "t1")], ["p"])})
        with bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            pings = [mxtest.ping_and_wait(op, room, uid, 1)]

            # mid-sync: the bot is inside a long-poll when Synapse goes away
            restart(hs, rng.uniform(1.0, 4.0))
            pings.append(mxtest.ping_and_wait(op, room, uid, len(pings) + 1, timeout=120))

            # a command stored just before the restart: fetched after it
            pings.append(op.send_text(room, "!ping"))
            restart(hs, rng.uniform(0.5, 2.0))
            op.wait_messages(room, uid, mxtest.is_pong, count=len(pings), timeout=120)

            # mid-send: the model answers while the homeserver is down
            turns = 2
            for t in range(turns):
                op.send_text(room, f"slow question {t}")
                mxtest.wait_until(lambda: len(llm.requests("t1")) > t, 60, f"LLM request of turn {t}")
                restart(hs, SLOW + rng.uniform(0.0, 2.0))
                op.wait_messages(room, uid, lambda c: c.get("body") == "slow answer", count=t + 1, timeout=120)

            pings.append(mxtest.ping_and_wait(op, room, uid, len(pings) + 1, timeout=60))
            mxtest.assert_exactly_once(op, room, uid, pings)
            answers = slow_answers(op, room, uid)
            check(len(answers) == turns, f"expected {turns} LLM answers, Synapse has {len(answers)}")
            check(len(llm.requests("t1")) == turns, f"a turn was run again: {len(llm.requests('t1'))} LLM requests")
            text = bot.log_text()
            check("unreachable" in text or "retrying" in text,
                  "the bot never logged that it was retrying the homeserver")
            bot.stop()
            faultlib.check_store(bot)


mxtest.run(test)
