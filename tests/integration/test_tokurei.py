"""The special move-out/move-in with the resident card (転入転出の特例, 第6-5), end to end
through the real gateway.

千代田区 (cs:131016, the 転出地) records a card holder's 付記転出届: the card checked valid
in its register, the 転出証明書情報 (令第24条の4) built from the register and written to the
resident record system's spool.  大阪市 (cs:271004, the 転入地) records the 最初の転入届 and
asks over muni (tokurei.request); 千代田区 answers with the 転出証明書情報 (tokurei.answer) or
refuses in the ack; 大阪市's clerk reviews it, collects the card (tokurei.collected tells
千代田区, whose register marks the card collected) and the 転出証明書情報 goes to 大阪市's
resident record system.  The resident record system's side is one-way (docs/import.md, the
special move spool): the test reads the files it would read.
"""

import glob
import json
import os

from jukitest import (CTL_FAILED, Network, add_residents, fails, history, run_cases,
                      set_clock, store_rows, wait_until, years_on)
from jukitest.peer import Peer
from jukitest.synth import Synth

GW, A, B = "fwgate:east", "cs:131016", "cs:271004"
NET = [GW, A, B, "pref:13", "pref:27"]
NEW_ADDRESS = "大阪府大阪市北区中之島一丁目3番20号"
DATE = "2026-04-01"


def configure(net, timeout="30m"):
    for name in (A, B):
        d = net[name]
        d.extra["tokurei"] = "{spool: %s, scan_interval: 50ms, timeout: %s, keep: 1}" % (
            spool(net, name), timeout)


def spool(net, name):
    return net[name].spool + "-tokurei"


def moveout(clerk, p, card, to="271004", **kw):
    return clerk.ctl("tokurei", "moveout", "--code", p["code"], "--card", card, "--to", to,
                     "--new-address", NEW_ADDRESS, "--date", DATE, **kw)


def movein(clerk, p, card, name=None, birth=None, **kw):
    return clerk.ctl("tokurei", "movein", "--code", p["code"], "--name", name or p["name"],
                     "--birth", birth or p["birth"], "--card", card, "--from", "131016", **kw)


def show(d, tid):
    return d.clerk().ctl("tokurei", "show", "--id", tid)


def settled(d, tid, states=("answered", "refused")):
    return wait_until("special move %s settled at %s" % (tid, d.name),
                      lambda: (lambda r: r if r["state"] in states else None)(show(d, tid)))


def spool_file(net, name, sub, tid):
    path = os.path.join(spool(net, name), sub, tid + ".json")
    wait_until("%s/%s written" % (sub, tid), lambda: os.path.exists(path))
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def card_state(d, serial):
    return d.clerk().ctl("card", "show", "--serial", serial)["state"]


def cert_of(p, card):
    return {"code": p["code"], "name": p["name"], "birth": p["birth"], "sex": p["sex"],
            "address": p["address"], "from": "131016", "to": "271004",
            "new_address": NEW_ADDRESS, "date": DATE, "card": card}


def no_personal_data(entries, *people):
    for e in entries:
        text = json.dumps(e, ensure_ascii=False)
        for p in people:
            assert p["code"] not in text and p["name"] not in text, e


