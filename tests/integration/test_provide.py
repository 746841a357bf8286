"""Provision of identity information to agencies and executive bodies (第6-8(1)–(5), CTest
label `provide`), with real daemons, certificates and the gateway: the agreements (協議) a
prefectural or the national server provides under and their life; provide.query and
provide.batch through the gateway from a body's node certificate (outer TLS) and a staff
member's card (inner TLS); every refusal and its reason code, all before a record is read;
only the agreed items of the current record; the exact four-item lookup; the provision
records (提供状況) written and erased after provision.keep without a trace in the store file.

A body's side here is jukitest.peer.Peer (the body's own client is juki-ctl provide).
"""

import base64
import hashlib
import json
import os
import signal
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jukitest import (Network, add_residents, fails, history, run_cases, set_clock,
                      store_bytes, store_rows, urn, wait_until, years_on)
from jukitest.peer import Peer, uuid7
from jukitest.synth import Synth

GW, A, PREF, JLIS = "fwgate:east", "cs:131016", "pref:13", "jlis:0"
NET = [GW, A, PREF, JLIS]
NENKIN, KOKUZEI = "agency:nenkin", "agency:kokuzei"
EXEC13, EXEC27 = "exec:13-kyoiku", "exec:272001-zeimu"
SATO, BOSS = "op:agency:nenkin:sato", "op:agency:nenkin:boss"
KATO = "op:agency:kokuzei:kato"
ITO, ONO = "op:exec:13-kyoiku:ito", "op:exec:272001-zeimu:ono"
TANAKA = "op:cs:131016:tanaka"
BODIES = [NENKIN, KOKUZEI, EXEC13, EXEC27, SATO, BOSS, KATO, ITO, ONO, TANAKA]
DAY_MS = 86400_000
PURPOSE = "年金給付の現況確認(提供試験)"


