"""The attack suite at the receiver (第4-3(6), 第4-9(3)): what a node refuses on its
own, whatever the gateway let through.  The last cases turn it round: a receiver played by
the test (FakeNode) answers a real sender with acks no juki receiver gives.

A hand-driven peer holding a real CS certificate (cs:271004, 大阪市) opens a
tunnel through a real juki-fwgated to the real juki-csd of 千代田区 (cs:131016)
over muni and sends what no juki node would.  For every refusal the case
checks the ack (status, reason, detail, corr), the receiver's counters
(`status`: inbound.rejected), its alerts where one is raised, and that its
data did not change (`resident show`, the resident and move-out counts, an
empty outbox, nothing at the prefecture).
"""

import copy
import json
import ssl

from jukitest import Network, free_port, run_cases, store_rows, urn, wait_until
from jukitest.peer import FakeNode, Peer, ack_of, uuid7
from jukitest.synth import Synth, wrong_check_digit
from jukitest.receiver import Receiver

A = "cs:131016"  # the receiver: holds the resident
B = "cs:271004"  # the peer's identity: the municipality the resident moves to
C = "cs:131024"  # another municipality of Tokyo, named by forged headers
GW = "fwgate:east"
NET = [GW, A, "pref:13", "jlis:0"]
MOVE_DATE = "2026-11-25"


def without(doc, key):
    d = copy.deepcopy(doc)
    del d[key]
    return d


