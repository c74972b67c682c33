"""Tests the test harness itself against the real Synapse fixture: shared-secret
registration, login, a DM with invite + join, sends with txnIds (a repeated
txnId must not duplicate), reading messages back, m.direct, leave and kick.
Needs no mxfleet binary, so it proves the fixture before the daemon exists."""

import mxtest
from mxtest import check


def test():
    hs = mxtest.Homeserver.from_env()
    try:
        alice = hs.new_user("alice", admin=True)
        bob = hs.new_user("bob")
        check(alice.user_id.endswith(":" + hs.name), f"unexpected user id {alice.user_id}")

        room = alice.create_dm(bob.user_id)
        alice.wait_membership(room, bob.user_id, "invite", timeout=10)
        check(bob.join(room) == room, "join returned another room")
        alice.wait_membership(room, bob.user_id, "join", timeout=10)
        check(room in alice.m_direct().get(bob.user_id, []), "m.direct not set for the DM")

        txn = alice.next_txn()
        ev1 = alice.send_text(room, "hello 1", txn=txn)
        ev1b = alice.send_text(room, "hello 1", txn=txn)
        check(ev1 == ev1b, "a repeated txnId created a second event")
        bob.send_text(room, "reply 1")
        got = alice.wait_messages(room, bob.user_id, lambda c: c.get("body") == "reply 1", timeout=10)
        check(len(got) == 1, f"expected one reply, got {len(got)}")
        mine = alice.messages_from(room, alice.user_id)
        check([e["content"]["body"] for e in mine] == ["hello 1"], f"sent messages: {mine}")

        # A deadline that expires must fail with what it saw.
        try:
            alice.wait_messages(room, bob.user_id, lambda c: c.get("body") == "never", timeout=1)
            raise AssertionError("wait_messages did not time out")
        except mxtest.TestFailure as e:
            check("reply 1" in str(e), f"timeout message lacks what was seen: {e}")

        alice.unlimit(bob.user_id)
        # trusted_private_chat gives the invitee power 100, so kick in a plain room
        room2 = alice.create_room(invite=[bob.user_id])
        bob.join(room2)
        alice.kick(room2, bob.user_id)
        alice.wait_membership(room2, bob.user_id, "leave", timeout=10)
        room3 = alice.create_room(invite=[bob.user_id])
        bob.leave(room3)  # rejecting an invite is a leave
        alice.wait_membership(room3, bob.user_id, "leave", timeout=10)
        bob.leave(room)
        alice.wait_membership(room, bob.user_id, "leave", timeout=10)
    finally:
        hs.stop()


mxtest.run(test)