def case_special_move_end_to_end():
    """付記転出 at 千代田区, 最初の転入届 at 大阪市, the 転出証明書情報 reviewed, the card
    collected and marked so at both ends, both resident record systems given their file,
    every step in both histories without personal data; the prefectures saw nothing."""
    s = Synth(seed=951)
    with Network(NET, configure=configure) as net:
        p = s.person("131016")
        add_residents(net[A], [p])
        ca, cb = net[A].clerk(), net[B].clerk()
        ca.ctl("card", "issue", "--code", p["code"], "--serial", "T1")
        out = moveout(ca, p, "T1")
        oid = out["id"]
        assert out["state"] == "registered" and out["certificate"] == cert_of(p, "T1"), out
        # The 転出地's resident record system gets the 付記転出's 転出証明書情報.
        doc = spool_file(net, A, "moveout", oid)
        assert (doc["format"], doc["id"], doc["certificate"]) == (
            "juki-tokurei-moveout/1", oid, cert_of(p, "T1")), doc
        # A second 付記転出 of the same person while the first is open: refused.
        assert fails(moveout, ca, p, "T1")[1] == "conflict"
        # The 最初の転入届 at 大阪市.
        got = movein(cb, p, "T1")
        tid = got["id"]
        assert (got["state"], got["to"]) == ("sent", "urn:juki:cs:131016"), got
        shown = settled(net[B], tid)
        assert shown["state"] == "answered", shown
        assert shown["certificate"] == cert_of(p, "T1"), shown
        # The 転出地's record answered under the request's id; the card still valid there.
        at_a = show(net[A], oid)
        assert (at_a["state"], at_a["request_id"]) == ("answered", tid), at_a
        assert card_state(net[A], "T1") == "issued"
        # The clerk reviews it on screen (text output) and collects the card.
        text = cb.ctl("tokurei", "show", "--id", tid, json_out=False)
        for want in ("転出証明書情報", p["name"], p["address"], NEW_ADDRESS, DATE, "T1"):
            assert want in text, (want, text)
        col = cb.ctl("tokurei", "collect", "--id", tid)
        assert (col["state"], col["card"]) == ("collected", "T1"), col
        assert fails(cb.ctl, "tokurei", "collect", "--id", tid)[1] == "conflict"
        # 千代田区 told: its record and its card register say collected.
        wait_until("collected at A", lambda: show(net[A], oid)["state"] == "collected")
        assert card_state(net[A], "T1") == "collected"
        card = ca.ctl("card", "show", "--serial", "T1")
        assert card["events"][-1]["who"] == net[B].urn, card
        # 大阪市's resident record system gets the 転出証明書情報 of the 転入.
        doc = spool_file(net, B, "movein", tid)
        assert (doc["format"], doc["id"], doc["certificate"]) == (
            "juki-tokurei-movein/1", tid, cert_of(p, "T1")), doc
        at_b = show(net[B], tid)
        assert (at_b["state"], at_b["collector"], at_b["card"]) == ("collected", cb.urn,
                                                                   "T1"), at_b
        # The history at both ends, under the records' ids, never the person's data.
        hb = [(e["operator"], e["action"], e["target"]) for e in history(net[B])
              if e["action"].startswith("tokurei.") and e["outcome"] == "ok"]
        assert (cb.urn, "tokurei.movein", tid) in hb, hb
        assert (net[B].urn, "tokurei.movein-answered", tid) in hb, hb
        assert (cb.urn, "tokurei.collect", tid) in hb, hb
        ha = [(e["operator"], e["action"], e["target"]) for e in history(net[A])
              if e["action"].startswith("tokurei.") and e["outcome"] == "ok"]
        assert (ca.urn, "tokurei.moveout", oid) in ha, ha
        assert (net[A].urn, "tokurei.moveout-answered", oid) in ha, ha
        assert (net[A].urn, "tokurei.moveout-collected", oid) in ha, ha
        no_personal_data([e for d in (A, B) for e in history(net[d])
                          if e["action"].startswith("tokurei.")], p)
        for d in (A, B):
            log = net[d].log_text()
            assert p["code"] not in log and p["name"] not in log
        for pref in ("pref:13", "pref:27"):
            assert "tokurei" not in net[pref].log_text()


