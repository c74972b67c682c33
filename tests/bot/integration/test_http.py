"""The local HTTP endpoint: /health is 200 once every identity syncs and 503
with a JSON reason while an identity cannot reach its homeserver or cannot
log in (naming it, while the other identities keep answering); /metrics
serves Prometheus text that names the identities and counts handled messages."""

import json
import re

import mxtest
from mxtest import check


def metric_sum(text, name_part):
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or name_part not in line.split(" ")[0]:
            continue
        try:
            total += float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            pass
    return total


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))]) as bot:
            bot.start()
            status, body = bot.health()
            check(status == 200, f"/health: {status} {body}")
            room = mxtest.open_dm(op, bot)
            mxtest.ping_and_wait(op, room, bot.user_id(), 1)

            status, text, headers = bot.metrics()
            check(status == 200, f"/metrics: HTTP {status}")
            check(headers.get("Content-Type", "").startswith("text/plain"),
                  f"/metrics content type {headers.get('Content-Type')}")
            check("# TYPE" in text, "/metrics has no # TYPE lines")
            check(re.search(r'^[a-z_:][a-z0-9_:]*\{[^}]*pc1', text, re.M),
                  f"/metrics has no per-identity series for pc1:\n{text[:2000]}")
            check(re.search(r'^[a-z_:][a-z0-9_:]*_bucket\{[^}]*pc1[^}]*le="\+Inf"\} [1-9]', text, re.M),
                  f"/metrics has no filled latency histogram for pc1:\n{text[:2000]}")
            check(metric_sum(text, "sync") > 0, f"/metrics counts no syncs:\n{text[:2000]}")
            check(metric_sum(text, "message") > 0, f"/metrics counts no messages:\n{text[:2000]}")
            status, _, _ = mxtest.http("GET", f"http://127.0.0.1:{bot.http_port}/no-such-path",
                                       raw=True)
            check(status == 404, f"unknown path: HTTP {status}")
            bot.stop()

        # An identity whose homeserver does not answer: 503 with a JSON reason,
        # and the daemon keeps running (it retries instead of exiting).
        dead = mxtest.Homeserver.at(f"http://127.0.0.1:{mxtest.free_port()}", hs.name)
        with mxtest.Bot(dead, [op.user_id], [("pc1", "agent-pc1")], register=False) as bot:
            bot.start(wait_healthy=False)
            seen = {}

            def unhealthy():
                bot.assert_running()
                seen["h"] = bot.health()
                return seen["h"][0] == 503
            mxtest.wait_until(unhealthy, 30, "/health to answer 503")
            body = seen["h"][1]
            check(isinstance(body, dict) and body, f"503 body is not a JSON object: {body!r}")
            bot.stop()

        # One identity with a wrong password: 503 naming it, the other serves.
        good, bad = mxtest.unique("agent-pc1"), mxtest.unique("agent-pc2")
        _, pw = hs.register(good)
        hs.register(bad)
        with mxtest.Bot(hs, [op.user_id], [("pc1", good), ("pc2", bad)],
                        passwords={good: pw, bad: "not-the-password"}) as bot:
            bot.start(wait_healthy=False)
            room = mxtest.open_dm(op, bot, "pc1")
            mxtest.ping_and_wait(op, room, bot.user_id("pc1"), 1)
            status, body = bot.health()
            check(status == 503, f"/health with a failing identity: {status} {body}")
            check("pc2" in json.dumps(body), f"503 reason does not name pc2: {body}")
            bot.stop()
            check("not-the-password" not in bot.log_text(), "the bot logged a rejected password")


mxtest.run(test)
