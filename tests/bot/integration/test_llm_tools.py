"""Issue 4 through Matrix: the operator's message becomes an LLM turn; the
primary provider fails (HTTP 500 every time) and the fallback answers; the
scripted model asks for fs.list on the device (local backend), the result
goes back to the model and its final answer reaches the DM. The tool call is
in the device's audit chain, which verifies."""

import os
import subprocess

import mxtest
from mxtest import check
from llmfix import ScriptedLLM, llm_block, write_manifest


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    listing = sorted(os.listdir("/var/log"))
    check(listing, "/var/log is empty; the test needs something to list")
    hs = mxtest.Homeserver.from_env()
    with hs, ScriptedLLM() as llm:
        op = hs.new_user("alice")
        bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                         extra={"llm": llm_block([llm.provider("primary", "always500", "r1"),
                                                  llm.provider("fallback", "tool_single", "r1")],
                                                 ["primary", "fallback"])})
        manifest = write_manifest(bot.dir, {"version": 1, "platform": "linux",
                                            "paths": {"read": ["/var/log"], "write": []},
                                            "tools": {"fs.list": {}, "fs.read": {}}})
        bot.config["devices"][0]["manifest"] = manifest
        bot.write_config()
        with bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            question = op.send_text(room, "What is in /var/log?")
            answer = op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""),
                                      count=1, timeout=90)[0]
            body = answer["content"]["body"]
            check(any(name in body for name in listing),
                  f"the answer does not carry the real listing of /var/log: {body[:300]}")
            check(answer["content"].get("format") == "org.matrix.custom.html",
                  "the final answer has no HTML rendering")
            check(answer["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == question,
                  f"the answer is not a reply to the question: {answer['content'].get('m.relates_to')}")
            # one progress notice while the turn ran, removed once the answer is out (issue 13.4: a stale
            # "done" notice stayed behind)
            def progress_gone():
                msgs = op.messages_from(room, uid)
                shown = [e["content"].get("body", "") for e in msgs if e["content"].get("body", "")
                         .startswith(("running fs.list", "done", "* done", "* running"))]
                removed = [e for e in msgs if e.get("unsigned", {}).get("redacted_because")]
                return (shown, removed) if not shown and len(removed) == 1 else None
            mxtest.wait_until(progress_gone, 30, "the progress notice removed after the answer, nothing stale left")

            primary = llm.requests("r1")
            kinds = [(r["scenario"], r["step"]) for r in primary]
            check(any(s == "always500" for s, _ in kinds), f"the primary was never tried: {kinds}")
            fallback = [r for r in primary if r["scenario"] == "tool_single"]
            check(len(fallback) >= 2, f"fallback got {len(fallback)} requests, expected the tool round trip")
            second = fallback[-1]["body"]
            tool_msgs = [m for m in second.get("messages", []) if m.get("role") == "tool"]
            check(tool_msgs and any(name in tool_msgs[0].get("content", "") for name in listing),
                  f"the tool result sent back to the model is not the listing: {tool_msgs}")
            auth = fallback[0]["headers"].get("authorization", "")
            check(auth == "Bearer sk-test-not-a-real-key-0123456789", "the API key was not sent as a bearer token")
            check("sk-test-not-a-real-key" not in bot.log_text(), "the API key appears in the bot's log")
            bot.stop()

            verify = subprocess.run([bot.bin, "audit", "verify", "--config", bot.config_path],
                                    capture_output=True, text=True, cwd=bot.dir)
            check(verify.returncode == 0, f"audit verify failed ({verify.returncode}): {verify.stdout}{verify.stderr}")
            # `mxfleet llm test`: a live round trip per provider with a test tool
            bot.config["llm"] = llm_block([llm.provider("good", "cli_echo", "c1"),
                                           llm.provider("down", "always500", "c1")], ["good", "down"])
            bot.write_config()
            t = subprocess.run([bot.bin, "llm", "test", "--config", bot.config_path, "--provider", "good"],
                               capture_output=True, text=True, cwd=bot.dir)
            check(t.returncode == 0 and "tool calling works" in t.stdout,
                  f"llm test of a working provider: rc {t.returncode}: {t.stdout}{t.stderr}")
            t = subprocess.run([bot.bin, "llm", "test", "--config", bot.config_path],
                               capture_output=True, text=True, cwd=bot.dir)
            check(t.returncode == 1 and "down" in t.stdout + t.stderr,
                  f"llm test should fail naming the broken provider: rc {t.returncode}: {t.stdout}{t.stderr}")
            show = subprocess.run([bot.bin, "audit", "show", "--config", bot.config_path, "--device", "pc1",
                                   "--json"], capture_output=True, text=True, cwd=bot.dir)
            check(show.returncode == 0 and "fs.list" in show.stdout,
                  f"audit show has no fs.list record: {show.stdout[:500]}{show.stderr}")


mxtest.run(test)