def case_refused_messages():
    """One channel, every header and body refusal in turn; then a valid notice still passes."""
    with Network(NET, extra_identities=[B, C]) as net:
        r = Receiver(net, seed=31)
        p = r.peer()
        good = r.notice(p)

        # No handler for the type here: refused, and the channel stays up.
        m = p.message("juki.nosuch", urn(B), urn(A), {})
        r.expect_reject(p.exchange(m), m["id"], "unknown-type",
                        "type: no such message type here")
        # 転出確定通知 is a prefecture's message: a CS has no handler for it, whatever the
        # service.  (This is the type-on-a-service the policy allows but the handler
        # table does not: cs -> cs over muni.)
        m = p.message("tenshutsu.confirm", urn(B), urn(A),
                      {"code": r.person["code"], "old_lgcode": "131016", "new_lgcode": "271004",
                       "move_date": MOVE_DATE, "tennyu_id": uuid7()})
        r.expect_reject(p.exchange(m), m["id"], "unknown-type")

        # Header refusals: each by its id where it has one, the detail naming the field
        # and the rule it breaks (protocol.md §7), never just "message header".
        def notice_without(key):
            return without(r.notice(p), key)

        def notice_with_body(body):
            m = r.notice(p)
            m["body"] = body
            return m

        def with_header(members):
            m = r.notice(p)
            m.update(members)
            return m

        headers = [
            (with_header({"v": 2}), "unsupported-version",
             "v: version 2 not supported (this node speaks 1)"),
            (with_header({"v": "1"}), "bad-header",
             "v: not an integer, the protocol version"),
            (notice_without("to"), "bad-header", "to: missing"),
            (with_header({"to": "urn:juki:cs:131017"}), "bad-header",
             "to: not a juki identity"),
            (with_header({"from": "cs:271004"}), "bad-header",
             "from: not a juki identity"),
            (with_header({"type": "Tennyu.Notice"}), "bad-header",
             "type: not 1..47 characters of a-z 0-9 . _ -"),
            (with_header({"time": "yesterday"}), "bad-header",
             "time: not RFC 3339 UTC, YYYY-MM-DDTHH:MM:SS[.fraction]Z"),
            (with_header({"time": "2026-13-01T00:00:00.000Z"}), "bad-header",
             "time: not RFC 3339 UTC"),
            (with_header({"time": "2016-12-31T23:59:61Z"}), "bad-header",
             "time: not RFC 3339 UTC"),
            (with_header({"corr": "not-a-uuid"}), "bad-header",
             "corr: neither null nor a UUIDv7"),
            (with_header({"id": "not-a-uuid"}), "bad-header",
             "id: not a UUIDv7 in canonical lower-case form"),
            (with_header({"extra": "a key the header does not have"}), "bad-header",
             "extra: not a header member"),
            (notice_with_body(["not", "an", "object"]), "bad-header", "body: not an object"),
        ]
        for m, reason, detail in headers:
            msg_id = None if m["id"] == "not-a-uuid" else m["id"]
            ack = p.exchange(m)
            assert ack["body"]["detail"].startswith(detail), (m, ack)
            r.expect_reject(ack, msg_id, reason, detail, alert="malformed-message")
        rec = [a for a in net[A].alerts()["recent"] if a["code"] == "malformed-message"]
        assert "to: missing" in " ".join(a["detail"] for a in rec), rec

        # The header names another sender than the certificate in the inner handshake.
        m = r.notice(p)
        m["from"] = urn(C)
        r.expect_reject(p.exchange(m), m["id"], "sender-mismatch",
                        "from: not the peer of the inner session (%s)" % urn(B),
                        alert="sender-mismatch")
        rec = [a for a in net[A].alerts()["recent"] if a["code"] == "sender-mismatch"]
        assert rec[0]["peer"] == urn(B) and urn(C) in rec[0]["detail"], rec
        # ... or another recipient.
        m = r.notice(p)
        m["to"] = urn(B)
        r.expect_reject(p.exchange(m), m["id"], "recipient-mismatch",
                        "to: not this node (%s)" % urn(A), alert="recipient-mismatch")

        # 住民票コード with a wrong check digit: the field is named.
        bad = dict(r.moved, code=wrong_check_digit(r.moved["code"]))
        m = r.notice(p, person=bad)
        r.expect_reject(p.exchange(m), m["id"], "check-digit", "person.code")
        m = r.notice(p, old_lgcode="131017")
        r.expect_reject(p.exchange(m), m["id"], "check-digit", "old_lgcode")
        # The person's new address must be in the municipality that sends the notice.
        elsewhere = dict(r.moved, lgcode="131016")
        m = r.notice(p, person=elsewhere)
        r.expect_reject(p.exchange(m), m["id"], "invalid-field",
                        "person.lgcode: not the municipality that sent the notice")
        m = r.notice(p, old_lgcode="271004")
        r.expect_reject(p.exchange(m), m["id"], "invalid-field",
                        "old_lgcode: not this municipality")
        m = r.notice(p, move_date="2026-02-30")
        r.expect_reject(p.exchange(m), m["id"], "invalid-field", "move_date")
        stranger = r.s.moved(r.s.person("131016"), "271004", MOVE_DATE)["person"]
        m = r.notice(p, person=stranger)
        # Whether the code lives here is not the sender's to learn (docs/protocol.md §10.2).
        r.expect_reject(p.exchange(m), m["id"], "no-match")
        # Sent again (a lost ack), it is refused the same way, kept and counted once.
        r.expect_reject(p.exchange(m), m["id"], "no-match")
        # All of that on one channel, which is still up.
        assert net[A].status()["inbound"]["channels"] == 1

        # The channel is still usable: the valid notice is accepted and applied...
        ack = p.exchange(good)
        assert ack["corr"] == good["id"] and ack["body"] == {"status": "accepted"}, ack
        # ... and a redelivery of the same message is a duplicate, applied once.
        ack = p.exchange(good)
        assert ack["corr"] == good["id"] and ack["body"] == {"status": "duplicate"}, ack
        p.close()
        # Also on a new channel: the inbox remembers.
        p = r.peer()
        ack = p.exchange(good)
        assert ack["body"] == {"status": "duplicate"}, ack
        p.close()

        rec = net[A].ctl("resident", "show", r.person["code"])
        assert rec["status"] == "removed" and rec["version"] == 2, rec
        assert [m["tennyu_id"] for m in rec["moveouts"]] == [good["id"]], rec
        wait_until("the one confirmation at pref:13",
                   lambda: net["pref:13"].ctl("confirmations")["total"] == 1)
        wait_until("A's outbox empty", lambda: net[A].status()["outbound"]["queued"] == 0)
        st = net[A].status()
        assert st["inbound"]["accepted"] == 1 and st["inbound"]["duplicate"] == 2, st["inbound"]
        assert st["inbound"]["rejected"] == r.rejected
        assert st["residents"] == {"removed": 1} and st["moveouts"] == 1, st
        assert net["pref:13"].ctl("confirmations")["confirmations"][0]["tennyu_id"] == good["id"]

        # The same within one turn: a notice, its copy and a refusal read together are
        # acked in order; the copy is a duplicate, the refusal undoes only itself.
        other = r.s.person("131016")
        net[A].ctl("resident", "add", "--file", "-", input=json.dumps(other))
        moved = r.s.moved(other, "271004", MOVE_DATE)["person"]
        p = r.peer()
        good2 = r.notice(p, person=moved)
        bad2 = r.notice(p, person=dict(moved, code=wrong_check_digit(moved["code"])))
        p.send_frames([good2, good2, bad2])
        acks = [p.recv_frame() for _ in range(3)]
        assert [a["corr"] for a in acks] == [good2["id"], good2["id"], bad2["id"]], acks
        assert [a["body"]["status"] for a in acks] == ["accepted", "duplicate", "rejected"]
        assert acks[2]["body"]["reason"] == "check-digit", acks[2]
        p.close()
        rec = net[A].ctl("resident", "show", other["code"])
        assert rec["status"] == "removed" and rec["version"] == 2, rec
        assert [m["tennyu_id"] for m in rec["moveouts"]] == [good2["id"]], rec
        st = net[A].status()["inbound"]
        assert st["accepted"] == 2 and st["duplicate"] == 3, st
        assert st["rejected"]["check-digit"] == r.rejected["check-digit"] + 1, st
        wait_until("two confirmations at pref:13",
                   lambda: net["pref:13"].ctl("confirmations")["total"] == 2)


