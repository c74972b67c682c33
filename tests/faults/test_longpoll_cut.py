"""A reverse proxy between the bot and the homeserver cuts requests that
Synapse has not answered within CUT_S (tests/faults/faultproxy.py
read_timeout: a 504, as nginx's proxy_read_timeout does), while the bot's
long-poll stretches from bot.sync_timeout_ms towards bot.sync_timeout_max_ms
(mx_longpoll.h).

Proves, on the wire: the /sync long-polls ask for 1.5 times longer after
every 10 held in full (1000, 1500, 2250 ms); the first one longer than the
proxy allows is cut, and from then on every long-poll asks for less than
CUT_S (9/10 of where the cut came) and is held in full, with no 504 again;
the cut counts as no sync error (no backoff), the log says it once, /metrics
shows the length in force; and a !ping sent afterwards is answered at
once."""

import re
import time

import mxtest
from mxtest import check, log
from faultproxy import proxied_dm, read_timeout

START_MS = 1000
CUT_S = 2.0


def rule(req):
    # only long-polls: the catch-up sync and every other call pass untouched
    if req.path.endswith("/sync") and int(req.query.get("timeout", ["0"])[0]) > 0:
        return read_timeout(CUT_S)
    return None


def asked(e):
    return int(e["query"]["timeout"][0])


def test():
    opts = {"sync_timeout_ms": START_MS, "sync_timeout_max_ms": 8000}
    with proxied_dm(rule, bot_opts=opts) as (proxy, op, bot, room):
        uid = bot.user_id()
        pings = [mxtest.ping_and_wait(op, room, uid, 1)]
        t0 = time.monotonic()

        def polls(since=t0):
            return [e for e in proxy.entries(since) if e["path"].endswith("/sync") and "timeout" in e["query"]
                    and asked(e) > 0]

        # 10 holds at 1000 ms, 10 at 1500 ms, then the 2250 ms one is cut:
        # about 25 s of idle long-polls
        mxtest.wait_until(lambda: any(e["status"] == 504 for e in polls()), 90,
                          "a stretched long-poll to be cut by the proxy")
        cut = next(e for e in polls() if e["status"] == 504)
        t_cut = cut["t"]
        lengths = []
        for e in polls():
            if e["t"] <= t_cut and (not lengths or lengths[-1] != asked(e)):
                lengths.append(asked(e))
        log(f"long-poll lengths asked before the cut: {lengths}")
        check(lengths[-3:] == [1000, 1500, 2250] or lengths[-2:] == [1500, 2250],
              f"expected the long-poll stretched 1000 -> 1500 -> 2250 ms, saw {lengths}")

        # after the cut: every long-poll below the proxy's limit, held in full
        mxtest.wait_until(lambda: sum(1 for e in polls(t_cut) if e["t"] > t_cut and e["status"] == 200) >= 6,
                          60, "six long-polls after the cut")
        after = [e for e in polls(t_cut) if e["t"] > t_cut]
        log(f"after the cut: {[(asked(e), e['status']) for e in after]}")
        check(all(asked(e) < CUT_S * 1000 for e in after),
              f"a long-poll after the cut asked for {CUT_S} s or more: {[asked(e) for e in after]}")
        check(all(asked(e) >= 0.9 * CUT_S * 1000 - 50 for e in after),
              f"after the cut the long-poll fell further than 9/10 of it: {[asked(e) for e in after]}")
        check(not any(e["status"] == 504 for e in after), "a long-poll was cut again after the bot learned")
        # a cut long-poll is asked again at once, not after a backoff
        nxt = next(e for e in polls(cut["t"]) if e["t"] > cut["t"])
        gap = nxt["t"] - (cut["t"] + CUT_S)
        check(gap < 0.5, f"the long-poll was asked again {gap:.2f} s after the cut")

        check(bot.metric_total("mxfleet_sync_errors_total") == 0,
              f"the cut counted as sync errors: {bot.metric_total('mxfleet_sync_errors_total')}")
        gauge = bot.metric_total("mxfleet_sync_longpoll_seconds")
        check(abs(gauge * 1000 - asked(after[-1])) < 1,
              f"/metrics shows a long-poll of {gauge} s, the wire {asked(after[-1])} ms")
        said = re.findall(r"a long-poll of \d+ ms was cut after \d+ ms \(http 504\) by something between "
                          r"mxfleet and the homeserver; long-polls now last \d+ ms", bot.log_text())
        check(len(said) == 1, f"expected the cut in the log once, found {len(said)}")

        t2 = time.monotonic()
        pings.append(mxtest.ping_and_wait(op, room, uid, 2, timeout=30))
        check(time.monotonic() - t2 < 5, f"a !ping after the cut took {time.monotonic() - t2:.1f} s")
        mxtest.assert_exactly_once(op, room, uid, pings)
        bot.stop()


mxtest.run(test)
