"""Fault 8 (issue 15): corrupt or hostile /sync responses, rewritten by our
proxy (tests/faults/faultproxy.py) between the daemon and Synapse:
  - a truncated body (the connection's data ends mid-JSON),
  - an event far over Matrix's 65536-byte event limit,
  - events with a wrong JSON type in every field (and whole sections of the
    response with wrong types: rooms, timeline, to_device, device lists),
  - an event ID seen in an earlier sync delivered again (the same event, and
    a forged one reusing the ID with another body).
Proves: each gets a clear log line, the event is skipped (none is answered),
the sync loop stays alive (a genuine !ping after each is answered exactly
once) and nothing is answered twice."""

import copy
import json
import os
import random
import threading
import time

import mxtest
from mxtest import check, log
from faultproxy import Action, proxied_dm

SEED = int(os.environ.get("MX_FAULT_SEED", "15"))
WRONG = [7, "text", True, None, [], {}, [1, "x"], {"k": "v"}, 1.5]


def wrong_for(value, rng):
    """A value of another JSON type than `value`."""
    return rng.choice([w for w in WRONG if type(w) is not type(value) or isinstance(value, bool)])


class Hostile:
    """Rewrites the next successful /sync answer with the queued mutation."""

    def __init__(self):
        self.queue = []
        self.lock = threading.Lock()
        self.seen_events = []  # genuine timeline events that went through
        self.applied = []

    def push(self, name, fn):
        with self.lock:
            self.queue.append((name, fn))

    def pending(self):
        with self.lock:
            return len(self.queue)

    def __call__(self, req):
        if not req.path.endswith("/sync"):
            return None
        return Action("rewrite", rewrite=self.rewrite, note="sync")

    def rewrite(self, status, data):
        if status != 200:
            return data
        with self.lock:
            try:
                resp = json.loads(data)
            except ValueError:
                return data
            for room in resp.get("rooms", {}).get("join", {}).values():
                self.seen_events += room.get("timeline", {}).get("events", [])
            if not self.queue:
                return data
            name, fn = self.queue.pop(0)
            self.applied.append(name)
            log(f"proxy: {name}")
            return fn(resp, data)


def ping_event(sender, body="!ping", n=0):
    return {"type": "m.room.message", "sender": sender, "event_id": f"$hostile{n}-{random.random()}",
            "origin_server_ts": 0, "content": {"msgtype": "m.text", "body": body}, "unsigned": {}}


def add_events(resp, room, events):
    rooms = resp.setdefault("rooms", {}).setdefault("join", {})
    tl = rooms.setdefault(room, {}).setdefault("timeline", {"events": []})
    tl.setdefault("events", []).extend(events)
    return json.dumps(resp).encode()


def wrong_type_events(sender, now_ms, rng):
    """One !ping per field, each with that field (or a content field) of the wrong type."""
    out = []
    base = ping_event(sender)
    base["origin_server_ts"] = now_ms
    for n, field in enumerate(["type", "sender", "event_id", "origin_server_ts", "content",
                               "content.msgtype", "content.body"]):
        ev = copy.deepcopy(base)
        ev["event_id"] = f"$wrongtype{n}-{rng.randrange(1 << 30)}"
        if field.startswith("content."):
            key = field.split(".", 1)[1]
            ev["content"][key] = wrong_for(ev["content"].get(key, {}), rng)
        else:
            ev[field] = wrong_for(ev[field], rng)
        out.append(ev)
    out += [7, "event", None, [], [ping_event(sender)]]  # not even objects
    return out


def wrong_sections(resp, room, sender, now_ms, rng):
    """Whole sections of the answer with wrong types; next_batch stays valid
    so the rest of the answer is processed."""
    resp["to_device"] = {"events": [7, {"type": 5, "sender": [], "content": "x"},
                                    {"type": "m.room.encrypted", "sender": sender,
                                     "content": {"algorithm": 5, "sender_key": {}, "ciphertext": "x"}},
                                    {"type": "m.room_key", "sender": sender, "content": []}]}
    resp["device_lists"] = {"changed": 5, "left": {"a": 1}}
    resp["device_one_time_keys_count"] = []
    resp["device_unused_fallback_key_types"] = "x"
    resp["account_data"] = {"events": {"type": []}}
    rooms = resp.setdefault("rooms", {})
    rooms["invite"] = {"!bogus:x": "x", "!bogus2:x": {"invite_state": {"events": 3}}}
    rooms["leave"] = []
    join = rooms.setdefault("join", {})
    r = join.setdefault(room, {})
    r["state"] = {"events": {"type": "m.room.encryption"}}
    r["ephemeral"] = "x"
    r["account_data"] = 3
    r["timeline"] = {"events": wrong_type_events(sender, now_ms, rng), "limited": "yes", "prev_batch": 5}
    return json.dumps(resp).encode()


def test():
    rng = random.Random(SEED)
    hostile = Hostile()
    with proxied_dm(hostile) as (proxy, op, bot, room):
        uid = bot.user_id()
        pings = [mxtest.ping_and_wait(op, room, uid, 1)]

        def inject(name, fn, expect_log):
            hostile.push(name, fn)
            mxtest.wait_until(lambda: hostile.pending() == 0, 30, f"the proxy to apply '{name}'")
            pings.append(op.send_text(room, "!ping"))
            op.wait_messages(room, uid, mxtest.is_pong, count=len(pings), timeout=60)
            mxtest.wait_until(lambda: expect_log in bot.log_text(), 10,
                              f"a log line with '{expect_log}' after '{name}'")
            bot.assert_running()

        inject("truncated body", lambda resp, data: data[:len(data) // 2],
               "sync: response is not json")
        now = int(time.time() * 1000)
        huge = ping_event(op.user_id, "!ping " + "x" * (2 * 1024 * 1024), 1)
        huge["origin_server_ts"] = now
        inject("a 2 MiB event", lambda resp, data: add_events(resp, room, [huge]),
               "over the 65536-byte limit")
        inject("wrong types in every field",
               lambda resp, data: wrong_sections(resp, room, op.user_id, int(time.time() * 1000), rng),
               "skipped a malformed event")
        # the first genuine !ping again, and a forged event reusing its ID
        first = next(e for e in hostile.seen_events if e.get("event_id") == pings[0])
        forged = copy.deepcopy(first)
        forged["content"] = {"msgtype": "m.text", "body": "!status"}
        forged["origin_server_ts"] = int(time.time() * 1000)
        inject("an event ID from an earlier sync, twice (same and forged)",
               lambda resp, data: add_events(resp, room, [copy.deepcopy(first), forged]),
               "delivered again")
        check(len(hostile.applied) == 4, f"mutations applied: {hostile.applied}")
        mxtest.assert_exactly_once(op, room, uid, pings)
        others = [e["content"].get("body", "")[:80] for e in op.messages_from(room, uid)
                  if not mxtest.is_pong(e["content"])]
        check(not others, f"the bot answered something hostile: {others}")
        bot.stop()


mxtest.run(test)
