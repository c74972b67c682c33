"""Issue 15 fault 2: kill -9 at random (seeded) points while an operator on
Element's crypto (matrix-js-sdk + Rust crypto, tests/e2e/peer) keeps
sending encrypted commands - !ping and LLM turns whose tool calls run on
the device (shell.exec of mktemp, so every execution leaves one file).

After every restart, every command sent so far is answered exactly once
(a reply naming it: the answer, or the "I was restarted ... not re-run"
notice), nothing either side sends is undecryptable, the audit verifies,
every intent has an outcome (a result, or "interrupted" for a call the
crash cut off), no call ID is run twice, and the files on the device match
the calls recorded as run. MX_FAULT_KILLS rounds (ctest: a few; bench/faults
runs 100+); MX_FAULT_SEED fixes the kill points. Prints lost/doubled."""

import json
import os
import sqlite3
import time

import sys

import faultlib
import mxtest
from mxtest import check
from llmfix import REPO, ScriptedLLM, llm_block, write_manifest

sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from peerlib import Peer  # noqa: E402  (Element's crypto, tests/e2e)

KILLS = int(os.environ.get("MX_FAULT_KILLS", "4"))
PROGRESS = ("running ", "waiting for ")  # the turn's progress notice (edited in place), not an answer


def answers(history, cmd_ids):
    """{command event: [answers]}: the bot's messages replying to it, progress
    notices and their edits left out."""
    out = {c: [] for c in cmd_ids}
    for m in history:
        if m.get("rel_type") == "m.replace" or (m.get("body") or "").startswith(PROGRESS):
            continue
        if m.get("reply_to") in out:
            out[m["reply_to"]].append(m)
    return out


def audit_records(bot, device):
    path = os.path.join(bot.dir, "data", "audit", f"{device}.db")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return [json.loads(r[0]) | {"seq": r[1]} for r in
                con.execute("SELECT record, seq FROM audit_chain ORDER BY seq")]
    finally:
        con.close()


def check_audit(bot, device, ran_dir):
    """Every intent has one outcome, no call ID ran twice, and the files the
    calls left match: at least every 'done', at most done + interrupted."""
    recs = audit_records(bot, device)
    pending = {r["seq"]: r for r in recs if r["kind"] == "intent" and r["status"] == "pending"}
    results = [r for r in recs if r["kind"] == "result"]
    closed = {}
    for r in results:
        closed.setdefault(r["intent_seq"], []).append(r["status"])
    open_ = sorted(set(pending) - set(closed))
    check(not open_, f"intents without an outcome: {open_}")
    twice = {s: st for s, st in closed.items() if len(st) > 1}
    check(not twice, f"intents with more than one outcome: {twice}")
    calls = [r["call_id"] for r in pending.values()]
    doubled = sorted({c for c in calls if calls.count(c) > 1})
    check(not doubled, f"tool calls run twice: {doubled}")
    mktemps = [s for s, r in pending.items() if "mktemp" in json.dumps(r.get("args"))]
    done = sum(1 for s in mktemps if closed[s] == ["done"])
    cut = sum(1 for s in mktemps if closed[s] == ["interrupted"])
    files = len(os.listdir(ran_dir))
    check(done <= files <= done + cut,
          f"{files} mktemp runs on the device, audit says {done} done + {cut} interrupted")
    return {"intents": len(pending), "interrupted": sum(1 for s in closed.values() if s == ["interrupted"]),
            "runs": files}


