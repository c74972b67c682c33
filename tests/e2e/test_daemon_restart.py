"""Issue 14.3 against the real daemon: a restart with stored tokens does not
redo what the first start did. Three identities (E2EE on, as by default)
reach Synapse only through a recording proxy (tests/faults/faultproxy.py);
Element's crypto (matrix-js-sdk + Rust) is the operator of pc1. After a
first start, an encrypted DM and a !ping, the daemon is stopped (SIGTERM)
and started again; then
- no /login, no whoami, no filter creation, no displayname PUT, no device
  keys upload, no cross-signing or own-device signature upload;
- every /sync continues from the stored token (no initial sync) and the
  first one of each identity asks for no long-poll (timeout=0);
- the next !ping is answered without GET /members (tracked members kept);
- one-time keys are still topped up when the server's count says so (pc2's
  keys are claimed while the bot is down), without the device keys.
A revoked token leading to a fresh login is tests/bot bot_token_revoked."""

import json
import os
import sys
import time

import mxtest
from mxtest import check, log
from peerlib import Peer, bot_device, operator, ping_in_new_dm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
from faultproxy import FaultProxy  # noqa: E402

# requests a restart must not make again (method, path fragment)
REDONE = [("POST", "/login"), ("GET", "/account/whoami"), ("POST", "/filter"), ("PUT", "/displayname"),
          ("POST", "/keys/device_signing/upload"), ("POST", "/keys/signatures/upload"), ("GET", "/members")]


def pong(r):
    return r.get("body", "").startswith("pong")


def uploads(proxy, since):
    out = []
    for e in proxy.entries(since):
        if e["method"] == "POST" and e["path"].endswith("/keys/upload"):
            out.append(json.loads(e["body"] or b"{}"))
    return out


def claim_one_time_keys(op, user_id, device_id, n):
    """Takes n of the device's one-time keys, as n peers starting Olm sessions would."""
    for _ in range(n):
        op.request("POST", "/keys/claim", {"one_time_keys": {user_id: {device_id: "signed_curve25519"}}})


def test():
    hs = mxtest.Homeserver.from_env()
    with hs, FaultProxy(hs.url) as proxy:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [(f"pc{i}", mxtest.unique(f"agent-pc{i}")) for i in (1, 2, 3)])
        bot.config["homeserver"] = proxy.url
        bot.write_config()
        work = mxtest.workdir("e2e-restart-")
        with bot, Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            bot.start()
            uid = bot.user_id("pc1")
            operator(peer, op)
            room = ping_in_new_dm(peer, uid)
            first = proxy.entries()
            check(any(e["path"].endswith("/keys/signatures/upload") for e in first),
                  "the first start did not sign its own device (the proxy sees nothing?)")
            bot.stop()

            # while the bot is down, pc2's one-time keys run low (below half the target)
            uid2 = bot.user_id("pc2")
            claim_one_time_keys(op, uid2, bot_device(bot, "pc2"), 30)

            # the proxy stamps a request when it arrives (time.monotonic, this
            # process) but logs it when it ends: the first run's last requests
            # (a reply still being sent when the test saw it) may be logged
            # after an aborted long-poll that started earlier, so the clock,
            # not the last entry, separates the two runs
            t0 = time.monotonic()
            bot.start(log_level="info")
            log(f"restart: healthy after {bot.healthy_after:.2f} s")
            t_healthy = time.monotonic()
            before_healthy = [e for e in proxy.entries(t0) if e["t"] <= t_healthy]
            log("requests until healthy: " + ", ".join(f"{e['method']} {e['path']}" for e in before_healthy))

            peer("a", "send", room, "!ping")
            check(pong(peer("a", "wait_reply", room, uid, 60)), "no pong after the restart")
            # pc2 tops its one-time keys up from the first sync's count
            mxtest.wait_until(lambda: any("one_time_keys" in u for u in uploads(proxy, t0)), 30,
                              "pc2 to top its one-time keys up after the restart")
            after = proxy.entries(t0)

            # every problem at once: the failure says all that was redone
            problems = []
            redone = [f"{e['method']} {e['path']}" for e in after
                      if any(e["method"] == m and frag in e["path"] for m, frag in REDONE)]
            if redone:
                problems.append(f"the restart redid what the first start did: {redone}")
            ups = uploads(proxy, t0)
            if any("device_keys" in u for u in ups):
                problems.append("the restart uploaded the device keys again")
            topped = [u for u in ups if "one_time_keys" in u]
            if not all(uid2 in json.dumps(u["one_time_keys"]) for u in topped):
                problems.append("one-time keys were uploaded for an identity whose count was not low")
            syncs = [e for e in after if e["path"].endswith("/sync")]
            initial = [e for e in syncs if "since" not in e["query"]]
            if initial:
                problems.append(f"{len(initial)} initial /sync (without since) after the restart")
            firsts = [e["query"].get("timeout") for e in syncs[:3]]
            if any(t != ["0"] for t in firsts):
                problems.append(f"the first /syncs after the restart long-poll: {firsts}")
            check(not problems, "; ".join(problems))
            bot.stop()


mxtest.run(test)
