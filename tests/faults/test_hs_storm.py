"""Fault 4 (issue 15), homeserver side: a storm of 429s and 5xx between the
daemon and Synapse (tests/faults/faultproxy.py, seeded by MX_FAULT_SEED).
429s carry retry_after_ms in the body, a Retry-After header, or both; 5xx
come before Synapse sees the request or after it has stored the event (the
reply is lost, so only a resend with the same txnId keeps it single).

Proves: every !ping is answered exactly once (counted in what Synapse
stored), each reply went out under one txnId however often it was retried,
every retry waited at least what the 429 asked for (header or body), the
retries per request stay bounded, and the bot is live afterwards.

MX_FAULT_PINGS (default 12) and MX_FAULT_RATE (default 0.35) size the storm;
bench/faults/hs_storm.sh runs a bigger one through this same script."""

import os
import random
import time

import mxtest
from mxtest import check, log
from faultproxy import bot_sends, check_waits, proxied_dm, rate_limited, server_error

SEED = int(os.environ.get("MX_FAULT_SEED", "15"))
PINGS = int(os.environ.get("MX_FAULT_PINGS", "12"))
RATE = float(os.environ.get("MX_FAULT_RATE", "0.35"))
MAX_IN_A_ROW = 3  # faults in a row per request, so no reply outlives the bot's 120 s send deadline


class Storm:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.on = False
        self.in_a_row = {}
        self.injected = 0
        self.firsts = set()

    def __call__(self, req):
        if not self.on:
            return None
        key = "/sync" if req.path.endswith("/sync") else req.method + " " + req.path
        if self.in_a_row.get(key, 0) >= MAX_IN_A_ROW or self.rng.random() >= RATE:
            self.in_a_row[key] = 0
            return None
        self.in_a_row[key] = self.in_a_row.get(key, 0) + 1
        self.injected += 1
        send = req.method == "PUT" and "/send/" in req.path
        # the first fault of each kind is fixed, so every seed covers the two
        # that matter most: a 429 whose wait is only in the header, and a
        # reply stored by Synapse whose answer was lost
        first = "sync" if key == "/sync" else "send" if send else None
        if first and first not in self.firsts:
            self.firsts.add(first)
            return rate_limited(header_s=1) if first == "sync" else server_error(502, after=True)
        choices = [
            lambda: rate_limited(retry_after_ms=self.rng.randrange(300, 900)),
            lambda: rate_limited(header_s=1),
            lambda: rate_limited(retry_after_ms=400, header_s=1),
            lambda: server_error(self.rng.choice([500, 502, 503, 504])),
        ]
        if send:  # Synapse stored it, the answer is lost: only the txnId saves us
            choices += [lambda: server_error(502, after=True), lambda: server_error(504, after=True)]
        return self.rng.choice(choices)()


def test():
    storm = Storm(SEED)
    with proxied_dm(storm) as (proxy, op, bot, room):
        uid = bot.user_id()
        mxtest.ping_and_wait(op, room, uid, 1)
        log(f"storm on: seed {SEED}, rate {RATE}, {PINGS} pings")
        t_storm = time.monotonic()
        storm.on = True
        for _ in range(PINGS):
            op.send_text(room, "!ping")
        op.wait_messages(room, uid, mxtest.is_pong, count=PINGS + 1, timeout=150)
        storm.on = False

        # quiescent: every send the bot started has had its final answer
        def settled():
            sends = bot_sends(proxy.entries(t_storm))
            last = {}
            for e in sends:
                last[e["path"]] = e
            return all(e["action"] == "forward" and e["status"] == 200 for e in last.values())
        mxtest.wait_until(settled, 60, "the bot's sends to settle")
        mxtest.ping_and_wait(op, room, uid, PINGS + 2, timeout=30)

        entries = proxy.entries(t_storm)
        pongs = mxtest.pongs(op, room, uid)
        sends = [e for e in bot_sends(entries) if "/send/m.room.message/" in e["path"]]
        # the machine-readable summary bench/faults/hs_storm.py collects
        print(f"STORM seed={SEED} pings={PINGS} rate={RATE} faults={storm.injected} "
              f"send_attempts={len(sends)} lost={max(0, PINGS + 2 - len(pongs))} "
              f"doubled={max(0, len(pongs) - PINGS - 2)} seconds={time.monotonic() - t_storm:.1f}", flush=True)
        check(len(pongs) == PINGS + 2,
              f"expected {PINGS + 2} pongs stored by Synapse, got {len(pongs)} (lost or doubled)")
        txns = {e["path"] for e in sends}
        check(len(txns) == PINGS + 1,
              f"expected one txnId per reply ({PINGS + 1}), the bot used {len(txns)}")
        tries = max(sum(1 for e in sends if e["path"] == t) for t in txns)
        check(tries <= MAX_IN_A_ROW + 1, f"a reply was tried {tries} times for {MAX_IN_A_ROW} faults")
        bad = check_waits(entries)
        check(not bad, "retries came sooner than the 429 asked:\n  " + "\n  ".join(bad))
        faults = [e for e in entries if e["action"] != "forward"]
        kinds = sorted({e["action"].split(" wait=")[0] for e in faults})
        log(f"{storm.injected} faults injected ({', '.join(kinds)}); {len(sends)} send attempts "
            f"for {len(txns)} replies; lost 0, doubled 0")
        check(storm.injected >= PINGS // 2, f"the storm injected only {storm.injected} faults")
        bot.stop()


mxtest.run(test)