def test():
    rng = faultlib.seed()
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    work = mxtest.workdir("kill9-")
    ran = os.path.join(work, "ran")
    os.makedirs(ran)
    turn = [{"calls": [{"name": "shell.exec", "args": {"argv": ["/usr/bin/mktemp", os.path.join(ran, "run.XXXXXX")]}},
                       {"name": "shell.exec", "args": {"argv": ["/usr/bin/sleep", "0.4"]}}], "delay_s": 0.3},
            {"echo": True, "delay_s": 0.3}]
    scen = os.path.join(work, "scen.json")
    with open(scen, "w") as f:
        json.dump({"k9": turn * 400}, f)
    hs = mxtest.Homeserver.from_env()
    lost = doubled = 0
    with hs, ScriptedLLM(extra_scenarios=scen) as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         bot_opts={"require_verified_sender": True},
                         extra={"llm": llm_block([llm.provider("p", "k9", "r1")], ["p"])})
        bot.config["devices"][0]["manifest"] = write_manifest(bot.dir, {
            "version": 1, "platform": "linux", "paths": {"read": [], "write": []},
            "commands": {"allow": [{"argv0": "/usr/bin/mktemp", "args": [os.path.join(ran, "run.XXXXXX")]},
                                   {"argv0": "/usr/bin/sleep", "args": [], "rest": "*"}]},
            "tools": {"shell.exec": {}}})
        bot.write_config()
        with bot, Peer(hs.url, os.path.join(work, "peer.log")) as peer:
            bot.start()
            uid = bot.user_id()
            peer("a", "login", op.user_id.split(":")[0][1:], op.password)
            peer("a", "xsign", op.password)
            room = peer("a", "create_dm", uid)["room_id"]
            peer("a", "wait_join", room, uid, 60)
            cmds = []
            for k in range(KILLS):
                for _ in range(rng.randint(1, 3)):
                    text = "!ping" if rng.random() < 0.3 else f"make a file ({len(cmds)})"
                    cmds.append(peer("a", "send", room, text)["event_id"])
                at = rng.uniform(0.0, 3.0)
                deadline = time.monotonic() + at
                while time.monotonic() < deadline:  # the kill point: seeded, measured from the send
                    bot.assert_running()
                    time.sleep(0.05)
                bot.kill()
                mxtest.log(f"round {k}: kill -9 {at:.2f} s after the last command")
                bot.start()
                seen = wait_answered(peer, room, uid, cmds)
                bad = {c: [(m.get("body") or "")[:60] for m in a] for c, a in seen.items() if len(a) != 1}
                lost += sum(1 for a in bad.values() if not a)
                doubled += sum(len(a) - 1 for a in bad.values() if a)
                check(not bad, f"round {k}: commands not answered exactly once: {bad}")
                stats = check_audit(bot, "pc1", ran)
                mxtest.log(f"round {k}: {len(cmds)} commands answered once; audit {stats}")
            check(stats["runs"] > 0, f"no tool call ever ran: {stats}")
            bot.stop()
            utd = [line for line in bot.log_text().splitlines() if "cannot decrypt" in line]
            check(not utd, f"the bot could not decrypt: {utd[:3]}")
            faultlib.check_store(bot)
    print(f"kill9: rounds={KILLS} commands={len(cmds)} lost={lost} doubled={doubled} "
          f"intents={stats['intents']} interrupted={stats['interrupted']} runs={stats['runs']}", flush=True)


def wait_answered(peer, room, uid, cmds, timeout=90):
    """Polls the operator's decrypted view until every command has an answer
    and nothing is undecryptable (a late key may arrive); returns the
    answers per command once that holds, or fails naming what is missing."""
    state = {}

    def probe():
        hist = peer("a", "history", room, uid)["messages"]
        state["hist"] = hist
        state["utd"] = [m["event_id"] for m in hist if m["utd"]]
        state["seen"] = answers(hist, cmds)
        return not state["utd"] and all(state["seen"].values())
    try:
        mxtest.wait_until(probe, timeout, "every command answered, nothing undecryptable", interval=0.5)
    except mxtest.TestFailure:
        missing = [c for c, a in state.get("seen", {}).items() if not a]
        last = [(m.get("body") or "")[:50] + f" -> {m.get('reply_to')}" for m in state.get("hist", [])[-6:]]
        raise mxtest.TestFailure(f"unanswered: {missing}; undecryptable: {state.get('utd')}; "
                                 f"the bot's last messages: {last}") from None
    # a duplicate would follow right behind the first answer; later rounds
    # look again at every command
    time.sleep(1.0)
    return answers(peer("a", "history", room, uid)["messages"], cmds)


mxtest.run(test)