def case_refusals():
    """Each refusal reaches the 転入地 clerk with its reason: no 付記転出 on record (none, or
    to another municipality), the card not valid (suspended since, another card), the person
    not the same; at the counter: 付記転出 refused without a valid card."""
    s = Synth(seed=952)
    with Network(NET, configure=configure) as net:
        p, q, r, u, w = (s.person("131016") for _ in range(5))
        add_residents(net[A], [p, q, r, u, w])
        ca, cb = net[A].clerk(), net[B].clerk()
        for person, serial in ((p, "P1"), (q, "Q1"), (r, "R1"), (u, "U1"), (w, "W1")):
            ca.ctl("card", "issue", "--code", person["code"], "--serial", serial)
        # At the 転出地's counter: no 付記転出 without the holder's valid card.
        code, err, msg = fails(moveout, ca, p, "Q1")
        assert code == CTL_FAILED and err == "refused" and "card-invalid" in msg, msg
        ca.ctl("card", "suspend", "--serial", "W1", "--reason", "紛失届")
        assert fails(moveout, ca, w, "W1")[1] == "refused"
        assert fails(moveout, ca, dict(p, code=s.code()), "P1")[1] == "not-found"
        assert fails(moveout, ca, p, "P1", to="131016")[1] == "invalid"
        # q: 付記転出 to 大阪市 and the card suspended afterwards; r: to another municipality;
        # u: 付記転出 fine, but the 転入届 names another person.
        moveout(ca, q, "Q1")
        ca.ctl("card", "suspend", "--serial", "Q1", "--reason", "紛失届")
        moveout(ca, r, "R1", to="011002")
        moveout(ca, u, "U1")
        cases = [(movein(cb, p, "P1")["id"], "no-moveout"),
                 (movein(cb, r, "R1")["id"], "no-moveout"),
                 (movein(cb, q, "Q1")["id"], "card-invalid"),
                 (movein(cb, u, "P1")["id"], "card-invalid"),
                 (movein(cb, u, "U1", birth="1901-01-01")["id"], "person-mismatch")]
        for tid, reason in cases:
            got = settled(net[B], tid)
            assert (got["state"], got["reason"]) == ("refused", reason), got
            assert "certificate" not in got, got
            assert fails(cb.ctl, "tokurei", "collect", "--id", tid)[1] == "conflict"
        # Nothing given away or collected at the 転出地; the open 付記転出 still answerable.
        assert card_state(net[A], "U1") == "issued"
        ok = movein(cb, u, "U1")["id"]
        assert settled(net[B], ok)["state"] == "answered"
        refused = [e for e in history(net[A]) if e["action"] == "tokurei.request" and
                   e["outcome"] == "refused"]
        assert sorted(e["detail"] for e in refused) == sorted(c[1] for c in cases), refused
        hb = [e for e in history(net[B]) if e["action"] == "tokurei.movein-refused"]
        assert sorted(e["target"] for e in hb) == sorted(c[0] for c in cases), hb
        no_personal_data([e for d in (A, B) for e in history(net[d])
                          if e["action"].startswith("tokurei.")], p, q, r, u, w)
        # At the 転入地's counter: bad fields never sent.
        code, err, msg = fails(cb.ctl, "tokurei", "movein", "--code", p["code"], "--name",
                               p["name"], "--birth", p["birth"], "--card", "p1", "--from",
                               "131016")
        assert err == "invalid" and "card" in msg, msg
        code, err, msg = fails(cb.ctl, "tokurei", "movein", "--code", p["code"], "--name",
                               p["name"], "--birth", p["birth"], "--card", "P1", "--from",
                               "271004")
        assert err == "invalid" and "from" in msg, msg


