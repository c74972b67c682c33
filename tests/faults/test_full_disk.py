"""Issue 15 fault 6: the data directory on a small tmpfs (mounted by the
test, as root) fills up while the bot runs. Commands sent while it is full
are not lost: the SQLite error is logged clearly (once), the bot stays up, the
sync position is not moved past them, nothing is corrupted, and once space
returns each is answered exactly once and a store_full alert says how long
it lasted (it cannot be sent while full: every send writes first). The test re-runs itself in a
private mount namespace (unshare -m), so the tmpfs goes away with it even
when it is killed."""

import errno
import os
import subprocess
import sys

if os.environ.get("MX_FAULT_MOUNT_NS") != "1":
    os.environ["MX_FAULT_MOUNT_NS"] = "1"
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", sys.executable, *sys.argv])

import faultlib
import mxtest
from mxtest import check


def fill(directory):
    """Writes a filler file until the file system is full; returns its path."""
    path = os.path.join(directory, "filler")
    with open(path, "wb", buffering=0) as f:  # unbuffered: close() has nothing left to flush
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            check(e.errno == errno.ENOSPC, f"filling {directory}: {e}")
    return path


def test():
    faultlib.seed()
    work = mxtest.workdir("fulldisk-")
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", mnt], check=True)
    try:
        hs = mxtest.Homeserver.from_env()
        with hs:
            op = hs.new_user("alice")
            bot = mxtest.Bot(hs, [op.user_id], [("pc1", mxtest.unique("agent-pc1"))])
            bot.config["data_dir"] = os.path.join(mnt, "data")
            bot.write_config()
            with bot:
                bot.start()
                uid = bot.user_id()
                room = mxtest.open_dm(op, bot)
                pings = [mxtest.ping_and_wait(op, room, uid, 1)]
                filler = fill(mnt)
                mxtest.log(f"{mnt} full ({os.path.getsize(filler) if os.path.exists(filler) else 0} bytes of filler)")
                for _ in range(3):
                    pings.append(op.send_text(room, "!ping"))
                mxtest.wait_until(lambda: "database or disk is full" in bot.log_text(), 60,
                                  "the daemon to log that the disk is full")
                bot.assert_running()
                full = [line for line in bot.log_text().splitlines() if "disk is full" in line]
                mxtest.log(f"while full the daemon logged {len(full)} line(s), first: {full[0][:300]}")
                check(os.path.exists(filler), f"{mnt} was full before the test filled it: the bot's own data")
                os.unlink(filler)
                mxtest.log("space is back")
                op.wait_messages(room, uid, mxtest.is_pong, count=len(pings), timeout=90)
                pings.append(mxtest.ping_and_wait(op, room, uid, len(pings) + 1))
                mxtest.assert_exactly_once(op, room, uid, pings)
                # one clear error while it lasts, one alert (to the alerts room) once it is over
                log = bot.log_text()
                check(log.count(" is full: messages wait on the homeserver") == 1,
                      "the daemon did not say once that data_dir is full")
                mxtest.wait_until(lambda: "status=store_full" in bot.log_text(), 30,
                                  "the store_full alert after space came back")
                bot.stop()
            # SQLITE_FULL lines are expected here; corruption lines are not
            faultlib.check_store(bot, log_text=bot.log_text().replace("database or disk is full", "disk full"))
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)


mxtest.run(test)
