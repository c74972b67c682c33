"""Fault 5 (issue 15), LLM side: a provider that stops sending mid-stream
and keeps the connection open, and one that accepts the connection and never
answers at all. Both are caught by the provider's idle_timeout_ms (no byte
for that long), not by the whole-request timeout_ms (left at its default,
two minutes): the turn ends within seconds with a notice naming the stall,
each provider was tried no more than its max_attempts, and the worker is free
again (a following !ping is answered at once)."""

import json
import os
import socket
import time

import mxtest
from mxtest import check, log
from llmfix import ScriptedLLM, llm_block

IDLE_MS = 1500


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    scen = os.path.join(mxtest.workdir("scen-"), "stall.json")
    with open(scen, "w") as f:
        json.dump({"stall_mid": [{"cut": True, "after_text": "Let me thi", "stall_s": 600}]}, f)
    # a server that completes the TCP handshake (the kernel does) and then
    # never reads nor answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    with hs, ScriptedLLM(scen) as llm:
        primary = llm.provider("primary", "stall_mid", "r1")
        fallback = llm.provider("silent", "x", "r1", kind="anthropic")
        fallback["base_url"] = f"http://127.0.0.1:{silent.getsockname()[1]}"
        for p, attempts in ((primary, 2), (fallback, 1)):
            del p["timeout_ms"]  # the default (120 s) must not be what ends the turn
            p["idle_timeout_ms"] = IDLE_MS
            p["retry"]["max_attempts"] = attempts
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         extra={"llm": llm_block([primary, fallback], ["primary", "silent"])})
        with bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            t0 = time.monotonic()
            op.send_text(room, "What is the uptime?")
            notice = op.wait_messages(room, uid, lambda c: "language model" in c.get("body", ""),
                                      timeout=60)[0]["content"]["body"]
            took = time.monotonic() - t0
            log(f"turn gave up after {took:.1f} s: {notice[:200]}")
            check("idle_timeout_ms" in notice and "primary" in notice and "silent" in notice,
                  f"the notice does not say both providers stalled: {notice}")
            # 3 attempts of 1.5 s idle each, plus curl's 1 s progress tick
            check(took < 20, f"the stalled turn took {took:.1f} s to end (idle_timeout_ms {IDLE_MS})")
            reqs = llm.requests("r1")
            check(len(reqs) == 2, f"the stalling provider got {len(reqs)} requests, max_attempts is 2")
            t1 = time.monotonic()
            mxtest.ping_and_wait(op, room, uid, 1, timeout=15)
            log(f"!ping answered {time.monotonic() - t1:.1f} s after")
            bot.stop()
    silent.close()


mxtest.run(test)