def case_household():
    """世帯員に関する付記転出届: the holder's household members moving along are in the
    転出証明書情報 from the register, carried to the 転入地 with the holder's 最初の転入届 and
    to its resident record system; a member elsewhere, twice, or unknown is refused."""
    s = Synth(seed=955)
    with Network(NET, configure=configure) as net:
        p, q, k, far = (s.person("131016") for _ in range(4))
        q["address"] = k["address"] = p["address"]
        add_residents(net[A], [p, q, k, far])
        ca, cb = net[A].clerk(), net[B].clerk()
        ca.ctl("card", "issue", "--code", p["code"], "--serial", "H1")
        base = ["tokurei", "moveout", "--code", p["code"], "--card", "H1", "--to", "271004",
                "--new-address", NEW_ADDRESS, "--date", DATE]
        code, err, msg = fails(ca.ctl, *(base + ["--members", far["code"]]))
        assert err == "refused" and "address" in msg and far["code"] not in msg, msg
        assert fails(ca.ctl, *(base + ["--members", "%s,%s" % (q["code"], q["code"])]))[1] \
            == "invalid"
        assert fails(ca.ctl, *(base + ["--members", p["code"]]))[1] == "invalid"
        assert fails(ca.ctl, *(base + ["--members", s.code()]))[1] == "not-found"
        out = ca.ctl(*(base + ["--members", "%s,%s" % (q["code"], k["code"])]))
        members = [{"code": m["code"], "name": m["name"], "birth": m["birth"],
                    "sex": m["sex"]} for m in (q, k)]
        want = dict(cert_of(p, "H1"), members=members)
        assert out["certificate"] == want, out
        assert spool_file(net, A, "moveout", out["id"])["certificate"] == want
        tid = movein(cb, p, "H1")["id"]
        shown = settled(net[B], tid)
        assert shown["certificate"] == want, shown
        text = cb.ctl("tokurei", "show", "--id", tid, json_out=False)
        assert q["name"] in text and k["name"] in text, text
        cb.ctl("tokurei", "collect", "--id", tid)
        assert spool_file(net, B, "movein", tid)["certificate"] == want
        no_personal_data([e for d in (A, B) for e in history(net[d])
                          if e["action"].startswith("tokurei.")], p, q, k, far)


def case_certificate_from_rrs():
    """第6-5(2) the standard's way: the resident record system enters the 転出証明書情報 into the
    CS through certificates/ (a fixture plays it): a good file registered (the card checked)
    and answered to the 転入地; each bad file refused into rejected/ with a report naming the
    field, alerted without personal data, nothing registered."""
    s = Synth(seed=956)
    with Network(NET, configure=configure) as net:
        p, q, r = (s.person("131016") for _ in range(3))
        add_residents(net[A], [p, q, r])
        ca, cb = net[A].clerk(), net[B].clerk()
        ca.ctl("card", "issue", "--code", p["code"], "--serial", "R1")
        ca.ctl("card", "issue", "--code", q["code"], "--serial", "R2")
        ca.ctl("card", "suspend", "--serial", "R2", "--reason", "紛失届")
        certs = os.path.join(spool(net, A), "certificates")
        rejected = os.path.join(spool(net, A), "rejected")

        def drop(name, doc):
            tmp = os.path.join(certs, "." + name)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False))
            os.rename(tmp, os.path.join(certs, name))

        def file_of(cert):
            return {"format": "juki-tokurei-certificate/1", "certificate": cert}

        bad = [("a.json", "{not json", "json"),
               ("b.json", {"certificate": cert_of(p, "R1")}, "format"),
               ("c.json", file_of(dict(cert_of(p, "R1"), sex=3)), "certificate.sex"),
               ("d.json", file_of(dict(cert_of(p, "R1"), **{"from": "011002"})),
                "certificate.from"),
               ("e.json", file_of(dict(cert_of(p, "R1"), birth="1901-01-01")),
                "certificate.code"),
               ("f.json", file_of(cert_of(q, "R2")), "certificate.card"),
               ("g.json", file_of(dict(cert_of(p, "R1"), code=s.code())),
                "certificate.code")]
        for name, doc, _ in bad:
            drop(name, doc)
        wait_until("seven refused",
                   lambda: len(glob.glob(rejected + "/*.report.json")) == len(bad))
        for name, _, field in bad:
            with open(os.path.join(rejected, name + ".report.json")) as f:
                report = json.load(f)
            assert report["field"] == field, (name, report)
            text = json.dumps(report, ensure_ascii=False)
            assert p["name"] not in text and p["code"] not in text, report
        assert net[A].alert_counts().get("tokurei-certificate-rejected") == len(bad)
        alerts = json.dumps(net[A].alerts()["recent"], ensure_ascii=False)
        assert p["name"] not in alerts and p["code"] not in alerts
        assert ca.ctl("tokurei", "list")["moveout"] == []
        # The good file: registered from the resident record system, filed in done/.
        drop("h.json", file_of(cert_of(p, "R1")))
        rows = wait_until("registered", lambda: ca.ctl("tokurei", "list")["moveout"] or None)
        (row,) = rows
        assert (row["state"], row["clerk"]) == ("registered", net[A].urn), row
        assert os.listdir(os.path.join(spool(net, A), "done")) == ["h.json"]
        assert os.listdir(os.path.join(spool(net, A), "moveout")) == []  # it came from there
        # The same person again while open: refused (conflict).
        drop("i.json", file_of(cert_of(p, "R1")))
        wait_until("i refused", lambda: os.path.exists(os.path.join(rejected,
                                                                    "i.json.report.json")))
        tid = movein(cb, p, "R1")["id"]
        assert settled(net[B], tid)["certificate"] == cert_of(p, "R1")
        hist = [(e["operator"], e["action"], e["target"]) for e in history(net[A])
                if e["action"].startswith("tokurei.")]
        assert (net[A].urn, "tokurei.moveout", row["id"]) in hist, hist
        no_personal_data([e for e in history(net[A]) if e["action"].startswith("tokurei.")],
                         p, q, r)