def case_bad_json_closes_the_channel():
    """A frame that is not a JSON object: rejected with no corr, then the channel closes."""
    with Network(NET, extra_identities=[B]) as net:
        r = Receiver(net, seed=32)
        payloads = [
            b"{not json",
            b'["an", "array"]',
            b'{"v": 1, "v": 1}',  # duplicate keys
            b"\xff\xfe{}",
        ]
        for payload in payloads:
            p = r.peer()
            ack = p.exchange(payload)
            r.expect_reject(ack, None, "bad-json", "frame: not a JSON object",
                            alert="malformed-message")
            assert p.closed(), payload
            p.close()
            wait_until("the channel gone", lambda: net[A].status()["inbound"]["channels"] == 0)
        assert net[A].status()["inbound"]["received"] == 0


def case_frame_too_large():
    """A frame over frame_max (set to 1 MiB) closes the channel unanswered; 1 MiB itself
    is read."""
    def one_mib(net):
        net[A].limits["frame_max"] = "1MiB"

    with Network(NET, extra_identities=[B], configure=one_mib) as net:
        r = Receiver(net, seed=33)
        # Exactly 1 MiB is a frame like any other (here of an unknown type).
        p = r.peer()
        m = p.message("juki.pad", urn(B), urn(A), {"pad": ""})
        m["body"]["pad"] = "x" * (1048576 - len(json.dumps(m).encode()))
        assert len(json.dumps(m).encode()) == 1048576
        r.expect_reject(p.exchange(m), m["id"], "unknown-type")

        # One byte more, on the same channel: cut off with no ack.  The receiver judges
        # the header alone, so it may close while the payload is still being sent.
        m["body"]["pad"] += "x"
        try:
            p.send_frame(m)
        except (OSError, ssl.SSLError):
            pass
        assert p.closed()
        p.close()
        wait_until("frame-too-large alert",
                   lambda: net[A].alert_counts().get("frame-too-large") == 1)
        r.alerts["frame-too-large"] = 1
        # Announcing 2 MiB is enough: nothing of the payload is waited for.
        p = r.peer()
        p.send_frame_header(2 * 1048576, b'{"v":1')
        assert p.closed()
        p.close()
        r.alerts["frame-too-large"] += 1
        wait_until("second frame-too-large alert",
                   lambda: net[A].alert_counts().get("frame-too-large") == 2)
        # An empty frame is no frame either.
        p = r.peer()
        p.send_frame_header(0)
        assert p.closed()
        p.close()
        r.alerts["malformed-frame"] = 1
        wait_until("malformed-frame alert",
                   lambda: net[A].alert_counts().get("malformed-frame") == 1)
        rec = [a for a in net[A].alerts()["recent"] if a["code"] == "frame-too-large"]
        assert all(a["peer"] == urn(B) and "over the size limit" in a["detail"] for a in rec)
        st = net[A].status()["inbound"]
        assert st["received"] == 1 and st["channels"] == 0, st
        r.check_unchanged()


