"""The link server's feed to the certification authority (第6-8(6)): juki-authlinkd between a
test-played source (a Peer holding the national server's certificate, sending ninsho.idou) and a
test-played authority (a FakeNode holding urn:juki:ca:jpki's certificate behind the gateway,
checking the seq and the digest chain as docs/protocol.md tells an authority to, with a digest
of its own making, and acking only what it took).
"""

import hashlib
import json
import signal
import subprocess
import threading

from jukitest import (CA, Network, history, run_cases, set_clock, store_bytes, store_rows,
                      wait_until)
from jukitest.peer import Peer, ack_of, uuid7
from jukitest.synth import Synth

AUTHLINK = "urn:juki:authlink:0"
JLIS = "urn:juki:jlis:0"


def line(e):
    """The digest line of docs/protocol.md, written from the text, not from the C code."""
    it = e.get("items") or {}
    parts = ["juki-ninsho-feed/1", str(e["seq"]), e["id"], e["code"], e["kind"], e["date"],
             it.get("name", ""), it.get("birth", ""), str(it["sex"]) if it else "",
             it.get("lgcode", ""), it.get("address", ""), e.get("new_code", "")]
    return "".join(p + "\n" for p in parts).encode()


class Authority:
    """The authority's side of the feed: last committed seq and digest, entries applied once
    each (applied counts them by seq), and a mode saying how to answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last = 0
        self.digest = bytes(32)
        self.applied = {}  # seq -> times applied
        self.mode = "accept"  # accept | internal-error | feed-gap | silent | bad-digest | commit-no-ack
        self.messages = 0

    def answer(self, conn, doc):
        with self.lock:
            self.messages += 1
            if doc.get("type") != "ninsho.feed":
                return [ack_of(doc, "rejected", body={"status": "rejected",
                                                      "reason": "unknown-type"})]
            if self.mode == "silent":
                return None
            no_ack = self.mode == "commit-no-ack"
            if self.mode in ("internal-error", "feed-gap"):
                detail = "expected %d" % (self.last + 1) if self.mode == "feed-gap" else "busy"
                return [ack_of(doc, "rejected", body={"status": "rejected",
                                                      "reason": self.mode, "detail": detail})]
            entries = doc["body"]["entries"]
            last, digest = self.last, self.digest
            if entries[0]["seq"] > last + 1:
                return [ack_of(doc, "rejected", body={
                    "status": "rejected", "reason": "feed-gap",
                    "detail": "expected %d" % (last + 1)})]
            for e in entries:
                if e["seq"] <= last:
                    continue  # had it: skipped, so a re-sent message is never applied twice
                d = hashlib.sha256(digest + line(e)).digest()
                if d.hex() != e["digest"]:
                    return [ack_of(doc, "rejected", body={
                        "status": "rejected", "reason": "feed-digest",
                        "detail": "seq %d" % e["seq"]})]
                digest, last = d, e["seq"]
                self.applied[last] = self.applied.get(last, 0) + 1
            # Committed; only now the ack.
            self.last, self.digest = last, digest
            if no_ack:
                return []  # the ack is lost: nothing comes back
            tail = entries[-1]
            said = tail["digest"] if self.mode != "bad-digest" else "00" * 32
            return [ack_of(doc, body={"status": "accepted",
                                      "result": {"seq": tail["seq"], "digest": said}})]


def entry(synth, kind="death", **extra):
    p = synth.person("131016")
    e = {"id": uuid7(), "code": p["code"], "kind": kind, "date": "2026-04-01"}
    if kind == "change":
        e["items"] = {k: p[k] for k in ("name", "birth", "sex", "address", "lgcode")}
    if kind == "code-change":
        e["new_code"] = synth.person("131016")["code"]
    e.update(extra)
    return e


def idou(peer, entries, ca=CA, sender=JLIS, agreement="ag-ca-1", days=30):
    msg = peer.message("ninsho.idou", sender, AUTHLINK,
                       {"ca": ca, "agreement": agreement, "retention_days": days,
                        "entries": entries})
    return peer.exchange(msg)


def network(ca, extra=(), **authlink):
    def configure(net):
        net.ca_node = net.play_node("ca:jpki", ca.answer)
        net["authlink:0"].authlink.update(authlink)
    ids = ["jlis:0", "ca:jpki", "pref:13", "pref:27"] + list(extra)
    return Network(["fwgate:east", "authlink:0"], extra_identities=ids, configure=configure)


class Source:
    """The national server, played: one tunnel to the link server over ninsho."""

    def __init__(self, net, name="jlis:0"):
        cert, key = net.cert(name)
        self.peer = Peer(net["fwgate:east"].address, cert, key, net.ca())
        assert self.peer.connect(AUTHLINK, "ninsho") == "OK"
        self.urn = "urn:juki:" + name

    def send(self, entries, **kw):
        return idou(self.peer, entries, sender=self.urn, **kw)

    def close(self):
        self.peer.close()


def feed(d):
    return d.status()["feed"]


def reload(d):
    """Write the daemon's configuration again and reload it (SIGHUP); returns when it did."""
    d.write_config()
    before = d.log_text().count(": reloaded")
    d.signal(signal.SIGHUP)
    wait_until("%s reloaded" % d.name, lambda: d.log_text().count(": reloaded") > before)


