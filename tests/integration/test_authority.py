"""The reference certification authority of the tests (jukitest/authority.py) checked on its
own, before it is trusted as the far end of juki-authlinkd's feed (test_authlink.py).

The CA side without juki (self-test: issue, sign, revoke, CRL, OCSP), then the feed side
through a real juki-fwgated: the test plays juki-authlinkd with authlink:0's certificate
(jukitest Peer) and sends ninsho.feed messages to urn:juki:ca:jpki. Each case checks the
ack (status, reason, detail, the result {seq, digest}), what the authority committed, and
what its OCSP responder and `openssl cms -verify -crl_check` say of the residents'
certificates.
"""

import os

from jukitest import Network, free_port, run_cases, urn, wait_until
from jukitest.authority import ZERO, FeedWriter, authority_node, selftest
from jukitest.peer import Peer
from jukitest.synth import Synth

GW = "fwgate:east"
AUTHLINK = "authlink:0"
CA = "ca:jpki"


def case_selftest():
    """The CA side alone: issuing, signatures, one revocation, the CRL and OCSP."""
    selftest()


class Setup:
    def __init__(self, net, auth, n=4, seed=51):
        self.net, self.auth = net, auth
        s = Synth(seed=seed)
        self.people = [s.person("131016") for _ in range(n)]
        self.certs = auth.issue(self.people)
        cert, key = net.cert(CA)
        auth.serve(net.ca(), cert, key, crl=os.path.join(net.pki, "crl.pem"))
        self.w = FeedWriter()

    def peer(self, name=AUTHLINK):
        cert, key = self.net.cert(name)
        p = Peer(self.net[GW].address, cert, key, self.net.ca())
        answer = p.connect(urn(CA), "ninsho")
        assert answer == "OK", answer
        return p

    def send(self, p, entries, ca=urn(CA)):
        m = p.message("ninsho.feed", urn(AUTHLINK), urn(CA), FeedWriter.body(entries, ca))
        ack = p.exchange(m)
        assert ack["type"] == "ack" and ack["corr"] == m["id"], ack
        assert ack["from"] == urn(CA) and ack["to"] == urn(AUTHLINK), ack
        return ack["body"]

    def ocsp(self):
        paths = [self.certs[p["code"]][1] for p in self.people]
        st = self.auth.ocsp(paths)
        return [st[c] for c in paths]


def with_authority(fn):
    def case():
        holder = []
        try:
            with Network([GW], extra_identities=[CA, AUTHLINK, "cs:131016"],
                         configure=authority_node(holder)) as net:
                try:
                    fn(net, holder[0])
                except BaseException:
                    print(holder[0].log_text()[-4000:])
                    raise
        finally:  # also when the network did not start after the authority was made
            for auth in holder:
                auth.stop()
    case.__name__ = fn.__name__
    case.__doc__ = fn.__doc__
    return case


@with_authority
def case_feed_revokes_and_acks(net, auth):
    """A death and a change revoke exactly those residents' certificates (OCSP, the CRL);
    the ack carries the last seq and its digest; a code-change re-keys, so a later death
    under the new code revokes; the same message again is acked and applied once."""
    s = Setup(net, auth)
    a, b, c, d = s.people
    assert s.ocsp() == ["good"] * 4
    sigs = [auth.sign(*s.certs[p["code"]][1:]) for p in s.people]
    assert all(auth.verify(sg)[0] for sg in sigs)
    p = s.peer()
    e1 = s.w.entry(a["code"], "death")
    e2 = s.w.entry(b["code"], "change", items={"name": "改名 花子", "birth": b["birth"],
                                                 "sex": b["sex"], "address": b["address"],
                                                 "lgcode": "131016"})
    body = s.send(p, [e1, e2])
    assert body == {"status": "accepted", "result": {"seq": 2, "digest": e2["digest"]}}, body
    # Answered at once: the authority kicked its responder before it acked.
    assert s.ocsp() == ["revoked", "revoked", "good", "good"]
    ok, why = auth.verify(sigs[0])
    assert not ok and "certificate revoked" in why, why
    assert not auth.verify(sigs[1])[0] and auth.verify(sigs[2])[0] and auth.verify(sigs[3])[0]

    # The same message again (a lost ack): acked the same, nothing applied again.
    m = p.message("ninsho.feed", urn(AUTHLINK), urn(CA), FeedWriter.body([e1, e2]))
    again = p.exchange(m)["body"]
    assert again == body, again
    assert [r[0] for r in auth.feed_rows()] == [1, 2]
    assert [(q, act) for q, _, act in auth.actions()] == [(1, "revoke"), (2, "revoke")]

    # code-change: the certificate follows the new code; a death under it revokes.
    new_code = Synth(seed=99).code()
    e3 = s.w.entry(c["code"], "code-change", new_code=new_code)
    assert s.send(p, [e3])["status"] == "accepted"
    assert auth.certs_of(new_code) == [s.certs[c["code"]][0]]
    assert s.ocsp() == ["revoked", "revoked", "good", "good"]
    e4 = s.w.entry(new_code, "removal")
    assert s.send(p, [e4])["result"] == {"seq": 4, "digest": e4["digest"]}
    assert s.ocsp() == ["revoked", "revoked", "revoked", "good"]
    assert auth.last_seq() == 4 and auth.ca.state()[1] == e4["digest"]
    p.close()


