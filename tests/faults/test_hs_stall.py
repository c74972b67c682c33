"""Fault 5 (issue 15), homeserver side: the homeserver accepts connections
and stops answering (tests/faults/faultproxy.py hangs every request, and the
hung ones never get an answer, even after it recovers), while the operator
sends !ping. After HANG_S seconds new requests are served again.

Proves: with bot.http_idle_timeout_ms at 2 s the bot abandons the hung
requests (its long-poll and its reply) and retries, so the !ping sent during
the hang is answered within seconds of the recovery, exactly once (the reply
kept its txnId), the log names the hang, and a following !ping is answered
promptly: no worker and no sync loop stayed stuck."""

import time

import mxtest
from mxtest import check, log
from faultproxy import bot_sends, proxied_dm

IDLE_MS = 2000
HANG_S = 5


def test():
    with proxied_dm(None, bot_opts={"http_idle_timeout_ms": IDLE_MS}) as (proxy, op, bot, room):
        uid = bot.user_id()
        pings = [mxtest.ping_and_wait(op, room, uid, 1)]

        proxy.stall_all()
        t_hang = time.monotonic()
        pings.append(op.send_text(room, "!ping"))  # straight to Synapse
        mxtest.wait_until(lambda: any(e["action"] == "stall" for e in proxy.entries(t_hang)), 30,
                          "a request of the bot to hang")
        # the fault lasts HANG_S: a fixed outage, not a wait for a result
        time.sleep(max(0.0, HANG_S - (time.monotonic() - t_hang)))
        proxy.release_stalls()
        t_up = time.monotonic()
        hung = [e for e in proxy.entries(t_hang) if e["action"] == "stall"]
        log(f"homeserver hung {t_up - t_hang:.1f} s; {len(hung)} request(s) hung: "
            f"{sorted({e['method'] + ' ' + e['path'].rsplit('/', 2)[-2] for e in hung})}")

        op.wait_messages(room, uid, mxtest.is_pong, count=2, timeout=60)
        late = time.monotonic() - t_up
        log(f"the !ping sent during the hang was answered {late:.1f} s after the recovery")
        check(late < IDLE_MS / 1000 * 3 + 2,
              f"answered {late:.1f} s after the homeserver recovered (http_idle_timeout_ms {IDLE_MS})")
        t2 = time.monotonic()
        pings.append(mxtest.ping_and_wait(op, room, uid, 3, timeout=30))
        check(time.monotonic() - t2 < 5, f"the next !ping took {time.monotonic() - t2:.1f} s")
        mxtest.assert_exactly_once(op, room, uid, pings)
        replies = {e["path"] for e in bot_sends(proxy.entries(t_hang))}
        check(len(replies) == 2, f"expected 2 reply txnIds after the hang, got {len(replies)}")
        text = bot.log_text()
        check("(http_idle_timeout_ms)" in text, "no log line names the hung homeserver")
        bot.stop()


mxtest.run(test)