def case_timeout_and_restarts():
    """The 転出地 down: the request overdue and alerted; a restart of either CS in the middle
    of a request loses nothing and does nothing twice; kept tokurei.keep, then erased."""
    s = Synth(seed=953)
    with Network(NET, configure=lambda n: configure(n, timeout="1s")) as net:
        p, q = s.person("131016"), s.person("131016")
        add_residents(net[A], [p, q])
        ca, cb = net[A].clerk(), net[B].clerk()
        ca.ctl("card", "issue", "--code", p["code"], "--serial", "K1")
        ca.ctl("card", "issue", "--code", q["code"], "--serial", "K2")
        o1 = moveout(ca, p, "K1")["id"]
        o2 = moveout(ca, q, "K2")["id"]
        # The 転出地 stops before the request reaches it: overdue, alerted once.
        net[A].stop()
        t1 = movein(cb, p, "K1")["id"]
        row = wait_until("overdue", lambda: [
            x for x in cb.ctl("tokurei", "list")["movein"] if x["overdue"]])
        assert [x["id"] for x in row] == [t1]
        wait_until("alerted", lambda: net[B].alert_counts().get("tokurei-overdue") == 1)
        text = json.dumps(net[B].alerts()["recent"], ensure_ascii=False)
        assert p["name"] not in text and p["code"] not in text
        # The 転入地 killed with the request still queued; both back: answered once.
        net[B].kill9()
        net[B].start()
        net[A].start()
        assert settled(net[B], t1)["state"] == "answered"
        # The 転出地 killed right after it answered a second request: still answered once.
        t2 = movein(cb, q, "K2")["id"]
        wait_until("answered at A", lambda: show(net[A], o2)["state"] == "answered")
        net[A].kill9()
        net[A].start()
        assert settled(net[B], t2)["state"] == "answered"
        # The collection told while the 転出地 is down: delivered when it is back.
        net[A].stop()
        cb.ctl("tokurei", "collect", "--id", t1)
        net[B].kill9()
        net[B].start()
        net[A].start()
        wait_until("collected at A", lambda: show(net[A], o1)["state"] == "collected")
        assert card_state(net[A], "K1") == "collected"
        card = ca.ctl("card", "show", "--serial", "K1")
        assert [e["action"] for e in card["events"]].count("collect") == 1, card
        assert show(net[A], o2)["state"] == "answered" and card_state(net[A], "K2") == "issued"
        answered = [e for e in history(net[A]) if e["action"] == "tokurei.moveout-answered"]
        assert sorted(e["target"] for e in answered) == sorted([o1, o2]), answered
        # Each file written once, under its id.
        assert sorted(os.listdir(os.path.join(spool(net, A), "moveout"))) == sorted(
            [o1 + ".json", o2 + ".json"])
        wait_until("movein file", lambda: os.listdir(os.path.join(spool(net, B), "movein")))
        assert os.listdir(os.path.join(spool(net, B), "movein")) == [t1 + ".json"]
        # Kept for tokurei.keep (1 year), then erased by purge at both ends (第6-5(6)).
        for name in (A, B):
            net[name].admin("purge")
            assert store_rows(net[name].store, "SELECT count(*) FROM tokurei_out") + \
                store_rows(net[name].store, "SELECT count(*) FROM tokurei_in") != [(0,), (0,)]
            set_clock(net[name], years_on(1, 2))
            net[name].admin("purge")
            assert store_rows(net[name].store, "SELECT count(*) FROM tokurei_out") == [(0,)]
            assert store_rows(net[name].store, "SELECT count(*) FROM tokurei_in") == [(0,)]


