"""Acceptance: a command older than bot.command_max_age_s when the bot first
sees it (sent while the bot was down) is not executed; the bot posts a notice
asking the operator to confirm instead. `!confirm CODE` (the code from that
notice) then runs it once, and a fresh command still runs."""

import re
import time

import mxtest
from mxtest import check, is_notice, is_pong

MAX_AGE_S = 6  # long enough that a loaded ASan run still answers a fresh command in time


def test():
    hs = mxtest.Homeserver.from_env()
    with hs:
        op = hs.new_user("alice")
        with mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))],
                        bot_opts={"command_max_age_s": MAX_AGE_S}) as bot:
            bot.start()
            uid = bot.user_id()
            room = mxtest.open_dm(op, bot)
            first = mxtest.ping_and_wait(op, room, uid, 1)
            bot.stop()

            stale = op.send_text(room, "!ping")
            # Wait until the command is past the age limit by the server's own
            # timestamp (same host clock), plus a second of margin.
            sent_ms = op.event(room, stale)["origin_server_ts"]
            remaining = (sent_ms + (MAX_AGE_S + 1) * 1000) / 1000 - time.time()
            if remaining > 0:
                time.sleep(remaining)

            bot.start()
            confirm = op.wait_messages(
                room, uid, lambda c: is_notice(c) and not is_pong(c)
                and "confirm" in c.get("body", "").lower(), timeout=60, after_ts=sent_ms)
            check(len(confirm) == 1, f"expected one confirmation notice, got {len(confirm)}")
            fresh = mxtest.ping_and_wait(op, room, uid, 2)
            # the stale !ping was not executed: only the first and the fresh one got pongs
            mxtest.assert_exactly_once(op, room, uid, [first, fresh])

            body = confirm[0]["content"]["body"]
            code = re.search(r"!confirm\s+(\S+)", body)
            check(code, f"the confirmation notice names no '!confirm CODE': {body!r}")
            op.send_text(room, f"!confirm {code.group(1).rstrip('.')}")
            op.wait_messages(room, uid, mxtest.is_pong, count=3, timeout=60)
            last = mxtest.ping_and_wait(op, room, uid, 4)
            replies = mxtest.pongs(op, room, uid)
            check(len(replies) == 4, f"expected 4 pongs (first, fresh, confirmed, last), got {len(replies)}")
            targets = [mxtest.replied_to(e) for e in replies]
            if all(targets):
                check(len(set(targets)) == 4, f"a command was answered twice: {targets}")
                check({first, fresh, last} <= set(targets), f"pongs point at {targets}")
            bot.stop()


mxtest.run(test)
