"""Issue 13 (5, 6, 7) through the real daemon: while a turn lasts longer
than one typing notice (30 s), the operator keeps seeing "typing" until the
answer comes (renewed, never expired mid-turn), and a !ping sent meanwhile
is answered at once (the next long-poll does not wait for the turn's first
message: issue 14.1's hold on it is bounded); !stop mid-turn ends the
turn and no further model or tool call is made; an internal error reply
carries an error id that is found in the bot's log."""

import json
import os
import re
import time

import mxtest
from mxtest import check
from llmfix import ScriptedLLM, llm_block, write_manifest


def typing_events(op, room, since, until_pred, timeout):
    """Long-polls op's /sync, collecting (time, user_ids) of m.typing in
    room, until until_pred(seen so far) or the deadline."""
    seen, deadline = [], time.monotonic() + timeout
    flt = json.dumps({"room": {"timeline": {"limit": 0}, "state": {"types": []},
                               "ephemeral": {"types": ["m.typing"]}}, "presence": {"types": []},
                      "account_data": {"types": []}})
    while time.monotonic() < deadline and not until_pred(seen):
        resp = op.request("GET", "/sync", query={"since": since, "timeout": "2000", "filter": flt})
        since = resp["next_batch"]
        for ev in resp.get("rooms", {}).get("join", {}).get(room, {}).get("ephemeral", {}).get("events", []):
            if ev.get("type") == "m.typing":
                seen.append((time.monotonic(), ev["content"].get("user_ids", [])))
    return seen, since


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    work = mxtest.workdir("feedback-")
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"slow_answer": [{"delay_s": 38, "text": "slow but sure"}],
                   "endless": [{"delay_s": 1, "calls": [{"name": "fs.list", "args": {"path": work}}]}]}, f)
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         extra={"llm": llm_block([dict(llm.provider("p", "slow_answer", "f1"), timeout_ms=90000)],
                                                 ["p"])})
        prompt = os.path.join(bot.dir, "pc1-prompt.md")
        with open(prompt, "w") as f:
            f.write("You manage {{device}}.\n")
        bot.config["devices"][0]["prompt"] = prompt
        bot.write_config()
        with bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            since = op.request("GET", "/sync", query={"timeout": "0"})["next_batch"]

            # 6: a 38 s turn: typing stays on, no expiry in between
            op.send_text(room, "take your time")
            answered = []

            def got_answer(_seen=None):
                if not answered:
                    answered.extend(op.messages_from(room, uid))
                    answered[:] = [e for e in answered if "slow but sure" in e["content"].get("body", "")]
                return bool(answered)

            # a command sent while the turn waits for the model is answered at once: the
            # next long-poll does not wait for the turn's first message (bot/mx_sync.c hold_repoll)
            seen, since = typing_events(op, room, since, lambda s: any(uid in users for _, users in s), 30)
            check(seen, "the bot never showed typing for the slow turn")
            op.send_text(room, "!ping")
            op.wait_messages(room, uid, lambda c: c.get("body", "").startswith("pong"), count=1, timeout=20)
            check(not got_answer(), "the !ping was answered only after the slow turn's answer")
            more, since = typing_events(op, room, since, got_answer, 90)
            seen += more
            check(answered, "the slow answer never came")
            on = [t for t, users in seen if uid in users]
            check(on, f"the bot never showed typing: {seen}")
            first_on = on[0]
            gaps = [(t - first_on, users) for t, users in seen if t > first_on and uid not in users]
            # the only "not typing" may be the final one, once the answer is out
            check(len(gaps) <= 1 and all(g[0] > 36 for g in gaps),
                  f"typing expired during the turn (seconds after start, users): {gaps}")

            # 7: an internal error names an id that is in the log
            os.unlink(prompt)
            os.mkdir(prompt)  # the device prompt can no longer be read: the turn fails inside the bot
            op.send_text(room, "and now?")
            err = op.wait_messages(room, uid, lambda c: "internal error" in c.get("body", ""), count=1,
                                   timeout=60)[0]["content"]["body"]
            m = re.search(r"error id ([A-Za-z0-9]{8})", err)
            check(m, f"the error reply has no error id: {err}")
            check(f"error id {m.group(1)}" in bot.log_text(), f"error id {m.group(1)} is not in the bot's log")
            bot.stop()

            # 5: a model that would call tools forever; !stop ends the turn
            os.rmdir(prompt)
            with open(prompt, "w") as f:
                f.write("You manage {{device}}.\n")
            bot.config["llm"] = llm_block([llm.provider("q", "endless", "f2")], ["q"])
            bot.config["devices"][0]["manifest"] = write_manifest(
                bot.dir, {"version": 1, "platform": "linux", "paths": {"read": [work]}, "tools": {"fs.list": {}}})
            bot.write_config()
            bot.start()
            op.send_text(room, "list it forever")
            op.wait_messages(room, uid, lambda c: c.get("body", "").startswith("running fs.list"), count=1, timeout=60)
            op.send_text(room, "!stop")
            op.wait_messages(room, uid, lambda c: "Stopped by !stop" in c.get("body", "")
                             or "Stopped by !stop" in c.get("m.new_content", {}).get("body", ""), count=1, timeout=60)
            asked = len(llm.requests("f2"))
            op.send_text(room, "!ping")  # the turn is over: later work is answered at once
            op.wait_messages(room, uid, lambda c: c.get("body", "").startswith("pong"), count=1, timeout=30)
            check(len(llm.requests("f2")) == asked, "the model was called again after the turn was stopped")
            check(asked <= 3, f"the turn went on after !stop: {asked} model calls")
            bot.stop()


mxtest.run(test)