def case_type_on_the_wrong_service():
    """A type the prefecture handles, on a service that does not carry it: policy-denied.

    cs -> pref over provide is allowed by the policy (same prefecture), but
    tenshutsu.confirm travels over honnin only.  (Sent over honnin from a CS of
    another prefecture instead, the gateway refuses the tunnel itself:
    test_refusals.case_policy_denied.)
    """
    with Network(NET, extra_identities=[C]) as net:
        pref = net["pref:13"]
        cert, key = net.cert(C)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            assert p.connect("urn:juki:pref:13", "provide") == "OK"
            m = p.message("tenshutsu.confirm", urn(C), "urn:juki:pref:13",
                          {"code": "24727059608", "old_lgcode": "131024",
                           "new_lgcode": "271004", "move_date": MOVE_DATE,
                           "tennyu_id": uuid7()})
            ack = p.exchange(m)
            assert ack["corr"] == m["id"] and ack["from"] == "urn:juki:pref:13", ack
            assert ack["body"] == {"status": "rejected", "reason": "policy-denied",
                                   "detail": "type: not carried by service provide"}, ack
            # The same over honnin is accepted: only the service was wrong.
            p.close()
            assert p.connect("urn:juki:pref:13", "honnin") == "OK"
            m2 = dict(m, id=uuid7())
            assert p.exchange(m2)["body"] == {"status": "accepted"}
        st = pref.status()
        assert st["inbound"]["rejected"] == {"policy-denied": 1}, st["inbound"]
        assert st["inbound"]["accepted"] == 1, st["inbound"]
        assert st["alerts"]["counts"] == {"policy-denied": 1}, st["alerts"]
        rec = pref.alerts()["recent"][0]
        assert rec["peer"] == urn(C) and "tenshutsu.confirm" in rec["detail"] \
            and "provide" in rec["detail"], rec
        conf = pref.ctl("confirmations")
        assert conf["total"] == 1 and conf["confirmations"][0]["notice_id"] == m2["id"], conf


def case_notice_to_itself():
    """A CS that sends itself a 転入通知 (a 転居 dressed as a 転入) is refused: by the
    gateway, which opens no tunnel from a node to itself, and by the CS itself
    when something that can pass for a gateway brings one."""
    with Network(NET) as net:
        r = Receiver(net, seed=34, sender=A)
        cert, key = net.cert(A)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            answer = p.connect(urn(A), "muni")
            assert answer == "DENY policy a node does not tunnel to itself", answer
        wait_until("the gateway's alert", lambda: net[GW].alert_counts() == {"policy-denied": 1})
        # Straight to A's node port with the gateway's certificate, announcing A itself.
        gcert, gkey = net.cert(GW)
        with Peer(net[A].address, gcert, gkey, net.ca(), inner=(cert, key)) as p:
            p.open_outer()
            assert p.request("FROM urn:juki:cs:131016 muni") == "OK"
            p.start_inner(urn(A))
            m = r.notice(p, person=dict(r.person, address=r.s.address("131016")))
            r.expect_reject(p.exchange(m), m["id"], "invalid-field",
                            "from: a move within the municipality is 転居, not 転入")