def until_acked(d, seq, timeout=30):
    wait_until("acked up to %d" % seq, lambda: feed(d)["acked_seq"] >= seq, timeout)


def close(net):
    net.ca_node.close()


def case_entries_in_order_with_chaining_digest():
    ca, s = Authority(), Synth(11)
    with network(ca) as net:
        d = net["authlink:0"]
        src = Source(net)
        kinds = ["death", "removal", "change", "code-change"]
        for i in range(5):
            ack = src.send([entry(s, kinds[(i + j) % 4]) for j in range(3)])
            assert ack["body"]["status"] == "accepted", ack
        until_acked(d, 15)
        st = feed(d)
        assert st["last_seq"] == 15 and st["unacked"] == 0 and st["erased_to"] == 0, st
        # In order, each once, every digest chained by the authority's own computation.
        assert sorted(ca.applied) == list(range(1, 16)) and set(ca.applied.values()) == {1}
        rows = store_rows(d.store, "SELECT seq, digest FROM feed ORDER BY seq")
        assert [r[0] for r in rows] == list(range(1, 16))
        assert rows[-1][1] == ca.digest
        # The message carries the header the source gave.
        _, doc = net.ca_node.received[0]
        assert doc["body"]["header"] == {"ca": CA, "source": JLIS, "agreement": "ag-ca-1",
                                         "retention_days": 30}, doc["body"]["header"]
        # juki-ctl feed show: seq, kind, date, times; no codes.
        shown = d.admin("feed", "show", "--from", 2, "--limit", 3)
        assert [r["seq"] for r in shown["entries"]] == [2, 3, 4], shown
        assert all(r["acked"] for r in shown["entries"]), shown
        text = json.dumps(shown, ensure_ascii=False)
        assert all(e["code"] not in text for _, m in net.ca_node.received
                   for e in m["body"]["entries"])
        src.close()
        close(net)


def case_authority_refusing_keeps_entries_queued():
    ca, s = Authority(), Synth(12)
    with network(ca) as net:
        d = net["authlink:0"]
        src = Source(net)
        for mode in ("internal-error", "feed-gap"):
            ca.mode = mode
            before = ca.messages
            assert src.send([entry(s)])["body"]["status"] == "accepted"
            # Asked again and again, never dropped.
            wait_until("the authority asked twice", lambda: ca.messages >= before + 2)
            st = net["authlink:0"].status()
            assert st["feed"]["unacked"] >= 1, st
            assert st["outbound"]["rejected"] == 0, st["outbound"]
            assert store_rows(d.store, "SELECT count(*) FROM outbox_rejected")[0][0] == 0
        # The link says why it starts over (it is up again between refusals: asked until seen).
        wait_until("the link's last error", lambda: any(
            "kept queued by this node" in (l.get("last_error") or "")
            for l in d.status()["outbound"]["links"] if l["dest"] == CA))
        counts = d.alert_counts()
        assert counts.get("authlink-refused", 0) >= 1, counts
        assert "protocol-error" not in counts, counts
        alerts = [a for a in d.alerts()["recent"] if a["code"] == "authlink-refused"]
        assert "feed-gap" in alerts[-1]["detail"], alerts[-1]
        ca.mode = "accept"
        until_acked(d, 2)
        assert sorted(ca.applied) == [1, 2] and set(ca.applied.values()) == {1}
        assert store_rows(d.store, "SELECT count(*) FROM outbox")[0][0] == 0
        src.close()
        close(net)


