"""Fault 4 (issue 15), LLM side: a provider in a storm of 429s and 5xx
(the scripted provider, tests/llm/scripted_provider.py). Three turns:
  1. 429 (retry-after-ms 400), 503, then an answer: the answer reaches the
     operator exactly once, and the retry after the 429 waited >= 400 ms;
  2. 429, then a 429 asking to wait an hour (over max_retry_after_ms): the
     turn gives up at once (no hour-long sleep) with a clear notice, after
     no more requests than max_attempts;
  3. the provider recovers: the next turn is answered, once.
Then !ping is answered promptly."""

import json
import os
import time

import mxtest
from mxtest import check, log
from llmfix import ScriptedLLM, llm_block

ERR = {"type": "rate_limit_error", "code": "rate_limit_exceeded", "message": "slow down"}
STORM = [
    {"status": 429, "headers": {"retry-after-ms": "400"}, "error": ERR},
    {"status": 503, "error": {"type": "server_error", "message": "overloaded"}},
    {"text": "answer after the storm"},
    {"status": 429, "headers": {"retry-after-ms": "200"}, "error": ERR},
    {"status": 429, "headers": {"retry-after": "3600"}, "error": ERR},
    {"text": "answer after recovery"},
]


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    scen = os.path.join(mxtest.workdir("scen-"), "storm.json")
    with open(scen, "w") as f:
        json.dump({"storm": STORM}, f)
    with hs, ScriptedLLM(scen) as llm:
        p = llm.provider("stormy", "storm", "r1")
        p["retry"] = {"max_attempts": 3, "initial_backoff_ms": 100, "max_backoff_ms": 200}
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         extra={"llm": llm_block([p], ["stormy"])})
        with bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)

            def turn(text, marker, timeout=30):
                t0 = time.monotonic()
                op.send_text(room, text)
                op.wait_messages(room, uid, lambda c: marker in c.get("body", ""), timeout=timeout)
                return time.monotonic() - t0

            turn("first question", "answer after the storm")
            reqs = llm.requests("r1")
            check(len(reqs) == 3, f"turn 1: expected 3 requests (429, 503, answer), got {len(reqs)}")
            gap = reqs[1]["t"] - reqs[0]["t"]
            check(gap >= 0.38, f"turn 1: retried {gap * 1000:.0f} ms after a 429 asking for 400 ms")

            took = turn("second question", "language model")
            reqs = llm.requests("r1")
            check(len(reqs) == 5, f"turn 2: expected 2 more requests (429, 429 for an hour), got {len(reqs) - 3}")
            check(took < 15, f"turn 2 took {took:.1f} s: it waited on a retry-after over max_retry_after_ms")
            notice = [e["content"]["body"] for e in op.messages_from(room, uid)
                      if "language model" in e["content"].get("body", "")]
            log(f"give-up notice: {notice[-1][:200]}")
            check("stormy" in notice[-1] and "429" in notice[-1],
                  f"the notice does not name the provider and its 429: {notice[-1]}")

            turn("third question", "answer after recovery")
            for marker in ("answer after the storm", "answer after recovery", "language model"):
                n = [e for e in op.messages_from(room, uid)
                     if e["content"].get("body", "").startswith(("I could", "answer")) and
                     marker in e["content"].get("body", "")]
                check(len(n) == 1, f"'{marker}' reached the operator {len(n)} times")
            mxtest.ping_and_wait(op, room, uid, 1, timeout=15)
            bot.stop()


mxtest.run(test)