def case_node_port_gateways_only():
    """The node port talks to gateways only, and holds a gateway to what it announced."""
    with Network(NET, extra_identities=[B, C]) as net:
        r = Receiver(net, seed=35)
        node_port = net[A].address
        # A node calling the node port directly, around the gateway.
        cert, key = net.cert(B)
        with Peer(node_port, cert, key, net.ca()) as p:
            assert p.open_outer() == urn(A)
            assert p.readline() == "DENY forbidden node port accepts gateways only"
            assert p.outer_closed()
            local = p.local
        r.alerts["not-a-gateway"] = 1
        rec = [a for a in net[A].alerts()["recent"] if a["code"] == "not-a-gateway"]
        assert len(rec) == 1 and rec[0]["peer"] == urn(B) and rec[0]["addr"] == local, rec

        gcert, gkey = net.cert(GW)
        # A gateway that sends a malformed FROM line.
        with Peer(node_port, gcert, gkey, net.ca()) as p:
            p.open_outer()
            answer = p.request("FROM urn:juki:cs:271004")
            assert answer == "DENY malformed expected <verb> <urn> <service>", answer
            assert p.outer_closed()
        r.alerts["malformed-request"] = 1
        # A gateway that announces B, while the inner session presents C's certificate.
        with Peer(node_port, gcert, gkey, net.ca(), inner=net.cert(C)) as p:
            p.open_outer()
            assert p.request("FROM urn:juki:cs:271004 muni") == "OK"
            p.start_inner(urn(A))
            assert p.closed()
        r.alerts["identity-mismatch"] = 1
        wait_until("identity-mismatch alert",
                   lambda: net[A].alert_counts().get("identity-mismatch") == 1)
        rec = [a for a in net[A].alerts()["recent"] if a["code"] == "identity-mismatch"][0]
        assert rec["peer"] == urn(B) and urn(C) in rec["detail"], rec
        st = net[A].status()["inbound"]
        assert st["channels"] == 0 and st["received"] == 0, st
        r.check_unchanged()


def case_leap_second_time():
    """A `time` of second 60 (a leap second, protocol.md §6) is a time: accepted."""
    with Network(NET, extra_identities=[B]) as net:
        r = Receiver(net, seed=36)
        p = r.peer()
        m = r.notice(p, header={"time": "2016-12-31T23:59:60.500Z"})
        ack = p.exchange(m)
        assert ack["corr"] == m["id"] and ack["body"] == {"status": "accepted"}, ack
        p.close()
        rec = net[A].ctl("resident", "show", r.person["code"])
        assert rec["status"] == "removed" and rec["version"] == 2, rec


def case_national_server_keeps_canonical_text():
    """What prefecture and nation keep of a record is its canonical text (protocol.md §10.5):
    the Japanese 異動事由 for a romaji one, members in the order of §10.4, `recorded` with
    three fraction digits (a leap second as 59.999); and it is what they pass on."""
    with Network([GW, "pref:13", "jlis:0"], extra_identities=[A]) as net:
        s = Synth(seed=37)
        person = s.person("131016")
        sent = {"person": {"address": person["address"], "sex": person["sex"],
                           "birth": person["birth"], "name": person["name"]},
                "recorded": "2016-12-31T23:59:60.5Z", "reason_date": "2016-12-31",
                "reason": "shokken-kisai", "version": 1, "lgcode": "131016",
                "code": person["code"]}
        cert, key = net.cert(A)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn("pref:13"), "honnin") == "OK"
            m = p.message("honnin.batch", urn(A), urn("pref:13"), {"records": [sent]})
            assert p.exchange(m)["body"] == {"status": "accepted"}
        canonical = ('{"code":"%s","lgcode":"131016","version":1,"reason":"職権記載",'
                     '"reason_date":"2016-12-31","recorded":"2016-12-31T23:59:59.999Z",'
                     '"person":{"name":"%s","birth":"%s","sex":%d,"address":"%s"}}'
                     % (person["code"], person["name"], person["birth"], person["sex"],
                        person["address"]))
        wait_until("the record at jlis",
                   lambda: net["jlis:0"].status()["records"]["current"] == 1)
        for node in ("pref:13", "jlis:0"):
            rows = store_rows(net[node].store, "SELECT rec FROM honnin WHERE code = '%s'"
                              % person["code"])
            held = rows[0][0]
            held = held.decode() if isinstance(held, bytes) else held
            assert held == canonical, (node, held, canonical)
        shown = net["jlis:0"].ctl("person", "show", person["code"])["records"]
        assert shown[0]["reason"] == "職権記載" and shown[0]["sender"] == urn("pref:13"), shown