def configure(net):
    """The shipped example 事務 list at both providing servers."""
    src = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "jimu-example.csv")
    path = os.path.join(net.dir, "jimu.csv")
    with open(src, encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        out.write(f.read())
    for node in (PREF, JLIS):
        net[node].extra["provide"] = "{jimu: '%s'}" % path


def network(**kw):
    return Network(NET, extra_identities=BODIES, configure=kw.pop("configure", configure), **kw)


def residents(net, n, seed):
    s = Synth(seed=seed)
    people = [s.person("131016") for _ in range(n)]
    add_residents(net[A], people)
    for node in (PREF, JLIS):
        wait_until("%d records at %s" % (n, node),
                   lambda node=node: net[node].status()["records"]["current"] == n)
    return people


def reload(net, node, path, text, fails=False):
    """Write the 事務 list and reload the daemon; wait for the list to be taken (or kept)."""
    d = net[node]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    word = "reload refused" if fails else "事務 list of"
    before = d.log_text().count(word)
    d.signal(signal.SIGHUP)
    wait_until("%s read its 事務 list" % node, lambda: d.log_text().count(word) > before)


def supervisors(net, node):
    return (net[node].add_operator("s1", ["supervisor"]),
            net[node].add_operator("s2", ["supervisor"]))


def agreement(sup, ident, body=NENKIN, jimu="1-1,1-3", items="code,name,birth,sex,address",
              methods="online,batch", cap=100, bulk=10, responsible=BOSS):
    return sup.ctl("agreement", "add", ident, "--body", urn(body), "--jimu", jimu, "--items",
                   items, "--methods", methods, "--daily-cap", cap, "--bulk-threshold", bulk,
                   "--keep-days", 30, "--responsible", urn(responsible))


def active(net, node, ident, **kw):
    s1, s2 = net[node].operators.get("s1"), net[node].operators.get("s2")
    if s1 is None:
        s1, s2 = supervisors(net, node)
    agreement(s1, ident, **kw)
    return s2.ctl("agreement", "approve", ident)


class Body:
    """A body's link to a providing server: its node certificate outside, a card inside."""

    def __init__(self, net, body, staff, to, outer=None):
        self.net, self.body, self.to = net, urn(body), urn(to)
        cert, key = net.cert(outer or body)
        inner = net.cert(staff) if staff else None
        self.peer = Peer(net[GW].address, cert, key, net.ca(), inner=inner)

    def __enter__(self):
        answer = self.peer.connect(self.to, "provide")
        assert answer == "OK", answer
        return self

    def __exit__(self, *exc):
        self.peer.close()
        return False

    def send(self, type_, body, sender=None):
        ack = self.peer.exchange(self.peer.message(type_, sender or self.body, self.to, body))
        assert ack["type"] == "ack", ack
        return ack["body"]

    def query(self, ident, code=None, four=None, jimu="1-3", items=None, purpose=PURPOSE):
        body = {"agreement": ident, "jimu": jimu, "purpose": purpose}
        if items is not None:
            body["items"] = items
        if code is not None:
            body["code"] = code
        if four is not None:
            body.update(four)
        return self.send("provide.query", body)


def ask(net, body, staff, to, ident, **kw):
    with Body(net, body, staff, to) as b:
        return b.query(ident, **kw)


def refused(ack, reason):
    assert ack["status"] == "rejected" and ack["reason"] == reason, ack
    return ack


def four_of(p):
    return {k: p[k] for k in ("name", "birth", "sex", "address", "lgcode")}


def provisions(net, node):
    return store_rows(net[node].store, "SELECT kind, code, body, staff, agreement, jimu, items,"
                      " purpose, request, origin FROM provisions ORDER BY time_ms, id")


# -- agreements and online queries ----------------------------------------------------------

def case_agreement_lifecycle():
    """Added pending, refused while pending; the adder cannot approve, another supervisor
    does; suspended, resumed, ended; every change in the operation history."""
    with network() as net:
        people = residents(net, 5, seed=81)
        code = people[0]["code"]
        s1, s2 = supervisors(net, PREF)
        added = agreement(s1, "nenkin-1")
        assert added["state"] == "pending" and added["added_by"] == s1.urn, added
        refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=code), "agreement-inactive")
        _, err, _ = fails(s1.ctl, "agreement", "approve", "nenkin-1")
        assert err == "forbidden", err
        # Added twice, or with a 事務 not on the list, or a responsible of another body: no.
        assert fails(agreement, s1, "nenkin-1")[1] == "conflict"
        assert fails(agreement, s1, "nenkin-2", jimu="1-77")[1] == "usage"
        assert fails(agreement, s1, "nenkin-2", responsible=KATO)[1] == "usage"
        approved = s2.ctl("agreement", "approve", "nenkin-1")
        assert approved["state"] == "active" and approved["approved_by"] == s2.urn, approved
        ok = ask(net, NENKIN, SATO, PREF, "nenkin-1", code=code)
        assert ok["status"] == "accepted" and ok["result"]["found"], ok
        assert s1.ctl("agreement", "suspend", "nenkin-1")["state"] == "suspended"
        ack = refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=code), "agreement-inactive")
        assert "suspended" in ack["detail"], ack
        assert fails(s1.ctl, "agreement", "approve", "nenkin-1")[1] == "conflict"
        assert s2.ctl("agreement", "resume", "nenkin-1")["state"] == "active"
        assert ask(net, NENKIN, SATO, PREF, "nenkin-1", code=code)["status"] == "accepted"
        # A 事務 taken off the list at a reload stops the agreement's use of it; a list that
        # does not parse leaves the one in use.
        path = os.path.join(net.dir, "jimu.csv")
        with open(path, encoding="utf-8") as f:
            listed = f.read()
        reload(net, PREF, path, "".join(l for l in listed.splitlines(True)
                                       if not l.startswith("1,3,")))
        assert "1-3" not in [j["jimu"] for j in net[PREF].admin("jimu")["jimu"]]
        ack = refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=code), "jimu-not-agreed")
        assert "list" in ack["detail"], ack
        reload(net, PREF, path, listed)
        reload(net, PREF, path, "7,1,no such table\n", fails=True)
        assert len(net[PREF].admin("jimu")["jimu"]) == 6
        assert ask(net, NENKIN, SATO, PREF, "nenkin-1", code=code)["status"] == "accepted"
        assert s1.ctl("agreement", "end", "nenkin-1")["state"] == "ended"
        ack = refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=code), "agreement-inactive")
        assert "ended" in ack["detail"], ack
        assert fails(s2.ctl, "agreement", "resume", "nenkin-1")[1] == "conflict"
        shown = net[PREF].admin("agreement", "show", "nenkin-1")
        assert shown["state"] == "ended" and shown["used_today"] == 3, shown
        listed = net[PREF].admin("agreement", "list", "--state", "ended")
        assert [a["id"] for a in listed["agreements"]] == ["nenkin-1"], listed
        # Every change, by whom, in the operation history.
        done = [(e["operator"], e["action"], e["outcome"]) for e in history(net[PREF])
                if e["action"].startswith("agreement.") and e.get("target") == "nenkin-1"]
        for want in [(s1.urn, "agreement.add", "ok"), (s1.urn, "agreement.approve", "forbidden"),
                     (s2.urn, "agreement.approve", "ok"), (s1.urn, "agreement.suspend", "ok"),
                     (s2.urn, "agreement.resume", "ok"), (s1.urn, "agreement.end", "ok")]:
            assert want in done, (want, done)
        assert len(provisions(net, PREF)) == 3


