"""A receiving CS driven by hand: the network, a resident at A, and what A must still
hold after a refusal (tests/integration/test_receiver.py, test_hardening.py)."""

import json

from jukitest import urn
from jukitest.peer import Peer
from jukitest.synth import Synth

A = "cs:131016"  # the receiver: holds the resident
B = "cs:271004"  # the peer's identity: the municipality the resident moves to
GW = "fwgate:east"
MOVE_DATE = "2026-11-25"


class Receiver:
    """The network, the resident at A, and what A must still hold after a refusal."""

    def __init__(self, net, seed, sender=B):
        self.net = net
        self.sender = sender
        self.s = Synth(seed=seed)
        self.person = self.s.person("131016")
        net[A].ctl("resident", "add", "--file", "-", input=json.dumps(self.person))
        self.moved = self.s.moved(self.person, "271004", MOVE_DATE)["person"]
        self.rejected = {}  # what A's inbound.rejected must read
        self.alerts = {}    # what A's alert counts must read

    def peer(self, name=None, dest=A, service="muni"):
        cert, key = self.net.cert(name or self.sender)
        p = Peer(self.net[GW].address, cert, key, self.net.ca())
        answer = p.connect(urn(dest), service)
        assert answer == "OK", answer
        return p

    def notice(self, p, person=None, header=None, **body):
        """A 転入通知 from the sender to A for the resident; fields overridden."""
        b = {"person": person or self.moved, "old_lgcode": "131016", "move_date": MOVE_DATE}
        b.update(body)
        return p.message("tennyu.notice", urn(self.sender), urn(A), b, **(header or {}))

    def expect_reject(self, ack, msg_id, reason, detail=None, alert=None):
        """ack refuses msg_id for reason; A counted it (and alerted); A's data unchanged."""
        assert ack["type"] == "ack" and ack["v"] == 1, ack
        assert ack["from"] == urn(A) and ack["to"] == urn(self.sender), ack
        assert ack["corr"] == msg_id, (ack, msg_id)
        assert ack["body"]["status"] == "rejected" and ack["body"]["reason"] == reason, ack
        if detail is not None:
            assert detail in ack["body"].get("detail", ""), (detail, ack)
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if alert is not None:
            self.alerts[alert] = self.alerts.get(alert, 0) + 1
        self.check_unchanged()

    def check_unchanged(self):
        st = self.net[A].status()
        assert st["inbound"]["rejected"] == self.rejected, (st["inbound"], self.rejected)
        assert st["inbound"]["accepted"] == 0 and st["inbound"]["duplicate"] == 0, st["inbound"]
        assert st["alerts"]["counts"] == self.alerts, (st["alerts"], self.alerts)
        assert st["residents"] == {"resident": 1} and st["moveouts"] == 0, st
        assert st["outbound"]["queued"] == 0, st["outbound"]
        assert self.net[A].ctl("outbox").get("queues", []) == []
        rec = self.net[A].ctl("resident", "show", self.person["code"])
        assert rec["status"] == "resident" and rec["version"] == 1, rec
        assert rec["person"]["address"] == self.person["address"] and rec["moveouts"] == [], rec
        assert self.net["pref:13"].ctl("confirmations")["total"] == 0
