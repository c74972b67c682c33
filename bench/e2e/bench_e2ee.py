#!/usr/bin/python3
"""bench/e2e/bench_e2ee.py - encrypted !ping round trip against a real Synapse.

Element's crypto (matrix-js-sdk + Rust crypto, tests/e2e/peer) sends N
encrypted "!ping" messages one after another in an encrypted DM and waits for
each decrypted "pong"; the bot side is the echo bot built on mx_api +
mx_e2ee (tests/e2e/e2ee_echo_bot.c), which decrypts, checks sender trust,
encrypts and sends. Prints p50/p95/max latency and the bot's CPU time per
message (utime+stime from /proc over the measured messages only).
Usage: bench_e2ee.py ECHO_BOT_BINARY [N=200]
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))
import e2ee_interop as it  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    binary = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    peer_dir = subprocess.run([os.path.join(it.HERE, "setup-peer")], check=True, capture_output=True,
                              text=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="mxfleet-e2ee-bench-")
    hsdir = os.path.join(work, "hs")
    url = subprocess.run([it.SYNAPSE, "start", hsdir], check=True, capture_output=True, text=True).stdout.strip()
    bot = peer = None
    try:
        for u, pw in (("bot", "botpw"), ("alice", "alicepw")):
            subprocess.run([it.SYNAPSE, "register", hsdir, u, pw], check=True)
        env = dict(os.environ, MX_HS_URL=url, BOT_DIR=os.path.join(work, "bot"), BOT_USER="bot", BOT_PW="botpw",
                   OPERATORS="@alice:mxfleet.test")
        os.makedirs(env["BOT_DIR"])
        bot = it.Bot(binary, env, env["BOT_DIR"])
        bot.start()
        peer_log = open(os.path.join(work, "peer.log"), "w")
        peer = it.Peer(peer_dir, dict(os.environ, MX_HS_URL=url), peer_log)
        peer("a", "login", "alice", "alicepw")
        peer("a", "xsign", "alicepw")
        room = peer("a", "create_dm", "@bot:mxfleet.test")["room_id"]
        peer("a", "wait_join", room, "@bot:mxfleet.test", "60")
        peer("a", "bench", room, "@bot:mxfleet.test", "5", "!ping")  # warm-up: sessions, key shares
        cpu0 = cpu_seconds(bot.p.pid)
        lat = peer("a", "bench", room, "@bot:mxfleet.test", str(n), "!ping")["latencies_ms"]
        cpu1 = cpu_seconds(bot.p.pid)
        lat.sort()
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
        print(f"encrypted !ping round trip over {n} messages (js-sdk Rust crypto <-> mx_e2ee echo bot, Synapse):")
        print(f"  p50 {p(0.50):.1f} ms  p95 {p(0.95):.1f} ms  max {lat[-1]:.1f} ms  mean {statistics.mean(lat):.1f} ms")
        print(f"  bot CPU {1000 * (cpu1 - cpu0) / n:.2f} ms per message (decrypt + trust check + encrypt + send)")
        print(f"  replies with 'pong': {bot.text().count(chr(39) + 'pong' + chr(39))}")
    finally:
        if peer:
            peer.close()
        if bot and bot.p:
            bot.p.send_signal(signal.SIGTERM)
            bot.p.wait(timeout=30)
        subprocess.run([it.SYNAPSE, "stop", hsdir])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