@with_authority
def case_feed_refusals(net, auth):
    """A gap, a digest that does not chain, a digest that is not the one committed, another
    authority named in the header: each refused with its reason, nothing applied; a sender
    that is not an authlink is denied at the FROM line."""
    s = Setup(net, auth)
    a, b = s.people[:2]
    p = s.peer()
    e1 = s.w.entry(a["code"], "death")
    e2 = s.w.entry(b["code"], "death")
    body = s.send(p, [e2])
    assert body["status"] == "rejected" and body["reason"] == "feed-gap", body
    assert body["detail"] == "expected 1", body
    forged = dict(e1, digest=ZERO)
    body = s.send(p, [forged])
    assert body["reason"] == "feed-digest" and body["detail"] == "seq 1", body
    body = s.send(p, [e1], ca="urn:juki:ca:other")
    assert body["reason"] == "invalid-field" and body["detail"].startswith("header.ca"), body
    assert auth.last_seq() == 0 and auth.feed_rows() == []
    assert s.ocsp() == ["good"] * 4
    assert s.send(p, [e1])["status"] == "accepted"
    # Entry 1 again with another digest than the one committed.
    body = s.send(p, [dict(e1, digest=e2["digest"]), e2])
    assert body["reason"] == "feed-digest" and body["detail"] == "seq 1", body
    assert auth.last_seq() == 1
    assert s.ocsp() == ["revoked", "good", "good", "good"]
    p.close()
    # Only an authlink feeds: the gateway's policy already refuses a CS on ninsho to a ca.
    cert, key = net.cert("cs:131016")
    with Peer(net[GW].address, cert, key, net.ca()) as q:
        answer = q.connect(urn(CA), "ninsho")
        assert answer.startswith("DENY policy"), answer


@with_authority
def case_killed_before_commit(net, auth):
    """SIGKILL after the CA database changed but before the authority's commit: started
    again, the same message (delivered again) is applied once and acked; nothing lost."""
    s = Setup(net, auth)
    a, b = s.people[:2]
    p = s.peer()
    e1 = s.w.entry(a["code"], "death")
    e2 = s.w.entry(b["code"], "removal")
    auth.pause_at("commit")
    m = p.message("ninsho.feed", urn(AUTHLINK), urn(CA), FeedWriter.body([e1, e2]))
    p.send_frame(m)
    wait_until("paused before the commit", lambda: auth.paused() == ["commit", "2"])
    assert auth.ca.revoked_in_index() == {s.certs[a["code"]][0], s.certs[b["code"]][0]}
    auth.kill9()
    assert p.closed()
    auth.release()
    assert auth.last_seq() == 0
    auth.start()
    p = s.peer()
    body = p.exchange(m)["body"]
    assert body == {"status": "accepted", "result": {"seq": 2, "digest": e2["digest"]}}, body
    assert auth.last_seq() == 2 and [r[0] for r in auth.feed_rows()] == [1, 2]
    assert sorted(x[0] for x in auth.actions()) == [1, 2]
    assert s.ocsp() == ["revoked", "revoked", "good", "good"]
    p.close()


if __name__ == "__main__":
    run_cases([case_selftest, case_feed_revokes_and_acks, case_feed_refusals,
               case_killed_before_commit])
