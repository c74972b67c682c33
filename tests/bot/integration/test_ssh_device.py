"""Issue 6 end to end over SSH: operator DM -> scripted LLM -> tool calls
that run on a real sshd host (libssh, pinned host key, key-only login) ->
the answer in the DM. Both calls share one SSH connection (counted in the
server's log); a command the manifest does not allow never reaches the
host; the bot-side audit chain verifies. Uses tests/devices/sshd-fixture."""

import json
import os
import subprocess

import mxtest
from mxtest import check
from devfix import Sshd
from llmfix import ScriptedLLM, llm_block, write_manifest


def test():
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    work = mxtest.workdir("sshdev-")
    with Sshd(work) as sshd:
        share = os.path.join(work, "share")
        os.makedirs(share)
        with open(os.path.join(share, "motd.txt"), "w") as f:
            f.write("the answer is 42\n")
        os.chmod(share, 0o755)
        scen = os.path.join(work, "scen.json")
        with open(scen, "w") as f:
            json.dump({
                "ssh_two": [{"calls": [{"name": "fs.read", "args": {"path": os.path.join(share, "motd.txt")}},
                                       {"name": "shell.exec", "args": {"argv": ["/bin/echo", "hello", "from ssh"]}}]},
                            {"echo": True}],
                "ssh_denied": [{"calls": [{"name": "shell.exec", "args": {"argv": ["/usr/bin/touch",
                                                                                os.path.join(share, "pwned")]}}]},
                               {"echo": True}]}, f)
        hs = mxtest.Homeserver.from_env()
        with hs, ScriptedLLM(extra_scenarios=scen) as llm:
            op = hs.new_user("alice")
            bot = mxtest.Bot(hs, [op.user_id], [("web", mxtest.unique("agent-web"))])
            dev = bot.config["devices"][0]
            dev["backend"] = sshd.backend()
            dev["manifest"] = write_manifest(bot.dir, {
                "version": 1, "platform": "linux", "paths": {"read": [share], "write": []},
                "commands": {"allow": [{"argv0": "/bin/echo", "args": [], "rest": "*"}]},
                "tools": {"shell.exec": {}, "fs.read": {}}})

            def use(s):
                bot.config["llm"] = llm_block([llm.provider("p", s, "s1")], ["p"])
                bot.write_config()

            use("ssh_two")
            with bot:
                bot.start()
                uid = bot.user_id()
                room = mxtest.open_dm(op, bot)
                accepted_before = sshd.logins()
                op.send_text(room, "what does the web host say?")
                ans = op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""), count=1,
                                       timeout=90)[0]["content"]["body"]
                check("the answer is 42" in ans, f"the file read over SFTP is not in the answer: {ans[:300]}")
                check("hello from ssh" in ans, f"the command's output is not in the answer: {ans[:300]}")
                accepted = sshd.logins()
                check(accepted - accepted_before == 1, f"two calls used {accepted - accepted_before} SSH logins")

                bot.stop()
                use("ssh_denied")
                bot.start()
                op.send_text(room, "now touch a file")
                ans = op.wait_messages(room, uid, lambda c: "Tool results" in c.get("body", ""), count=2,
                                       timeout=90)[-1]["content"]["body"]
                check(not os.path.exists(os.path.join(share, "pwned")), "a command the manifest denies ran on the host")
                check("denied" in ans.lower() or "no command rule" in ans.lower(),
                      f"the model was not told the command was denied: {ans[:300]}")
                bot.stop()
                verify = subprocess.run([bot.bin, "audit", "verify", "--config", bot.config_path],
                                        capture_output=True, text=True, cwd=bot.dir)
                check(verify.returncode == 0, f"audit verify failed: {verify.stdout}{verify.stderr}")


mxtest.run(test)
