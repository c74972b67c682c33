"""A fleet sharded across processes (docs/scaling.md): two shards, each with
its own config (/etc/mxfleet/NAME.json), data_dir (/var/lib/mxfleet/NAME),
HTTP endpoint and alerts room, started the way the unit template
mxfleet@.service starts instance NAME (its ExecStartPre, then ExecStart,
from the template as an install writes it; /etc and /var/lib are
directories of the test). Both run at once against one Synapse; each answers
!ping exactly once for its own devices only, and /metrics of each lists only
its own identities. A second process for a shard that is already running is
refused (data_dir lock) instead of running the same Matrix devices twice."""

import os
import re
import subprocess
import time

import mxtest
from mxtest import check, log

SHARDS = {"a": ["pc1", "pc2"], "b": ["pc3"]}


def template_execs(work):
    """[ExecStartPre argv..., ExecStart argv] of mxfleet@.service."""
    src = os.environ.get("MX_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
    units = os.path.join(work, "units")
    os.makedirs(units)
    subprocess.run(["cmake", "-DSRC=" + os.path.join(src, "packaging", "systemd", "mxfleet.service"),
                    "-DBIN=" + mxtest.mxfleet_bin(), "-DDEST=" + units,
                    "-P", os.path.join(src, "packaging", "systemd", "units.cmake")],
                   check=True, capture_output=True)
    lines = open(os.path.join(units, "mxfleet@.service")).read().splitlines()
    execs = [ln.split("=", 1)[1].split() for ln in lines if ln.startswith("ExecStartPre=")]
    execs += [ln.split("=", 1)[1].split() for ln in lines if ln.startswith("ExecStart=")]
    check(len(execs) == 2 and all("/etc/mxfleet/%i.json" in e for e in execs),
          f"mxfleet@.service: expected ExecStartPre and ExecStart on /etc/mxfleet/%i.json, got {execs}")
    return execs


def instance(argv, name, root):
    """argv of the template with %i = name and /etc under root."""
    return [a.replace("%i", name).replace("/etc/mxfleet/", os.path.join(root, "etc", "mxfleet") + "/")
            for a in argv]


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        work = mxtest.workdir("shards-")
        execs = template_execs(work)
        op = hs.new_user("alice")
        etc = os.path.join(work, "etc", "mxfleet")
        shards = {}
        for name, devices in SHARDS.items():
            bot = mxtest.Bot(hs, [op.user_id], [(d, mxtest.unique(f"agent-{d}")) for d in devices],
                             directory=etc, alerts_room=f"#alerts-{name}-{os.getpid()}:{hs.name}")
            # the split: own data_dir (the unit's StateDirectory), own port
            bot.config["data_dir"] = os.path.join(work, "var", "lib", "mxfleet", name)
            bot.http_port = mxtest.free_port()
            bot.config["bot"]["http_listen"] = f"127.0.0.1:{bot.http_port}"
            bot.config_path = os.path.join(etc, f"{name}.json")
            bot.write_config()
            shards[name] = bot
        procs = {}
        try:
            for name, bot in shards.items():
                pre = subprocess.run(instance(execs[0], name, work), capture_output=True, text=True)
                check(pre.returncode == 0, f"shard {name}: ExecStartPre failed:\n{pre.stdout}{pre.stderr}")
                bot._log = open(bot.log_path, "ab")  # mxtest.Bot.stop() closes it
                procs[name] = subprocess.Popen(instance(execs[1], name, work), stdout=bot._log,
                                               stderr=bot._log, cwd="/", preexec_fn=mxtest._die_with_parent)
                bot.proc, bot.started_at = procs[name], time.monotonic()
            for bot in shards.values():
                bot.wait_healthy(90)
            # one more process for shard a: refused, shard a keeps running
            dup = subprocess.run(instance(execs[1], "a", work), capture_output=True, text=True, timeout=30)
            check(dup.returncode != 0 and "in use by another mxfleet process" in dup.stderr + dup.stdout,
                  f"a second shard a process was not refused (exit {dup.returncode}):\n{dup.stderr[-1500:]}")
            shards["a"].assert_running()

            for name, bot in shards.items():
                for dev in SHARDS[name]:
                    room = mxtest.open_dm(op, bot, dev)
                    ping = op.send_text(room, "!ping")
                    op.wait_messages(room, bot.user_id(dev), mxtest.is_pong, timeout=60)
                    mxtest.assert_exactly_once(op, room, bot.user_id(dev), [ping])
                    senders = {e["sender"] for e in op.messages(room)} - {op.user_id}
                    check(senders == {bot.user_id(dev)}, f"{dev}'s DM has messages from {senders}")
                status, text, _ = bot.metrics()
                check(status == 200, f"shard {name}: /metrics answered {status}")
                seen = set(re.findall(r'identity="([^"]+)"', text))
                check(seen == set(SHARDS[name]), f"shard {name}: /metrics names identities {sorted(seen)}, "
                                                 f"expected {SHARDS[name]}")
            for name, bot in shards.items():
                log(f"stopping shard {name}")
                bot.stop(limit=10)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait()


mxtest.run(test)