def case_digest_mismatch_keeps_entry_queued():
    ca, s = Authority(), Synth(13)
    with network(ca) as net:
        d = net["authlink:0"]
        src = Source(net)
        ca.mode = "bad-digest"
        assert src.send([entry(s)])["body"]["status"] == "accepted"
        wait_until("authlink-digest-mismatch",
                   lambda: d.alert_counts().get("authlink-digest-mismatch"))
        assert feed(d)["acked_seq"] == 0
        ca.mode = "accept"
        until_acked(d, 1)
        src.close()
        close(net)


def case_kill9_mid_feed_loses_nothing_sends_nothing_twice():
    ca, s = Authority(), Synth(14)
    with network(ca, lag_alert="1h") as net:
        d = net["authlink:0"]
        src = Source(net)
        for _ in range(10):
            assert src.send([entry(s) for _ in range(25)])["body"]["status"] == "accepted"
        until_acked(d, 250)
        # The authority commits what comes and its acks are lost: the link server holds entries
        # the authority has, waiting for acks that never come.
        ca.mode = "commit-no-ack"
        for _ in range(4):
            assert src.send([entry(s) for _ in range(25)])["body"]["status"] == "accepted"
        wait_until("the authority committed 350", lambda: ca.last == 350)
        assert feed(d)["acked_seq"] == 250
        # Killed mid-feed, with 100 entries committed at the authority and unacknowledged here.
        d.kill9()
        src.close()
        ca.mode = "accept"
        d.start()
        src = Source(net)
        for _ in range(6):
            assert src.send([entry(s) for _ in range(25)])["body"]["status"] == "accepted"
        until_acked(d, 500, timeout=60)
        # Every entry applied by the authority exactly once, in order, nothing lost.
        assert sorted(ca.applied) == list(range(1, 501))
        assert set(ca.applied.values()) == {1}, {k: v for k, v in ca.applied.items() if v > 1}
        st = feed(d)
        assert st["last_seq"] == 500 and st["unacked"] == 0, st
        assert store_rows(d.store, "SELECT count(*) FROM outbox_rejected")[0][0] == 0
        src.close()
        close(net)