def fake_pref(net, holder, answer):
    """configure hook: pref:13 is a FakeNode answering with answer(conn, doc)."""
    address = "127.0.0.1:%d" % free_port()
    net.fake_nodes["pref:13"] = address
    cert, key = net.cert("pref:13")
    holder.append(FakeNode(address, cert, key, net.ca(), answer))


def case_sender_checks_acks():
    """A sender takes an ack only from its destination, addressed to itself, for the oldest
    message in flight (protocol.md §7); any other closes the tunnel with a logged reason
    (alert protocol-error), and the message stays queued and is delivered again, the same."""
    wrong = [  # one per connection, then a right one
        ({"to": urn(B)}, "ack to %s, not this node" % urn(B)),
        ({"from": urn(C)}, "ack from %s, not the destination" % urn(C)),
        ({"corr": uuid7()}, "not the oldest message in flight"),
        ({"time": "soon"}, "malformed ack: time: not RFC 3339 UTC"),
        ({"type": "tennyu.notice"}, "a message of type tennyu.notice where an ack was due"),
    ]

    def answer(conn, doc):
        if conn < len(wrong):
            return [ack_of(doc, **wrong[conn][0])]
        return [ack_of(doc)]

    fakes = []
    with Network([GW, A], extra_identities=["pref:13", B, C],
                 configure=lambda net: fake_pref(net, fakes, answer)) as net:
        fake = fakes[0]
        try:
            person = Synth(seed=38).person("131016")
            net[A].ctl("resident", "add", "--file", "-", input=json.dumps(person))
            wait_until("delivered at last", lambda: fake.conns > len(wrong) and
                       net[A].status()["outbound"]["queued"] == 0)
            ids = [(conn, doc["id"]) for conn, doc in fake.received
                   if doc["type"] == "honnin.batch"]
            assert [c for c, _ in ids] == list(range(len(wrong) + 1)), ids
            assert len({i for _, i in ids}) == 1, ids  # the same message each time
            assert net[A].alert_counts()["protocol-error"] == len(wrong)
            log = net[A].log_text()
            for _, why in wrong:
                assert why in log, why
        finally:
            fake.close()


def case_sender_close_reason():
    """A receiver that closes without a word (as after refusing a certificate): the sender's
    status says "closed by the peer (EOF)" and what was unanswered, never "Success"."""
    def answer(conn, doc):
        if conn == 0:
            fakes[0].hold.clear()  # the next tunnel waits until the status is read
            return None
        return [ack_of(doc)]

    fakes = []
    with Network([GW, A], extra_identities=["pref:13"],
                 configure=lambda net: fake_pref(net, fakes, answer)) as net:
        fake = fakes[0]
        try:
            person = Synth(seed=39).person("131016")
            net[A].ctl("resident", "add", "--file", "-", input=json.dumps(person))

            def last_error():
                links = net[A].status()["outbound"]["links"]
                return links and links[0].get("last_error")

            why = wait_until("the link closed", last_error)
            fake.hold.set()
            assert why == "closed by the peer (EOF), 1 message unacknowledged", why
            assert "Success" not in why
            wait_until("delivered", lambda: net[A].status()["outbound"]["queued"] == 0)
            assert "closed: closed by the peer (EOF)" in net[A].log_text()
        finally:
            fake.close()


if __name__ == "__main__":
    run_cases([case_refused_messages, case_bad_json_closes_the_channel, case_frame_too_large,
               case_type_on_the_wrong_service, case_notice_to_itself,
               case_node_port_gateways_only, case_leap_second_time,
               case_national_server_keeps_canonical_text, case_sender_checks_acks,
               case_sender_close_reason])
