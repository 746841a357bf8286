"""異動等情報 to the certification authority (第6-8(6)), end to end.

The whole loop on loopback with the real daemons: a change recorded at 千代田区's CS (by
an import file or by a clerk) goes CS -> 東京都 -> the national server, which derives the
異動等情報 and hands them to juki-authlinkd (authlink:0), which feeds the authority
(urn:juki:ca:jpki) through the gateway. The authority is the reference one of the tests
(jukitest/authority.py): an OpenSSL CA whose certificates the residents hold, which
revokes with `openssl ca -revoke`, publishes a CRL and answers OCSP with `openssl ocsp`.

Each case asserts what the authority's users would see: the OCSP answer for every
resident's certificate (revoked for exactly those the changes affect, good for the rest),
a signature checked against the CRL, and for the feed itself the sequence numbers
committed at the authority and acknowledged at authlink (nothing lost, nothing applied
twice), refusals with their reason, and authlink's alerts.
"""

import json
import os

from jukitest import (Network, add_residents, run_cases, set_clock, store_bytes, store_rows,
                      urn, wait_until)
from jukitest.authority import authority_node
from jukitest.synth import Synth, change_row, import_csv

GW = "fwgate:east"
A = "cs:131016"   # 千代田区: the residents live here
B = "cs:271004"   # 大阪市: where one of them moves
JLIS = "jlis:0"
AUTHLINK = "authlink:0"
CA = "ca:jpki"
NET = [GW, A, B, "pref:13", "pref:27", JLIS, AUTHLINK]
SMALL = [GW, A, "pref:13", JLIS, AUTHLINK]


def ca_agreement(net):
    """An active agreement with the authority at the national server (method feed),
    added by one supervisor and approved by another."""
    jlis = net[JLIS]
    s1 = jlis.operators.get("s1") or jlis.add_operator("s1", ["supervisor"], ["provide"])
    s2 = jlis.operators.get("s2") or jlis.add_operator("s2", ["supervisor"], ["provide"])
    s1.ctl("agreement", "add", "ca-jpki", "--body", urn(CA), "--methods", "feed", "--items",
           "code,name,birth,sex,address,change", "--keep-days", 30, "--responsible",
           "urn:juki:op:ca:jpki:boss")
    out = s2.ctl("agreement", "approve", "ca-jpki")
    assert out["state"] == "active", out
    return out


