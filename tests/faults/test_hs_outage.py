"""Fault 4 (issue 15), a homeserver that refuses every send (503) for
longer than the bot keeps retrying in one go, here until the bot is
restarted: the reply to a !ping that arrived just before is being retried
when the bot stops (SIGTERM), and the homeserver takes sends again only
after it has started again.

Proves: the reply is not lost - the bot keeps it and sends it after the
restart, once, under the txnId it was first tried with (Synapse stores one
event); a later !ping is answered as usual."""

import threading

import mxtest
from mxtest import check, log
from faultproxy import bot_sends, proxied_dm, server_error


class SendOutage:
    def __init__(self):
        self.on = threading.Event()

    def __call__(self, req):
        if self.on.is_set() and req.method == "PUT" and "/send/" in req.path:
            return server_error(503)
        return None


def test():
    outage = SendOutage()
    with proxied_dm(outage) as (proxy, op, bot, room):
        uid = bot.user_id()
        first = mxtest.ping_and_wait(op, room, uid, 1)
        outage.on.set()
        held = op.send_text(room, "!ping")
        tries = mxtest.wait_until(
            lambda: [e for e in bot_sends(proxy.entries()) if e["status"] == 503][1:], 60,
            "the bot to retry its reply against the outage")
        txn = tries[0]["path"]
        bot.stop()
        log(f"stopped while retrying {txn.rsplit('/', 1)[-1]} ({len(tries) + 1} tries)")
        outage.on.clear()
        bot.start()
        op.wait_messages(room, uid, mxtest.is_pong, count=2, timeout=30)
        after = [e for e in bot_sends(proxy.entries()) if e["status"] == 200 and e["path"] == txn]
        check(after, "the reply was sent after the restart under another txnId")
        last = mxtest.ping_and_wait(op, room, uid, 3)
        mxtest.assert_exactly_once(op, room, uid, [first, held, last])
        check("kept" in bot.log_text(), "no log line says the reply was kept for later")
        bot.stop()


mxtest.run(test)
