"""Issue 11 findings 1, 2 and 8 through the real daemon, as the operator's
client sees the room (issue 13.3 on the way):

1. A shell.eval script hides a payload between two heredocs opened by a PEM
   BEGIN line and closed by the END line: the approval notice posted to
   Matrix must show the payload (it showed [REDACTED:private_key:..] and
   "echo restarting app"). The notice leads with one sentence, carries the
   args hash, and the bot has put ✅ and ❌ on it; "Deny ID." as a phone
   types it denies.
2. A write whose content holds a secret and runs past the notice's size:
   the notice says how much is not shown, `!pending` lists it without the
   secret (it posted the raw arguments), `!pending ID` shows every line but
   still not the secret.
8. Neither the progress notice (it quoted raw argument prefixes) nor the
   answer (a file holding the device's Matrix password, a secret of the
   config with no recognisable shape) carries a secret."""

import json
import os
import re
import sys

import mxtest
from mxtest import check, q

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bot", "integration"))
from llmfix import ScriptedLLM, llm_block, write_manifest  # noqa: E402

PG = "pgS3cretValue"


def bodies(op, room, uid):
    """Every text the bot put in the room, edits included."""
    return [json.dumps(e.get("content", {}), ensure_ascii=False) for e in op.messages_from(room, uid)]


def notice(op, room, uid, seen):
    def probe():
        for e in op.messages_from(room, uid):
            # (the second form is the notice before issue 13.3, so this test
            # shows what it finds on old code too)
            m = re.search(r"\nAction ([a-z0-9]+), tool |^approval needed \[([a-z0-9]+)\]", e["content"].get("body", ""))
            aid = m and (m.group(1) or m.group(2))
            if aid and aid not in seen:
                return aid, e
        return None
    return mxtest.wait_until(probe, 60, "an approval notice")


def reactions(op, room, event_id, sender):
    resp = op.request("GET", f"/rooms/{q(room)}/messages", query={"dir": "b", "limit": 100})
    return sorted(e["content"]["m.relates_to"]["key"] for e in resp.get("chunk", [])
                  if e.get("type") == "m.reaction" and e.get("sender") == sender
                  and e["content"].get("m.relates_to", {}).get("event_id") == event_id)


PROBLEMS = []


def soft(cond, msg):
    """Records a failed expectation and goes on, so one run reports every
    finding still open; the test fails at the end if any was recorded."""
    if not cond:
        PROBLEMS.append(msg)
    return cond


def wait_soft(fn, what):
    try:
        return fn()
    except mxtest.TestFailure as e:
        PROBLEMS.append(f"{what}: {e}")
        return None


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    hs = mxtest.Homeserver.from_env()
    work = mxtest.workdir("secnotice-")
    target = os.path.join(work, "files")
    os.makedirs(target)
    pwned = os.path.join(target, "PWNED")
    attack = (f"cat <<A >/dev/null\n-----BEGIN PRIVATE KEY-----\nA\ntouch {pwned}\ncat <<B >/dev/null\n"
              "-----END PRIVATE KEY-----\nB\necho restarting app")
    big = f"PGPASSWORD={PG} psql -h db\n" + "".join(f"line {i:04d} of the config\n" for i in range(400)) + "LAST-LINE"
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"sec": [{"calls": [{"name": "shell.eval", "args": {"command": attack}}]},
                           {"calls": [{"name": "fs.write", "args": {"path": os.path.join(target, "big.txt"),
                                                                    "content": big}}]},
                           {"calls": [{"name": "fs.read", "args": {"path": os.path.join(target, "leak.txt")}}]},
                           {"echo": True}]}, f)
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         extra={"llm": llm_block([llm.provider("p", "sec", "s1")], ["p"])})
        bot.config["devices"][0]["manifest"] = write_manifest(
            bot.dir, {"version": 1, "platform": "linux", "paths": {"read": [target], "write": [target]},
                      "tools": {"fs.write": {"approval": "ask"}, "fs.read": {}, "shell.eval": {"approval": "ask"}}})
        bot.write_config()
        password = bot.passwords["pc1"]
        with open(os.path.join(target, "leak.txt"), "w") as f:
            f.write(f"db host: db1\nmatrix login: {password}\n")
        with bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            op.send_text(room, "restart the app")

            # 1. the hidden payload is in the notice
            aid, ev = notice(op, room, uid, set())
            body = ev["content"]["body"]
            soft(f"touch {pwned}" in body, f"the approval notice hides what would run: {body}")
            soft("[REDACTED:private_key" not in body, f"the notice masks shell structure: {body}")
            soft(body.startswith("Run this shell script (8 lines) on pc1?\n"), f"no one-sentence lead: {body}")
            soft(re.search(r"args hash [0-9a-f]{12}", body), f"the notice does not show the args hash: {body}")
            wait_soft(lambda: mxtest.wait_until(lambda: reactions(op, room, ev["event_id"], uid) == ["✅", "❌"], 30,
                                                "the bot's ✅ and ❌ on the notice"), "issue 13.3")
            op.send_text(room, f"deny {aid}")
            op.wait_messages(room, uid, lambda c: c.get("body", "").startswith(f"Denied {aid}"), timeout=30)
            check(not os.path.exists(pwned), "a denied script ran")

            # 2. the long write: announced, listed and shown without its secret
            wid, ev = notice(op, room, uid, {aid})
            body = ev["content"]["body"]
            soft("NOT SHOWN: " in body and f"!pending {wid}" in body and "LAST-LINE" not in body,
                 f"the long write is not announced as cut: {body[-300:]}")
            op.send_text(room, "!pending")
            lst = op.wait_messages(room, uid, lambda c: "pending approval" in c.get("body", ""), timeout=30)
            check(wid in lst[-1]["content"]["body"], "!pending does not list the write")
            op.send_text(room, f"!pending {wid}")
            full = wait_soft(lambda: op.wait_messages(room, uid, lambda c: "LAST-LINE" in c.get("body", ""),
                                                      timeout=30), "!pending ID")
            soft(full and "line 0399 of the config" in full[-1]["content"]["body"], "!pending ID does not show every line")
            op.send_text(room, f"approve {wid}")

            # 8. the answer quotes the file holding the device's password
            op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""), timeout=90)
            every = bodies(op, room, uid)
            check(any("running fs.write" in b for b in every), "no progress notice to check")
            for secret, what in ((PG, "PGPASSWORD"), (password, "the device's Matrix password"),
                                 ("sk-test-not-a-real-key-0123456789", "the LLM API key")):
                leaked = [b[:200] for b in every if secret in b]
                soft(not leaked, f"{what} reached the room: {leaked}")
            check(not PROBLEMS, "\n- " + "\n- ".join(PROBLEMS))
            bot.stop()


mxtest.run(test)