def case_resend_rules():
    ca, s = Authority(), Synth(15)
    with network(ca) as net:
        d = net["authlink:0"]
        src = Source(net)
        for _ in range(4):
            assert src.send([entry(s), entry(s, "change")])["body"]["status"] == "accepted"
        until_acked(d, 8)
        cert, key = net.cert("ca:jpki")
        with Peer(net["fwgate:east"].address, cert, key, net.ca()) as caller:
            assert caller.connect(AUTHLINK, "ninsho") == "OK"

            def resend(n):
                return caller.exchange(caller.message("ninsho.resend", CA, AUTHLINK,
                                                      {"from": n}))["body"]

            for n in (10, 0, -3):
                b = resend(n)
                assert b["status"] == "rejected" and b["reason"] == "resend-ahead", b
            # A malformed one.
            b = caller.exchange(caller.message("ninsho.resend", CA, AUTHLINK,
                                               {"from": "1"}))["body"]
            assert b["reason"] == "invalid-field", b
            # The authority lost its state from 5 on: asks again; the entries come again.
            ca.last, received = 4, len(net.ca_node.received)
            ca.digest = bytes.fromhex(
                store_rows(d.store, "SELECT hex(digest) FROM feed WHERE seq = 4")[0][0])
            b = resend(5)
            assert b["status"] == "accepted" and b["result"] == {"from": 5, "to": 8}, b
            wait_until("re-sent entries applied", lambda: ca.applied.get(8) == 2)
            assert [ca.applied[i] for i in range(1, 9)] == [1] * 4 + [2] * 4
            again = [doc for _, doc in net.ca_node.received[received:]]
            assert again[0]["body"]["entries"][0]["seq"] == 5
            until_acked(d, 8)
            # Up to the end: nothing more to send, but accepted.
            b = resend(9)
            assert b["status"] == "accepted" and b["result"] == {"from": 9, "to": 8}, b
            # Erased entries cannot be re-sent; the numbering goes on after erasure.
            set_clock(d, 8 * 86400_000)
            d.admin("purge")
            assert feed(d)["erased_to"] == 8
            b = resend(3)
            assert b["status"] == "rejected" and b["reason"] == "resend-erased", b
        assert src.send([entry(s)])["body"]["status"] == "accepted"
        until_acked(d, 9)
        assert feed(d)["last_seq"] == 9 and ca.applied[9] == 1
        asked = [e for e in history(d) if e.get("action") == "ninsho.resend"]
        assert any(e.get("outcome") == "resend-erased" for e in asked), asked
        assert any(e.get("outcome") == "ok" for e in asked), asked
        src.close()
        close(net)


def case_erasure_after_ack_and_keep():
    ca, s = Authority(), Synth(16)
    with network(ca, keep="2d") as net:
        d = net["authlink:0"]
        src = Source(net)
        people = [entry(s, "change") for _ in range(3)]
        assert src.send(people)["body"]["status"] == "accepted"
        until_acked(d, 3)
        ca.mode = "silent"
        assert src.send([entry(s)])["body"]["status"] == "accepted"
        # Within keep: nothing erased.
        set_clock(d, 86400_000)
        report = d.admin("purge")
        assert feed(d)["erased_to"] == 0, report
        # Past keep: the acknowledged entries go, from the file too; the unacked one stays.
        set_clock(d, 3 * 86400_000)
        report = d.admin("purge")
        rule = [r for r in report["rules"] if r["name"] == "feed"][0]
        assert rule["removed"] == 3 and rule["period"] == "keep", rule
        st = feed(d)
        assert st["erased_to"] == 3 and st["last_seq"] == 4 and st["unacked"] == 1, st
        data = store_bytes(d)
        for p in people:
            assert p["code"].encode() not in data and p["items"]["name"].encode() not in data
        # Numbering goes on.
        ca.mode = "accept"
        assert src.send([entry(s)])["body"]["status"] == "accepted"
        until_acked(d, 5)
        assert feed(d)["last_seq"] == 5
        src.close()
        close(net)


def case_lag_alert():
    ca, s = Authority(), Synth(17)
    with network(ca, lag_alert="1s") as net:
        d = net["authlink:0"]
        src = Source(net)
        ca.mode = "silent"
        assert src.send([entry(s)])["body"]["status"] == "accepted"
        wait_until("authlink-lag", lambda: d.alert_counts().get("authlink-lag"))
        alert = [a for a in d.alerts()["recent"] if a["code"] == "authlink-lag"][0]
        assert "seq 1" in alert["detail"], alert
        # Once per episode: the watch (every quarter of lag_alert) finds it late again and
        # again, and says so once.
        wait_until("three periods late", lambda: feed(d)["oldest_unacked_age_ms"] > 3000)
        assert d.alert_counts()["authlink-lag"] == 1
        ca.mode = "accept"
        until_acked(d, 1)
        # A new episode: alerted again.
        ca.mode = "silent"
        assert src.send([entry(s)])["body"]["status"] == "accepted"
        wait_until("authlink-lag again", lambda: d.alert_counts().get("authlink-lag") == 2)
        ca.mode = "accept"
        until_acked(d, 2)
        src.close()
        close(net)