def case_receiver_checks():
    """The 転出地 CS checks every field of a tokurei.request from the network (a peer playing
    大阪市's CS by hand): each malformed body refused invalid-field naming the field; a good
    one answered; the same message again a duplicate; an answer or a collection for no
    request refused unknown-request."""
    s = Synth(seed=954)

    def conf(net):
        net[A].extra["tokurei"] = "{spool: %s, scan_interval: 50ms}" % spool(net, A)

    with Network([GW, A, "pref:13"], extra_identities=[B], configure=conf) as net:
        p = s.person("131016")
        add_residents(net[A], [p])
        ca = net[A].clerk()
        ca.ctl("card", "issue", "--code", p["code"], "--serial", "K9")
        oid = moveout(ca, p, "K9")["id"]
        cert, key = net.cert(B)
        peer = Peer(net[GW].address, cert, key, net.ca())
        assert peer.connect("urn:juki:cs:131016", "muni") == "OK"

        def body(**over):
            b = {"code": p["code"], "name": p["name"], "birth": p["birth"], "card": "K9",
                 "from": "131016", "to": "271004"}
            for k, v in over.items():
                if v is None:
                    b.pop(k)
                else:
                    b[k] = v
            return b

        def send(b, type_="tokurei.request", **header):
            m = peer.message(type_, "urn:juki:cs:271004", "urn:juki:cs:131016", b, **header)
            ack = peer.exchange(m)
            assert ack["corr"] == m["id"], ack
            return m, ack["body"]

        bad = [(body(**{"from": "011002"}), "from"), (body(to="011002"), "to"),
               (body(card="k9"), "card"), (body(extra=1), "body"), (body(name=None), "name"),
               (body(code="123"), "code"), (body(birth="2026-02-30"), "birth")]
        for b, field in bad:
            _, ack = send(b)
            assert ack["status"] == "rejected" and ack["reason"] == "invalid-field", ack
            assert ack["detail"].startswith(field + ":"), (field, ack)
            assert p["name"] not in ack["detail"] and p["code"] not in ack["detail"], ack
        assert show(net[A], oid)["state"] == "registered"
        m, ack = send(body())
        assert ack["status"] == "accepted", ack
        assert show(net[A], oid)["state"] == "answered"
        assert peer.exchange(m)["body"]["status"] == "duplicate"
        # A second request (another id) for the same move: no 付記転出 open any more.
        _, ack = send(body())
        assert ack["reason"] == "no-moveout", ack
        # A collection for no request answered here; one with another card.
        _, ack = send({"request_id": oid, "card": "K9"}, "tokurei.collected")
        assert ack["reason"] == "unknown-request", ack
        _, ack = send({"request_id": m["id"], "card": "K8"}, "tokurei.collected")
        assert ack["reason"] == "invalid-field" and ack["detail"].startswith("card:"), ack
        assert card_state(net[A], "K9") == "issued"
        _, ack = send({"request_id": m["id"], "card": "K9"}, "tokurei.collected")
        assert ack["status"] == "accepted", ack
        assert card_state(net[A], "K9") == "collected"
        # An answer to no request sent from here.
        _, ack = send({"request_id": m["id"], "certificate": cert_of(p, "K9")},
                      "tokurei.answer", corr=m["id"])
        assert ack["reason"] == "unknown-request", ack
        peer.close()


if __name__ == "__main__":
    run_cases([case_special_move_end_to_end, case_refusals, case_household,
               case_certificate_from_rrs, case_timeout_and_restarts, case_receiver_checks])
