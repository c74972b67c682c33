#!/usr/bin/python3
"""bench/e2e/bench_e2ee.py - encrypted !ping round trip against a real Synapse.

Element's crypto (matrix-js-sdk + Rust crypto, tests/e2e/peer) sends N
encrypted "!ping" messages one after another in an encrypted DM and waits for
each decrypted reply. The bot side is either
  --echo BIN    the echo bot on mx_api + mx_e2ee only (tests/e2e/e2ee_echo_bot.c):
                decrypt, sender trust check, encrypt, send - the crypto path;
  --daemon BIN  the real mxfleet daemon (curl_multi sync loop, worker pool,
                ledger, require_verified_sender on).
Prints p50/p95/max latency and the bot's CPU time per message (utime+stime
of the bot process from /proc over the measured messages only); for the
daemon also its own handling time per !ping (sync response received to the
reply's PUT) from the mxfleet_ping_reply_seconds histogram in /metrics.
Usage: bench_e2ee.py --echo|--daemon BIN [N=200]
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "homeserver"))
import e2ee_interop as it  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(peer, bot_uid, pid, n):
    room = peer("a", "create_dm", bot_uid)["room_id"]
    peer("a", "wait_join", room, bot_uid, "60")
    peer("a", "bench", room, bot_uid, "5", "!ping")  # warm-up: sessions, key shares
    cpu0 = cpu_seconds(pid)
    lat = peer("a", "bench", room, bot_uid, str(n), "!ping")["latencies_ms"]
    cpu1 = cpu_seconds(pid)
    return sorted(lat), 1000 * (cpu1 - cpu0) / n


def report(what, n, lat, cpu_ms):
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    print(f"encrypted !ping round trip over {n} messages (js-sdk Rust crypto <-> {what}, Synapse):")
    print(f"  p50 {p(0.50):.1f} ms  p95 {p(0.95):.1f} ms  max {lat[-1]:.1f} ms  mean {statistics.mean(lat):.1f} ms")
    print(f"  bot CPU {cpu_ms:.2f} ms per message")


def report_handling(metrics_text):
    """Mean and the p50 bucket of mxfleet_ping_reply_seconds (all pings,
    warm-up included)."""
    name = "mxfleet_ping_reply_seconds"
    buckets = [(float(le), int(v)) for le, v in
               re.findall(name + r'_bucket\{identity="pc1",le="([0-9.]+)"\} (\d+)', metrics_text)]
    count = int(re.search(name + r'_count\{identity="pc1"\} (\d+)', metrics_text).group(1))
    total = float(re.search(name + r'_sum\{identity="pc1"\} ([0-9.]+)', metrics_text).group(1))
    p50 = next((le for le, v in buckets if v * 2 >= count), None)
    p50_text = f"<= {p50 * 1000:g} ms" if p50 is not None else "> 1 s"
    print(f"  bot-side handling (sync response -> reply PUT, /metrics): n={count} "
          f"mean {1000 * total / max(count, 1):.2f} ms  p50 {p50_text}")


def run_echo(binary, n, work, url, peer):
    for u, pw in (("bot", "botpw"), ("alice", "alicepw")):
        subprocess.run([it.SYNAPSE, "register", os.path.join(work, "hs"), u, pw], check=True)
    env = dict(os.environ, MX_HS_URL=url, BOT_DIR=os.path.join(work, "bot"), BOT_USER="bot", BOT_PW="botpw",
               OPERATORS="@alice:mxfleet.test")
    os.makedirs(env["BOT_DIR"])
    bot = it.Bot(binary, env, env["BOT_DIR"])
    bot.start()
    try:
        peer("a", "login", "alice", "alicepw")
        peer("a", "xsign", "alicepw")
        lat, cpu = measure(peer, "@bot:mxfleet.test", bot.p.pid, n)
        report("the mx_e2ee echo bot", n, lat, cpu)
    finally:
        bot.p.send_signal(signal.SIGTERM)
        bot.p.wait(timeout=30)


def run_daemon(binary, n, work, url, peer):
    import mxtest
    os.environ["MXFLEET_BIN"] = binary
    hs = mxtest.Homeserver(os.path.join(work, "hs", "env"))
    op = hs.new_user("alice")
    with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                    bot_opts={"require_verified_sender": True}) as bot:
        bot.start(log_level="info")
        peer("a", "login", op.user_id[1:].split(":", 1)[0], op.password)
        peer("a", "xsign", op.password)
        lat, cpu = measure(peer, bot.user_id(), bot.proc.pid, n)
        report("the mxfleet daemon", n, lat, cpu)
        report_handling(bot.metrics()[1])
        bot.stop()


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("--echo", "--daemon"):
        sys.exit("usage: bench_e2ee.py --echo|--daemon BIN [N]")
    mode, binary = sys.argv[1], os.path.abspath(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    peer_dir = subprocess.run([os.path.join(it.HERE, "setup-peer")], check=True, capture_output=True,
                              text=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="mxfleet-e2ee-bench-")
    hsdir = os.path.join(work, "hs")
    url = subprocess.run([it.SYNAPSE, "start", hsdir], check=True, capture_output=True, text=True).stdout.strip()
    peer_log = open(os.path.join(work, "peer.log"), "w")
    peer = None
    try:
        peer = it.Peer(peer_dir, dict(os.environ, MX_HS_URL=url), peer_log)
        (run_echo if mode == "--echo" else run_daemon)(binary, n, work, url, peer)
    finally:
        if peer:
            peer.close()
        peer_log.close()
        subprocess.run([it.SYNAPSE, "stop", hsdir])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