def case_refused_sources_and_bodies():
    ca, s = Authority(), Synth(18)
    with network(ca, extra=["ca:other"]) as net:
        d = net["authlink:0"]
        # A prefecture is not a source of the national link server (policy lets pref:13 reach
        # authlink only in its own prefecture, so none at all here).
        src = Source(net)
        b = src.send([entry(s)], ca="urn:juki:ca:other")["body"]
        assert b["status"] == "rejected" and b["reason"] == "ninsho-wrong-ca", b
        bad = [
            ({"kind": "birth"}, "invalid-field"),
            ({"code": "12345678901"}, None),
            ({"date": "2026-02-30"}, "invalid-field"),
            ({"extra": 1}, "invalid-field"),
            ({"items": {"name": "x"}}, "invalid-field"),
        ]
        for change, reason in bad:
            e = entry(s)
            e.update(change)
            b = src.send([e])["body"]
            assert b["status"] == "rejected", (change, b)
            if reason:
                assert b["reason"] == reason, (change, b)
        b = src.send([])["body"]
        assert b["reason"] == "invalid-field", b
        b = src.send([entry(s) for _ in range(1001)])["body"]
        assert b["reason"] == "invalid-field", b
        e = entry(s)
        assert src.send([e])["body"]["status"] == "accepted"
        # The same entry again (as the other national centre sends it, docs/architecture.md
        # §27): accepted, passed on once. Another entry under its id: refused.
        before = feed(d)["last_seq"]
        assert src.send([dict(e)])["body"]["status"] == "accepted"
        assert feed(d)["last_seq"] == before and feed(d)["received_twice"] == 1, feed(d)
        b = src.send([dict(e, date="2026-04-02")])["body"]
        assert b["status"] == "rejected" and "received before" in b["detail"], b
        # A ninsho.idou from the authority: refused, it is no source.
        cert, key = net.cert("ca:jpki")
        with Peer(net["fwgate:east"].address, cert, key, net.ca()) as caller:
            assert caller.connect(AUTHLINK, "ninsho") == "OK"
            b = idou(caller, [entry(s)], sender=CA)["body"]
            assert b["status"] == "rejected" and b["reason"] == "ninsho-not-source", b
        until_acked(d, 1)
        assert feed(d)["last_seq"] == 1
        # Sources as configured: with only the prefecture listed (after a reload), the national
        # server is refused as any other.
        d.authlink["sources"] = "[urn:juki:pref:13]"
        reload(d)
        b = src.send([entry(s)])["body"]
        assert b["status"] == "rejected" and b["reason"] == "ninsho-not-source", b
        assert feed(d)["last_seq"] == 1
        # The configuration check refuses an authority that is not one, a source of another kind.
        for key, value, said in (("ca", "urn:juki:jlis:0", "not a certification authority"),
                                 ("sources", "[urn:juki:cs:131016]", "neither the national")):
            d.authlink[key] = value
            d.write_config()
            r = subprocess.run([d.binary, "-n", "-f", d.config], capture_output=True, text=True)
            assert r.returncode == 1 and said in r.stderr + r.stdout, (key, r.stderr)
            d.authlink.pop(key)
        d.authlink["ca"] = CA
        d.authlink["sources"] = "[urn:juki:pref:13]"
        d.write_config()
        # Another authority may not ask for a re-send.
        cert, key = net.cert("ca:other")
        with Peer(net["fwgate:east"].address, cert, key, net.ca()) as caller:
            assert caller.connect(AUTHLINK, "ninsho") == "OK"
            b = caller.exchange(caller.message("ninsho.resend", "urn:juki:ca:other", AUTHLINK,
                                               {"from": 1}))["body"]
            assert b["status"] == "rejected" and b["reason"] == "policy-denied", b
        src.close()
        close(net)


if __name__ == "__main__":
    run_cases([case_entries_in_order_with_chaining_digest,
               case_authority_refusing_keeps_entries_queued,
               case_digest_mismatch_keeps_entry_queued,
               case_kill9_mid_feed_loses_nothing_sends_nothing_twice,
               case_resend_rules,
               case_erasure_after_ack_and_keep,
               case_lag_alert,
               case_refused_sources_and_bodies])