def case_online_query_items_and_refusals():
    """Only agreed (and asked) items of the current record; the exact four items; each
    refusal with its reason code, before any record is read; provision records written, no
    personal data in the log."""
    with network() as net:
        people = residents(net, 20, seed=82)
        p = people[3]
        active(net, PREF, "nenkin-1", items="code,name,address", methods="online", cap=12)
        ok = ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"])
        assert ok["status"] == "accepted", ok
        erase_by = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 9 * 3600 + 30 * 86400))
        assert ok["result"] == {"found": True, "record": {
            "code": p["code"], "name": p["name"], "address": p["address"],
            "lgcode": "131016"}, "keep_days": 30, "erase_by": erase_by}, ok
        # Asked a subset: that subset.
        ok = ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"], items=["name"])
        assert ok["result"]["record"] == {"name": p["name"]}, ok
        # The exact four items find the person; a near miss finds nobody.
        ok = ask(net, NENKIN, SATO, PREF, "nenkin-1", four=four_of(p))
        assert ok["result"]["found"] and ok["result"]["record"]["code"] == p["code"], ok
        near = dict(four_of(p), name=p["name"][:-1])
        ok = ask(net, NENKIN, SATO, PREF, "nenkin-1", four=near)
        assert ok["status"] == "accepted" and not ok["result"]["found"], ok
        assert "record" not in ok["result"], ok
        ok = ask(net, NENKIN, SATO, PREF, "nenkin-1", four=dict(four_of(p), lgcode="271004"))
        assert not ok["result"]["found"], ok
        ok = ask(net, NENKIN, SATO, PREF, "nenkin-1", code="11111111113")
        assert not ok["result"]["found"], ok
        # Refusals.
        refused(ask(net, NENKIN, SATO, PREF, "nenkin-9", code=p["code"]), "no-agreement")
        refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"], jimu="1-2"),
                "jimu-not-agreed")
        refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"], items=["birth"]),
                "item-not-agreed")
        with Body(net, NENKIN, SATO, PREF) as b:
            refused(b.send("provide.batch", {
                "agreement": "nenkin-1", "jimu": "1-3", "purpose": PURPOSE,
                "batch": {"id": uuid7(), "count": 1, "part": 0, "parts": 1},
                "queries": [{"code": p["code"]}]}), "method-not-agreed")
        # Another body's agreement is not this one's: no-agreement, not a hint.
        refused(ask(net, KOKUZEI, KATO, PREF, "nenkin-1", code=p["code"]), "no-agreement")
        refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"], purpose=""),
                "invalid-field")
        refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"][:-1] + "0"
                    if p["code"][-1] != "0" else p["code"][:-1] + "1"), "check-digit")
        # The same message again is a duplicate (no second record, not counted); its id with
        # other bytes a replay.
        with Body(net, NENKIN, SATO, PREF) as b:
            doc = b.peer.message("provide.query", b.body, b.to, {
                "agreement": "nenkin-1", "jimu": "1-3", "purpose": PURPOSE, "code": p["code"]})
            assert b.peer.exchange(doc)["body"]["status"] == "accepted"
            assert b.peer.exchange(doc)["body"]["status"] == "duplicate"
            doc["body"]["purpose"] = "別の目的"
            refused(b.peer.exchange(doc)["body"], "replay-mismatch")
        # The cap: 12 a Japan day; 7 asked so far (refusals and duplicates are not counted).
        for _ in range(5):
            assert ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"])["status"] == \
                "accepted"
        refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"]), "over-cap")
        refused(ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"]), "over-cap")
        # One alert per agreement and Japan day, however many refusals.
        assert net[PREF].alert_counts().get("provide-over-cap") == 1
        rows = provisions(net, PREF)
        # Found: code, subset, four, the one sent twice, then five more; not-found answers
        # leave no record.
        assert len(rows) == 9, rows
        kind, code, body, staff, agr, jimu, items, purpose, request, origin = rows[0]
        assert (kind, code, body, staff, agr, jimu, items, purpose, origin) == (
            "provide", p["code"], urn(NENKIN), urn(SATO), "nenkin-1", "1-3",
            "code,name,address", PURPOSE, urn(PREF)), rows[0]
        assert rows[1][6] == "name", rows[1]
        assert len({r[8] for r in rows}) == 9  # one request each
        log = net[PREF].log_text()
        for secret in (p["name"], p["address"], PURPOSE):
            assert secret not in log, secret


# -- who may ask --------------------------------------------------------------------------

RELAXED = "  - { service: provide, from: exec,     to: pref,     same_prefecture: true }\n"


def relaxed(net):
    """The shipped policy, but an executive body may reach any prefecture: so that the
    server's own check (other-prefecture) is what refuses it."""
    configure(net)
    with open(net.policy, encoding="utf-8") as f:
        text = f.read()
    assert RELAXED in text
    with open(net.policy, "w", encoding="utf-8") as f:
        f.write(text.replace(RELAXED, "  - { service: provide, from: exec, to: pref }\n"))


def case_who_may_ask():
    """Bodies only (a CS is not-a-body), through a staff card of that very body (its own
    certificate: no-staff-card; another body's card, a CS operator's card: the inner
    handshake fails); an executive body of another prefecture is refused at a prefecture
    (other-prefecture) but served by the nation; the shipped policy stops it at the gateway."""
    with network(configure=relaxed) as net:
        people = residents(net, 3, seed=83)
        code = people[0]["code"]
        active(net, PREF, "kyoiku-1", body=EXEC13, jimu="2-1", responsible=ITO)
        active(net, PREF, "zeimu-1", body=EXEC27, jimu="4-1", responsible=ONO)
        active(net, JLIS, "zeimu-1", body=EXEC27, jimu="4-1", responsible=ONO)
        ok = ask(net, EXEC13, ITO, PREF, "kyoiku-1", code=code, jimu="2-1")
        assert ok["status"] == "accepted" and ok["result"]["found"], ok
        refused(ask(net, EXEC27, ONO, PREF, "zeimu-1", code=code, jimu="4-1"),
                "other-prefecture")
        ok = ask(net, EXEC27, ONO, JLIS, "zeimu-1", code=code, jimu="4-1")
        assert ok["status"] == "accepted" and ok["result"]["found"], ok
        # The body's own certificate inside: no staff member named.
        refused(ask(net, EXEC13, None, PREF, "kyoiku-1", code=code, jimu="2-1"),
                "no-staff-card")
        # A municipality on provide (allowed for its reports) is not a body.
        with Body(net, A, None, PREF) as b:
            refused(b.query("kyoiku-1", code=code, jimu="2-1"), "not-a-body")
        # Inner certificates that are not a staff card of the announced body.
        before = net[PREF].alert_counts().get("identity-mismatch", 0)
        for outer, inner in ((NENKIN, KATO), (A, TANAKA), (EXEC13, ONO)):
            # In TLS 1.3 the client's handshake ends before the server judges the client's
            # certificate: the refusal shows as a closed tunnel on the first exchange.
            b = Body(net, outer, inner, PREF)
            try:
                b.__enter__()
                b.query("kyoiku-1", code=code, jimu="2-1")
                raise AssertionError("inner %s under %s was let in" % (inner, outer))
            except (ConnectionError, OSError):
                pass
            finally:
                b.peer.close()
        wait_until("three identity-mismatch alerts", lambda: net[PREF].alert_counts().get(
            "identity-mismatch", 0) == before + 3)
        # A staff card on another service: the body has no rule there at all.
        cert, key = net.cert(NENKIN)
        with Peer(net[GW].address, cert, key, net.ca(), inner=net.cert(SATO)) as p:
            assert p.connect(urn(PREF), "honnin").startswith("DENY"), "honnin let in"
        assert len(provisions(net, PREF)) == 1 and len(provisions(net, JLIS)) == 1
    # With the shipped policy the gateway itself refuses the other prefecture's body.
    with network() as net:
        cert, key = net.cert(EXEC27)
        with Peer(net[GW].address, cert, key, net.ca(), inner=net.cert(ONO)) as p:
            answer = p.connect(urn(PREF), "provide")
            assert answer.startswith("DENY policy"), answer


# -- batches --------------------------------------------------------------------------------

def line(q):
    if "code" in q:
        return "code:%s\n" % q["code"]
    return "four:%s\t%s\t%d\t%s\t%s\n" % (q["name"], q["birth"], q["sex"], q["lgcode"],
                                          q["address"])


def part_hash(queries):
    return hashlib.sha256("".join(line(q) for q in queries).encode()).hexdigest()


def approval(net, signer, body, batch_id, count, parts):
    text = "juki-provide-approval/1\n%s\n%s\n%d\n" % (urn(body), batch_id, count)
    text += "".join(h + "\n" for h in parts)
    cert, key = net.cert(signer)
    with open(key, "rb") as f:
        k = serialization.load_pem_private_key(f.read(), None)
    sig = k.sign(text.encode(), ec.ECDSA(hashes.SHA256()))
    with open(cert, encoding="ascii") as f:
        pem = f.read()
    return {"responsible": urn(signer), "cert": pem, "parts": parts,
            "sig": base64.b64encode(sig).decode()}


def batch_body(ident, batch_id, count, part, parts, queries, appr=None):
    body = {"agreement": ident, "jimu": "1-3", "purpose": PURPOSE,
            "batch": {"id": batch_id, "count": count, "part": part, "parts": parts},
            "queries": queries}
    if appr is not None:
        body["approval"] = appr
    return body


def case_batch():
    """A batch: answers in query order; over the bulk threshold it needs the 責任者's
    approval of exactly these parts (none: approval-required; another signer, another
    batch, another part: approval-invalid); a part answered twice is bad-batch; 2,000
    queries in two parts of 1,000 at the national server."""
    with network() as net:
        people = residents(net, 1000, seed=84)
        codes = [{"code": p["code"]} for p in people]
        for node in (PREF, JLIS):
            active(net, node, "nenkin-b", cap=100000, bulk=10)
        with Body(net, NENKIN, SATO, PREF) as b:
            small = [codes[0], {"code": "11111111113"}, four_of(people[2]), {"code": "x"}]
            ack = b.send("provide.batch", batch_body("nenkin-b", uuid7(), 4, 0, 1, small))
            assert ack["status"] == "accepted", ack
            answers = ack["result"]["answers"]
            assert answers[0]["found"] and answers[0]["record"]["code"] == people[0]["code"]
            assert answers[1] == {"found": False}, answers
            assert answers[2]["record"]["code"] == people[2]["code"], answers
            assert answers[3]["refused"] == "invalid-field", answers
            # 20 queries > 10: approval needed.
            bid = uuid7()
            part = codes[:20]
            refused(b.send("provide.batch", batch_body("nenkin-b", bid, 20, 0, 1, part)),
                    "approval-required")
            wrong = approval(net, SATO, NENKIN, bid, 20, [part_hash(part)])
            ack = refused(b.send("provide.batch", batch_body("nenkin-b", bid, 20, 0, 1, part,
                                                             wrong)), "approval-invalid")
            other = approval(net, BOSS, NENKIN, uuid7(), 20, [part_hash(part)])
            refused(b.send("provide.batch", batch_body("nenkin-b", bid, 20, 0, 1, part, other)),
                    "approval-invalid")
            swapped = approval(net, BOSS, NENKIN, bid, 20, [part_hash(codes[20:40])])
            refused(b.send("provide.batch", batch_body("nenkin-b", bid, 20, 0, 1, part,
                                                       swapped)), "approval-invalid")
            good = approval(net, BOSS, NENKIN, bid, 20, [part_hash(part)])
            ack = b.send("provide.batch", batch_body("nenkin-b", bid, 20, 0, 1, part, good))
            assert ack["status"] == "accepted", ack
            assert [a["record"]["code"] for a in ack["result"]["answers"]] == \
                [q["code"] for q in part]
            again = b.send("provide.batch", batch_body("nenkin-b", bid, 20, 0, 1, part, good))
            refused(again, "bad-batch")
            refused(b.send("provide.batch", batch_body("nenkin-b", uuid7(), 3, 1, 1, codes[:3])),
                    "bad-batch")
            # Oversized: 1,001 queries in a part; a count its parts cannot hold.
            ack = refused(b.send("provide.batch", batch_body("nenkin-b", uuid7(), 1001, 0, 2,
                                                             codes + codes[:1])), "bad-batch")
            assert "queries" in ack["detail"], ack
            refused(b.send("provide.batch", batch_body("nenkin-b", uuid7(), 1001, 0, 1,
                                                       codes[:3])), "bad-batch")
            body = batch_body("nenkin-b", uuid7(), 3, 0, 1, codes[:3])
            body["extra"] = 1
            refused(b.send("provide.batch", body), "invalid-field")
        assert net[PREF].alert_counts().get("provide-approval-invalid") == 3
        assert len(provisions(net, PREF)) == 2 + 20
        # The nation: two parts of 1,000, one approval for both.
        bid, parts = uuid7(), [codes, list(reversed(codes))]
        appr = approval(net, BOSS, NENKIN, bid, 2000, [part_hash(q) for q in parts])
        with Body(net, NENKIN, SATO, JLIS) as b:
            start = time.monotonic()
            for i, q in enumerate(parts):
                ack = b.send("provide.batch", batch_body("nenkin-b", bid, 2000, i, 2, q, appr))
                assert ack["status"] == "accepted", ack
                assert all(a["found"] for a in ack["result"]["answers"])
            took = time.monotonic() - start
        assert len(provisions(net, JLIS)) == 2000
        print("2,000 batch queries at jlis in %.2f s" % took)


# -- erasure --------------------------------------------------------------------------------







def case_provision_records_erased():
    """provision.keep (5 years by default): a day short, nothing is due; after it the
    provision records go (juki-ctl purge, --dry-run counts) and their bytes are gone from
    the store file and its WAL."""
    with network() as net:
        people = residents(net, 3, seed=85)
        active(net, PREF, "nenkin-1")
        for p in people:
            assert ask(net, NENKIN, SATO, PREF, "nenkin-1", code=p["code"])["status"] == \
                "accepted"
        assert len(provisions(net, PREF)) == 3
        assert PURPOSE.encode() in store_bytes(net[PREF])
        set_clock(net[PREF], years_on(5, -1))
        dry = net[PREF].ctl("purge", "--dry-run")
        rule = [r for r in dry["rules"] if r["name"] == "provisions"]
        assert rule and rule[0]["due"] == 0 and rule[0]["period"] == "provision_years", dry
        set_clock(net[PREF], years_on(5, 1))
        dry = net[PREF].ctl("purge", "--dry-run")
        assert [r["due"] for r in dry["rules"] if r["name"] == "provisions"] == [3], dry
        report = net[PREF].ctl("purge")
        assert [r["removed"] for r in report["rules"] if r["name"] == "provisions"] == [3]
        assert report["verified"], report
        assert provisions(net, PREF) == []
        assert PURPOSE.encode() not in store_bytes(net[PREF])
        # The residents themselves are kept (they are current).
        assert net[PREF].status()["records"]["current"] == 3


if __name__ == "__main__":
    run_cases([case_agreement_lifecycle, case_online_query_items_and_refusals, case_who_may_ask,
               case_batch, case_provision_records_erased])