class World:
    """The network, residents of 千代田区 with a signing certificate each, the agreement,
    and the authority serving (unless serve=False)."""

    def __init__(self, net, auth, n, seed, serve=True, where=A, lgcode="131016"):
        self.net, self.auth = net, auth
        self.s = Synth(seed=seed)
        self.people = [self.s.person(lgcode) for _ in range(n)]
        add_residents(net[where], self.people)
        wait_until("%d records at jlis" % n,
                   lambda: net[JLIS].status()["records"]["current"] >= n, timeout=60)
        self.certs = auth.issue(self.people)
        ca_agreement(net)
        if serve:
            self.serve()

    def serve(self, **kw):
        cert, key = self.net.cert(CA)
        kw.setdefault("cert", cert)
        kw.setdefault("key", key)
        return self.auth.serve(self.net.ca(), crl=os.path.join(self.net.pki, "crl.pem"), **kw)

    def cert(self, p):
        return self.certs[p["code"]][1]

    def ocsp(self, people=None):
        """{code: good | revoked} for people (default: all), asked of the responder."""
        people = self.people if people is None else people
        st = self.auth.ocsp([self.cert(p) for p in people])
        return {p["code"]: st[self.cert(p)] for p in people}

    def revoked(self):
        return sorted(c for c, v in self.ocsp().items() if v == "revoked")

    def feed(self):
        return self.net[AUTHLINK].status()["feed"]

    def settled(self, n):
        """Wait until the authority committed n entries and authlink saw them acked."""
        wait_until("%d entries committed at the authority" % n,
                   lambda: self.auth.last_seq() >= n, timeout=60)
        wait_until("%d entries acked at authlink" % n,
                   lambda: self.feed()["acked_seq"] >= n and self.feed()["unacked"] == 0,
                   timeout=60)
        assert self.auth.last_seq() == n, (self.auth.last_seq(), n)
        f = self.feed()
        assert f["last_seq"] == n and f["acked_seq"] == n, f

    def applied_once(self):
        """Every committed entry once, numbered 1..n without a gap; every certificate
        revoked at most once; the CA's index agrees with the authority's database."""
        rows = self.auth.feed_rows()
        assert [r[0] for r in rows] == list(range(1, len(rows) + 1)), rows
        assert len({r[1] for r in rows}) == len(rows), rows
        revokes = [x[1] for x in self.auth.actions() if x[2] == "revoke"]
        assert len(revokes) == len(set(revokes)), revokes
        assert set(revokes) == self.auth.ca.revoked_in_index(), \
            (revokes, self.auth.ca.revoked_in_index())

    def import_rows(self, name, rows):
        path = os.path.join(self.net.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(import_csv(rows))
        out = self.net[A].ctl("import", path)
        assert out["state"] == "accepted", out
        return out

    def deaths(self, people, name):
        return self.import_rows(name, [change_row(p, "死亡") for p in people])


def network(names=NET, holder=None, extra=(), configure=None):
    def conf(net):
        authority_node(holder)(net)
        if configure:
            configure(net)
    return Network(names, extra_identities=[CA] + list(extra), configure=conf)


def run_with_authority(fn, names=NET, extra=(), configure=None):
    holder = []
    try:
        with network(names, holder, extra, configure) as net:
            try:
                fn(net, holder[0])
            except BaseException:
                print("===== the authority =====\n" + holder[0].log_text()[-6000:])
                raise
            finally:
                holder[0].stop()
    finally:  # also when the network did not start after the authority was made
        for auth in holder:
            auth.stop()


# -- the cases ---------------------------------------------------------------------------------


def case_changes_revoke_exactly_those():
    """A death, a move and a change of name recorded at 千代田区, by an import file and by
    clerks, reach the authority through CS -> pref -> jlis -> authlink: OCSP answers revoked
    for exactly those residents' certificates and good for the others; a signature made
    with a revoked certificate no longer verifies against the CRL; the others still do."""
    def run(net, auth):
        w = World(net, auth, 10, seed=601)
        p = w.people
        assert set(w.ocsp().values()) == {"good"}
        sigs = {x["code"]: auth.sign(*w.certs[x["code"]][1:]) for x in p}
        assert all(auth.verify(sg)[0] for sg in sigs.values())

        # By import: a death (死亡), a move within the ward (転居), a change of name (氏名変更).
        moved = dict(p[1], address=w.s.address("131016"))
        renamed = dict(p[2], name="改名 太郎")
        w.import_rows("day1.csv", [change_row(p[0], "死亡"), change_row(moved, "転居"),
                                   change_row(renamed, "氏名変更")])
        # By clerks: a change of name (職権修正) at 千代田区, a move to 大阪市 recorded by
        # 大阪市's clerk (転入 there, 転出 at 千代田区 by its 転入通知).
        net[A].ctl("resident", "correct", p[3]["code"], "--name", "訂正 花子")
        net[B].ctl("movein", "--file", "-",
                   input=json.dumps(w.s.moved(p[4], "271004"), ensure_ascii=False))
        affected = sorted(x["code"] for x in p[:5])
        wait_until("the five revoked", lambda: w.revoked() == affected, timeout=60)
        n = w.feed()["last_seq"]
        w.settled(n)
        st = w.ocsp()
        assert sorted(c for c, v in st.items() if v == "good") == \
            sorted(x["code"] for x in p[5:]), st
        # In record order: the import file's three (one message), the clerk's correction,
        # then the move (転出 at 千代田区 and/or 転入 at 大阪市, in the order they reached
        # the national server).
        kinds = [kind for _, _, kind in auth.feed_rows()]
        assert kinds[:4] == ["death", "change", "change", "change"], kinds
        assert kinds[4:] and set(kinds[4:]) <= {"removal", "change"}, kinds
        # Each resident's certificate revoked by the first entry about them.
        serial = {w.certs[x["code"]][0]: i for i, x in enumerate(p)}
        assert sorted(serial[s_] for _, s_, act in auth.actions() if act == "revoke") == \
            [0, 1, 2, 3, 4], auth.actions()
        w.applied_once()
        for x in p:
            ok, why = auth.verify(sigs[x["code"]])
            if x["code"] in affected:
                assert not ok and "certificate revoked" in why, (x["code"], why)
            else:
                assert ok, (x["code"], why)
        # The authority was told the items, never more than the agreement allows; the
        # national server counted what it sent.
        assert net[JLIS].status()["ninsho"]["sent_entries"] == n
    run_with_authority(run)


def case_no_certificate_change_sends_nothing():
    """A change the authority has no use for (a kana-only correction, a birth: a new code
    with no certificate) sends nothing: the next thing the authority receives is the death
    recorded after them, as entry 1."""
    def run(net, auth):
        w = World(net, auth, 3, seed=602)
        p = w.people
        net[A].ctl("resident", "correct", p[0]["code"], "--kana", "カナ ダケ")
        baby = w.s.person("131016")
        w.import_rows("births.csv", [change_row(baby, "出生")])
        wait_until("the birth at jlis", lambda: net[JLIS].status()["records"]["current"] == 4)
        w.deaths([p[1]], "death.csv")
        w.settled(1)
        rows = auth.feed_rows()
        assert [(r[0], r[2]) for r in rows] == [(1, "death")], rows
        assert w.revoked() == [p[1]["code"]]
        assert net[JLIS].status()["ninsho"]["sent_entries"] == 1
    run_with_authority(run, SMALL)


def case_authority_killed_mid_feed():
    """The authority is killed (SIGKILL) after revoking in its CA database but before its
    commit, with more deaths queued behind; started again, the feed goes on where it was
    acked: every death revoked, every entry applied once, authlink acked to the end."""
    def run(net, auth):
        w = World(net, auth, 8, seed=603)
        p = w.people
        auth.pause_at("commit")
        w.deaths(p[:2], "d1.csv")
        wait_until("the authority paused", lambda: auth.paused() is not None)
        w.deaths(p[2:4], "d2.csv")
        w.deaths(p[4:6], "d3.csv")
        wait_until("six entries at authlink", lambda: w.feed()["last_seq"] == 6)
        auth.kill9()
        auth.release()
        assert auth.last_seq() == 0 and w.feed()["acked_seq"] == 0
        auth.start()
        w.settled(6)
        w.applied_once()
        # Entries 1..2 were committed once, by the second process (the first died first).
        assert auth.log_text().count("committed seq 1..2 ") == 1, auth.log_text()
        assert w.revoked() == sorted(x["code"] for x in p[:6])
    run_with_authority(run)


def case_authlink_killed_mid_feed():
    """juki-authlinkd is killed (SIGKILL) while the authority holds the ack of what it
    committed; more deaths come while it is down. Started again, it delivers the unacked
    message again (the authority skips what it has, acks) and the rest: nothing lost,
    nothing applied twice."""
    def run(net, auth):
        w = World(net, auth, 8, seed=604)
        p = w.people
        auth.pause_at("ack")
        w.deaths(p[:2], "d1.csv")
        wait_until("committed, the ack held", lambda: auth.paused() == ["ack", "2"])
        net[AUTHLINK].kill9()
        auth.release()
        w.deaths(p[2:4], "d2.csv")
        net[AUTHLINK].start()
        w.deaths(p[4:5], "d3.csv")
        w.settled(5)
        w.applied_once()
        # The message whose ack was lost came again and was skipped, not applied again.
        log = auth.log_text()
        assert log.count("committed seq 1..2 ") == 1 and "skipped seq 1..2:" in log, log
        assert w.revoked() == sorted(x["code"] for x in p[:5])
    run_with_authority(run)


def other_pki(net):
    """A PKI of another CA with a certificate that names the authority (a forgery)."""
    out = os.path.join(net.dir, "other-pki")
    topo = os.path.join(net.dir, "other-topology.yaml")
    with open(topo, "w") as f:
        f.write("ca: another CA\nnodes:\n  - %s\n" % urn(CA))
    from jukitest import run_ctl
    run_ctl("pki", "init", "--out", out, topo)
    return os.path.join(out, "ca-jpki.crt"), os.path.join(out, "ca-jpki.key")


def case_wrong_consumer_refused():
    """A consumer at the authority's address with a certificate of another CA, with another
    node's certificate (outside, or only in the inner session) or with none is refused at
    the handshake: nothing is delivered to it, nothing acked, the entry stays queued at
    authlink; the real authority, started at last, gets it once."""
    def run(net, auth):
        w = World(net, auth, 3, seed=605, serve=False)
        w.deaths(w.people[:1], "d1.csv")
        wait_until("the entry at authlink", lambda: w.feed()["last_seq"] == 1)
        wrong_ca = other_pki(net)
        cs = net.cert(A)
        expected = {"urn:juki:cs:131016": "expected %s, peer is %s" % (urn(CA), urn(A))}
        cases = [
            # The gateway's outer handshake with the consumer fails: DENY unreachable.
            ("another CA", {"cert": wrong_ca[0], "key": wrong_ca[1]},
             "DENY unreachable %s: unknown-ca" % urn(CA), ("fwgate", "destination-failed")),
            ("another kind", {"cert": cs[0], "key": cs[1]},
             "DENY unreachable %s: %s" % (urn(CA), expected[urn(A)]),
             ("fwgate", "identity-mismatch")),
            # Right outside, another node inside: authlink's own inner handshake refuses.
            ("another kind inside", {"inner": list(cs)}, expected[urn(A)],
             ("authlink", "identity-mismatch")),
            ("none", {"cert": None, "key": None, "none": True},
             "DENY unreachable %s: " % urn(CA), ("fwgate", "destination-failed")),
        ]
        for what, kw, why, (where, alert) in cases:
            node = net[GW] if where == "fwgate" else net[AUTHLINK]
            alerts = node.alert_counts().get(alert, 0)
            before = len(auth.log_text())
            w.serve(**kw)

            def refused():
                links = [x for x in net[AUTHLINK].status()["outbound"]["links"]
                         if x["dest"] == urn(CA)]
                err = links and links[0].get("last_error") or ""
                return "Connection refused" not in err and err
            err = wait_until("authlink refused by %s" % what, refused, timeout=30)
            assert why in err, (what, err)
            wait_until("the alert %s at %s" % (alert, where),
                       lambda: node.alert_counts().get(alert, 0) > alerts)
            auth.kill9()
            wait_until("the consumer gone", lambda: "Connection refused" in (
                net[AUTHLINK].status()["outbound"]["links"][0].get("last_error") or ""))
            assert "committed" not in auth.log_text()[before:], what
            assert auth.last_seq() == 0, what
            f = w.feed()
            assert f["acked_seq"] == 0 and f["unacked"] == 1, (what, f)
            assert net[AUTHLINK].alert_counts().get("authlink-refused", 0) == 0
        w.serve()
        w.settled(1)
        w.applied_once()
        assert w.revoked() == [w.people[0]["code"]]
    run_with_authority(run, SMALL, extra=[])


def case_resend():
    """The authority asks for a re-send through the gateway with its own certificate: from
    ahead of what was sent, refused (resend-ahead); from 2, accepted {from, to}: the feed
    comes again, is skipped and acked, nothing applied twice; restored from a backup that
    lacks entry 3, it asks from 3 and applies entry 3 again, once."""
    def run(net, auth):
        w = World(net, auth, 4, seed=606)
        w.deaths(w.people[:3], "d1.csv")
        w.settled(3)
        cert, key = net.cert(CA)
        ack = auth.resend(net[GW].address, cert, key, net.ca(), urn(AUTHLINK), 5)
        body = ack["body"]
        assert body["status"] == "rejected" and body["reason"] == "resend-ahead", body
        assert body["detail"] == "from: 1 to 4", body
        ack = auth.resend(net[GW].address, cert, key, net.ca(), urn(AUTHLINK), 2)
        assert ack["body"] == {"status": "accepted", "result": {"from": 2, "to": 3}}, ack
        wait_until("2..3 delivered again", lambda: "skipped seq 2..3" in auth.log_text())
        w.settled(3)
        w.applied_once()
        assert auth.log_text().count("authority: committed") == 1
        assert w.revoked() == sorted(x["code"] for x in w.people[:3])
        # The authority restored from a backup that lacks entry 3 (protocol.md §16.5: it sets
        # L = 2 and D to its digest at 2 and asks from 3): entry 3 is applied again, once.
        auth.ca.rewind(3)
        assert auth.last_seq() == 2
        ack = auth.resend(net[GW].address, cert, key, net.ca(), urn(AUTHLINK), 3)
        assert ack["body"] == {"status": "accepted", "result": {"from": 3, "to": 3}}, ack
        wait_until("entry 3 committed again", lambda: "committed seq 3..3 " in auth.log_text())
        w.settled(3)
        w.applied_once()
        assert [(q, act) for q, _, act in auth.actions()] == \
            [(1, "revoke"), (2, "revoke"), (3, "revoke")], auth.actions()
        assert w.revoked() == sorted(x["code"] for x in w.people[:3])
    run_with_authority(run, SMALL)


def case_erasure_after_keep():
    """Entries the authority acknowledged are erased at authlink once authlink.keep has
    passed (juki-ctl purge), and the numbering and the chain go on from where they were:
    the next death is entry n+1 and the authority takes it."""
    def run(net, auth):
        w = World(net, auth, 4, seed=607)
        w.deaths(w.people[:2], "d1.csv")
        w.settled(2)
        al = net[AUTHLINK]
        assert store_rows(al.store, "SELECT count(*) FROM feed")[0][0] == 2
        set_clock(al, 8 * 86400_000)  # authlink.keep is 7d by default
        al.admin("purge")
        assert store_rows(al.store, "SELECT count(*) FROM feed")[0][0] == 0
        f = w.feed()
        assert f["erased_to"] == 2 and f["last_seq"] == 2 and f["acked_seq"] == 2, f
        for x in w.people[:2]:
            assert x["code"].encode() not in store_bytes(al), "a code left on disk"
        w.deaths(w.people[2:3], "d2.csv")
        w.settled(3)
        w.applied_once()
        assert w.revoked() == sorted(x["code"] for x in w.people[:3])
    run_with_authority(run, SMALL)


def case_lag_alert():
    """With the authority away, the oldest entry waits longer than authlink.lag_alert:
    alert authlink-lag, once for the episode, no personal data in it; the authority back,
    the feed catches up."""
    def conf(net):
        net[AUTHLINK].authlink["lag_alert"] = "1s"

    def run(net, auth):
        w = World(net, auth, 3, seed=608, serve=False)
        w.deaths(w.people[:1], "d1.csv")
        w.deaths(w.people[1:2], "d2.csv")
        wait_until("authlink-lag", lambda: net[AUTHLINK].alert_counts().get("authlink-lag"),
                   timeout=30)
        alerts = [a for a in net[AUTHLINK].alerts()["recent"] if a["code"] == "authlink-lag"]
        text = json.dumps(alerts, ensure_ascii=False)
        for x in w.people:
            assert x["code"] not in text and x["name"] not in text, text
        assert w.feed()["unacked"] == 2 and w.feed()["oldest_unacked_age_ms"] >= 1000
        w.serve()
        w.settled(2)
        assert net[AUTHLINK].alert_counts()["authlink-lag"] == 1
    run_with_authority(run, SMALL, configure=conf)


if __name__ == "__main__":
    run_cases([case_changes_revoke_exactly_those, case_no_certificate_change_sends_nothing,
               case_authority_killed_mid_feed, case_authlink_killed_mid_feed,
               case_wrong_consumer_refused, case_resend, case_erasure_after_keep,
               case_lag_alert])
