"""The wide-area copy of the residence record (住民票の写しの広域交付, 第6-4) and the printed
forms under control (第4-8(3)), end to end through the real gateway.

大阪市 (cs:271004, the 交付地) asks 千代田区 (cs:131016, the 住所地) over muni for a copy of a
resident's record; 千代田区's CS hands the request to its resident record system through
the copy spool (a fixture plays the system: answers, refusals, slow and malformed
answers) and sends the answer back; 大阪市's clerk reviews it and prints the certified copy
on a serial-numbered form to the terminal's own CUPS queue (a private cupsd of the test).
"""

import glob
import json
import os
import re
import subprocess
import time

from jukitest import (CTL_FAILED, CTL_USAGE, Network, add_residents, fails, history,
                      run_cases, set_clock, store_rows, wait_until, years_on)
from jukitest.peer import Peer
from jukitest.rrs import Cups, RecordSystem
from jukitest.synth import Synth

GW, A, B = "fwgate:east", "cs:131016", "cs:271004"
NET = [GW, A, B, "pref:13", "pref:27"]
YOSHI = "\U00020BB7"  # 𠮷, outside the BMP
KATSU = "\u845b\U000E0100"  # 葛󠄀, an ideographic variation sequence
MAYOR = "大阪市長　大阪　一郎"


def configure(net, review=False, timeout="30m"):
    for name in (A, B):
        d = net[name]
        d.extra["copy"] = "{spool: %s, scan_interval: 50ms, timeout: %s, review: %s, " \
                          "mayor: '%s', keep: 1}" % (d.spool + "-copy", timeout,
                                                     "true" if review else "false", MAYOR)


def spool(net, name=A):
    return net[name].spool + "-copy"


def copy_of(p, *members, householder=True):
    copy = {"address": p["address"], "persons": []}
    if householder:
        copy["householder"] = p["name"]
    for i, m in enumerate((p,) + members):
        row = {"name": m["name"], "birth": m["birth"], "sex": m["sex"],
               "resident_since": "2020-04-01"}
        row["relation"] = "世帯主" if i == 0 else "妻"
        copy["persons"].append(row)
    return copy


def request(clerk, p, *extra, card=None, items="householder,relation", copies=1, **kw):
    args = ["copy", "request", "--code", p["code"], "--name", p["name"], "--birth",
            p["birth"], "--home", "131016", "--requester", p["name"], "--relation", "self"]
    if card:
        args += ["--identity", "card", "--card", card, "--requester-code", p["code"]]
    else:
        args += ["--identity", "document", "--document", "運転免許証"]
    if items:
        args += ["--items", items]
    args += ["--copies", copies] + list(extra)
    return clerk.ctl(*args, **kw)


def state_of(d, rid):
    return d.clerk().ctl("copy", "show", "--id", rid)


def settled(d, rid, states=("answered", "refused")):
    return wait_until("request %s settled at %s" % (rid, d.name),
                      lambda: (lambda r: r if r["state"] in states else None)(state_of(d, rid)))


def pdf_text(path):
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", path, "-"], capture_output=True,
                         text=True, check=True).stdout
    return re.sub(r"\s+", "", out)


def terminal_file(net, op, printer):
    path = os.path.join(net.dir, "terminal-%s.yaml" % op.id)
    with open(path, "w") as f:
        f.write("printer: %s\n" % printer)
    return path


def no_personal_data(entries, *people):
    for e in entries:
        text = json.dumps(e, ensure_ascii=False)
        for p in people:
            assert p["code"] not in text and p["name"] not in text, e


def case_copy_end_to_end():
    """Request, spool, answer, review on screen, certified copy printed on two forms; the
    PDF read back exactly; the stock reconciled; every step in both histories."""
    s = Synth(seed=901)
    with Network(NET, configure=configure) as net, \
            Cups(os.path.join(net.dir, "cups")) as cups:
        p, q = s.person("131016"), s.person("131016")
        p["name"] = YOSHI + "田 太郎"
        q["name"] = KATSU + "西 花子"
        add_residents(net[A], [p, q])
        net[A].clerk().ctl("card", "issue", "--code", p["code"], "--serial", "K1")
        rrs = RecordSystem(spool(net), {p["code"]: copy_of(p, q)})
        with rrs:
            clerk = net[B].clerk()
            out = request(clerk, p, card="K1", copies=2)
            rid = out["id"]
            assert (out["state"], out["to"]) == ("sent", "urn:juki:cs:131016"), out
            shown = settled(net[B], rid)
            assert shown["state"] == "answered", shown
            assert shown["copy"] == copy_of(p, q), shown
            assert shown["request"]["person"] == {"code": p["code"], "name": p["name"],
                                                  "birth": p["birth"]}
            assert shown["request"]["requester"]["identity"] == "card"
            # What the resident record system read: the request as the interface says.
            (seen,) = rrs.seen
            assert seen["format"] == "juki-copy-request/1" and seen["request_id"] == rid
            assert seen["issuer"] == "271004" and seen["items"] == ["householder", "relation"]
            assert seen["requester"]["card"] == "K1" and seen["copies"] == 2
        # At the 住所地: answered, the outgoing file gone, the answer filed in done/.
        home = wait_until("answered at A", lambda: [
            r for r in net[A].clerk().ctl("copy", "list")["home"] if r["state"] == "answered"])
        assert [r["id"] for r in home] == [rid]
        assert os.listdir(os.path.join(spool(net), "outgoing")) == []
        assert os.listdir(os.path.join(spool(net), "done")) == [rid + ".json"]
        # The forms stock: a supervisor receives a range.
        sup = net[B].add_operator("boss", ["supervisor"])
        stock = sup.ctl("forms", "receive", "--first", 1001, "--last", 1010, "--note", "納品")
        assert (stock["received"], stock["unused"], stock["next"]) == (10, 10, 1001), stock
        # The certified copy, to the terminal's own printer.
        queue = "osaka-counter-1"
        cups.add_printer(queue)
        clerk.env = dict(clerk.env or {}, CUPS_SERVER=cups.server)
        term = terminal_file(net, clerk, queue)
        printed = clerk.ctl("--terminal", term, "copy", "print", "--id", rid)
        assert (printed["serial"], printed["printer"]) == (1001, queue), printed
        (job,) = wait_until("the job on paper", lambda: cups.jobs(queue) or None)
        back = pdf_text(job)
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 9 * 3600))
        y, m, d = (int(x) for x in today.split("-"))
        by, bm, bd = (int(x) for x in p["birth"].split("-"))
        for want in ("住民票の写し", "住所" + p["address"], "世帯主" + p["name"], p["name"],
                     q["name"], "%d年%d月%d日" % (by, bm, bd), "世帯主", "妻",
                     "2020年4月1日",
                     "この写しは、住民基本台帳法第12条の2の規定により住所地市町村長から通知"
                     "を受けた住民票の記載事項と相違ないことを証明する。",
                     "%d年%d月%d日" % (y, m, d), MAYOR, "用紙番号000001001"):
            assert re.sub(r"\s+", "", want) in back, (want, back)
        assert YOSHI + "田太郎" in back and KATSU + "西花子" in back, back
        fonts = subprocess.run(["pdffonts", job], capture_output=True, text=True,
                               check=True).stdout.splitlines()[2:]
        assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts
        png = os.path.join(net.dir, "page")
        subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", job, png],
                       check=True)
        (img,) = glob.glob(png + "*.png")
        assert os.path.getsize(img) > 1000
        # No PDF left anywhere but on the "paper" of the test printer.
        left = [f for f in glob.glob(os.path.join(net.dir, "**", "*.pdf"), recursive=True)
                if not f.startswith(os.path.join(cups.dir, "out"))]
        assert left == [], left
        # ... and not in the scheduler's spool once printed (PreserveJobFiles No).
        wait_until("the job's file gone from the CUPS spool", lambda: cups.spooled() == [])
        # The second copy asked for: the next form; a third is refused.
        assert clerk.ctl("--terminal", term, "copy", "print", "--id", rid)["serial"] == 1002
        code, err, msg = fails(clerk.ctl, "--terminal", term, "copy", "print", "--id", rid)
        assert code == CTL_FAILED and err == "conflict" and "copies are printed" in msg, msg
        shown = state_of(net[B], rid)
        assert [(x["serial"], x["who"], x["printer"]) for x in shown["prints"]] == [
            (1001, clerk.urn, queue), (1002, clerk.urn, queue)], shown
        # Spoiled sheets, and the count reconciled against the sheets on hand.
        clerk.ctl("forms", "spoil", "--serial", 1003, "--reason", "紙詰まり")
        code, err, _ = fails(clerk.ctl, "forms", "spoil", "--serial", 1003, "--reason", "x")
        assert err == "conflict", err
        assert fails(clerk.ctl, "forms", "spoil", "--serial", 2000, "--reason", "x")[1] == \
            "not-found"
        stock = sup.ctl("forms", "count", "--on-hand", 7)
        assert (stock["received"], stock["printed"], stock["spoiled"], stock["unused"],
                stock["reconciled"], stock["next"]) == (10, 2, 1, 7, True, 1004), stock
        code, _, _ = fails(sup.ctl, "forms", "count", "--on-hand", 6)
        assert code == CTL_FAILED
        assert net[B].alert_counts().get("forms-mismatch") == 1
        # Who may print, and where: a supervisor, an auditor and the administrator may not;
        # a terminal without its printer prints nothing.
        sup.env = clerk.env
        assert fails(sup.ctl, "--terminal", terminal_file(net, sup, queue), "copy", "print",
                     "--id", rid)[1] == "forbidden"
        assert fails(net[B].admin, "copy", "list")[1] == "forbidden"
        code, _, msg = fails(clerk.ctl, "copy", "print", "--id", rid)
        assert code == CTL_USAGE and "printer" in msg, msg
        assert len(cups.jobs(queue)) == 2
        # Every step in the history, under the request's id; never the person's data.
        hb = [e for e in history(net[B]) if e["action"].startswith(("copy.", "forms."))]
        steps = [(e["operator"], e["action"], e["target"]) for e in hb if e["outcome"] == "ok"]
        assert (clerk.urn, "copy.request", rid) in steps, steps
        assert (net[B].urn, "copy.answered", rid) in steps, steps
        prints = [e for e in hb if e["action"] == "copy.print" and e["outcome"] == "ok"]
        assert [(e["target"], e["detail"]) for e in prints] == [
            (rid, "serial 1001"), (rid, "serial 1002")], prints
        ha = [(e["operator"], e["action"], e["target"]) for e in history(net[A])
              if e["action"].startswith("copy.")]
        assert [x for x in ha if x[1] != "copy.list"] == [
            (net[A].urn, "copy.received", rid), (net[A].urn, "copy.spooled", rid),
            (net[A].urn, "copy.answered", rid)], ha
        no_personal_data(hb + [e for e in history(net[A]) if e["action"].startswith("copy.")],
                         p, q)
        # Neither prefecture saw any of it (第3-3(3)): no copy message reached them.
        for pref in ("pref:13", "pref:27"):
            assert "copy." not in net[pref].log_text()
        with Peer(net[GW].address, *net.cert("pref:13"), net.ca(),
                  source="127.0.0.31") as peer:
            assert peer.connect("urn:juki:cs:131016", "muni") == \
                "DENY policy no rule allows pref -> cs over muni"


def case_refusals():
    """Each refusal reaches the 交付地 clerk with a reason to act on; a malformed answer of the
    resident record system is refused with a report and never forwarded; review."""
    s = Synth(seed=902)
    with Network(NET, configure=lambda n: configure(n, review=True)) as net:
        p, q, moved, card, gaiji = (s.person("131016") for _ in range(5))
        stranger = s.person("131016")
        add_residents(net[A], [p, q, moved, card, gaiji])
        ca = net[A].clerk()
        ca.ctl("card", "issue", "--code", card["code"], "--serial", "S1")
        ca.ctl("card", "suspend", "--serial", "S1", "--reason", "紛失届")
        clerk = net[B].clerk()

        def mode(req):
            code = req["person"]["code"]
            if code == q["code"]:
                return ("refuse", "rrs-refused", "支援措置対象者")
            if code == moved["code"]:
                return ("hold",)
            if code == gaiji["code"]:
                # The system's own spelling, with a 外字 of the private use area.
                return ("answer", copy_of(dict(gaiji, name="髙\ue000 太郎")))
            return ("answer", copy_of(p))

        with RecordSystem(spool(net), mode=mode) as rrs:
            # Refused by the 住所地 CS before the resident record system sees anything.
            r1 = request(clerk, stranger)["id"]
            wrong = dict(p, birth="1901-01-01")
            r2 = request(clerk, wrong)["id"]
            r3 = request(clerk, card, card="S1")["id"]
            for rid, reason in ((r1, "not-resident"), (r2, "person-mismatch"),
                                (r3, "card-invalid")):
                got = settled(net[B], rid)
                assert (got["state"], got["reason"]) == ("refused", reason), got
            # Refused by the resident record system, with its reason; after review.
            r4 = request(clerk, q)["id"]
            wait_until("q in review", lambda: state_of(net[A], r4)["state"] == "review")
            assert state_of(net[B], r4)["state"] == "sent"
            ca.ctl("copy", "review", "--id", r4, "--approve")
            got = settled(net[B], r4)
            assert (got["state"], got["reason"], got["detail"]) == (
                "refused", "rrs-refused", "支援措置対象者"), got
            # An answer the 住所地 clerk refuses on review.
            r5 = request(clerk, p)["id"]
            wait_until("p in review", lambda: state_of(net[A], r5)["state"] == "review")
            assert state_of(net[A], r5)["copy"] == copy_of(p)
            code, _, _ = fails(ca.ctl, "copy", "review", "--id", r5, "--refuse")
            assert code == CTL_USAGE
            ca.ctl("copy", "review", "--id", r5, "--refuse", "--reason", "請求事由の確認が必要")
            got = settled(net[B], r5)
            assert (got["state"], got["reason"]) == ("refused", "review-refused"), got
            assert fails(ca.ctl, "copy", "review", "--id", r5, "--approve")[1] == "conflict"
            # Malformed answers: refused with a report, nothing sent, the request waits.
            r6 = request(clerk, moved, items="relation")["id"]
            wait_until("held", lambda: r6 in rrs.held)
            bad = [("a.json", b"{not json"),
                   ("b.json", json.dumps({"request_id": r6, "status": "answered",
                                          "copy": copy_of(moved)}).encode()),
                   ("c.json", json.dumps({"request_id": r6, "status": "maybe"}).encode()),
                   ("d.json", json.dumps({"request_id": r6, "status": "refused",
                                          "reason": "review-refused"}).encode()),
                   ("e.json", json.dumps({"request_id": "0190a000-0000-7000-8000-000000000000",
                                          "status": "refused",
                                          "reason": "rrs-refused"}).encode())]
            for name, data in bad:
                rrs.write(name, data)
            rejected = os.path.join(spool(net), "rejected")
            wait_until("five refused", lambda: len(glob.glob(rejected + "/*.report.json")) == 5)
            reports = {}
            for name, _ in bad:
                with open(os.path.join(rejected, name + ".report.json")) as f:
                    reports[name] = json.load(f)
            assert reports["a.json"]["field"] == "json", reports
            assert reports["b.json"]["field"] == "copy.householder", reports  # not asked
            assert reports["c.json"]["field"] == "status", reports
            assert reports["d.json"]["field"] == "reason", reports
            assert reports["e.json"]["field"] == "request_id", reports
            assert net[A].alert_counts().get("copy-answer-rejected") == 5
            alerts = json.dumps(net[A].alerts()["recent"], ensure_ascii=False)
            assert moved["name"] not in alerts and moved["code"] not in alerts
            assert state_of(net[A], r6)["state"] == "spooled"
            assert state_of(net[B], r6)["state"] == "sent"
            # Then the good answer: held for review, approved, sent once.
            rrs.release(r6, ("answer", copy_of(moved, householder=False)))
            wait_until("r6 in review", lambda: state_of(net[A], r6)["state"] == "review")
            ca.ctl("copy", "review", "--id", r6, "--approve")
            assert settled(net[B], r6)["copy"] == copy_of(moved, householder=False)
            # A name the font cannot draw: taken and shown, never printed with a substitute.
            r7 = request(clerk, gaiji)["id"]
            wait_until("r7 in review", lambda: state_of(net[A], r7)["state"] == "review")
            ca.ctl("copy", "review", "--id", r7, "--approve")
            assert settled(net[B], r7)["state"] == "answered"
        # Refused at the counter, never sent: bad fields.
        for args, field in ((["--home", "271004"], "home"), (["--copies", 0], None)):
            base = ["copy", "request", "--code", p["code"], "--name", p["name"], "--birth",
                    p["birth"], "--requester", "x", "--relation", "self", "--identity",
                    "document", "--document", "旅券"]
            if args[0] != "--home":
                base += ["--home", "131016"]
            code, err, msg = fails(clerk.ctl, *(base + args))
            assert code in (CTL_FAILED, CTL_USAGE), msg
            if field:
                assert err == "invalid" and field in msg, msg
        code, err, msg = fails(clerk.ctl, "copy", "request", "--code", p["code"], "--name",
                               p["name"], "--birth", p["birth"], "--home", "131016",
                               "--requester", "x", "--relation", "friend", "--identity",
                               "document", "--document", "旅券")
        assert err == "invalid" and "requester.relation" in msg, msg
        sup = net[B].add_operator("boss", ["supervisor"])
        sup.ctl("forms", "receive", "--first", 1, "--last", 5)
        term = terminal_file(net, clerk, "osaka-counter-1")
        code, err, msg = fails(clerk.ctl, "--terminal", term, "copy", "print", "--id", r7)
        assert code == CTL_FAILED and "header line 2, character 6" in msg, msg  # 世帯主　髙\ue000
        assert "髙" not in msg and "nothing printed" in msg, msg
        # Nothing printed from a refused request; no form taken by either.
        code, err, msg = fails(clerk.ctl, "--terminal", term, "copy", "print", "--id", r1)
        assert code == CTL_FAILED and "refused" in msg, msg
        stock = sup.ctl("forms", "count")
        assert (stock["printed"], stock["unused"], stock["next"]) == (0, 5, 1), stock
        assert not [e for e in history(net[B]) if e["action"] == "copy.print"]


def case_timeout_and_restarts():
    """A slow resident record system: overdue and alerted; a restart of either CS in the
    middle of a request loses nothing and does nothing twice."""
    s = Synth(seed=903)
    with Network(NET, configure=lambda n: configure(n, timeout="1s")) as net:
        p, q = s.person("131016"), s.person("131016")
        add_residents(net[A], [p, q])
        clerk = net[B].clerk()
        with RecordSystem(spool(net), mode=lambda req: ("hold",)) as rrs:
            rid = request(clerk, p)["id"]
            wait_until("held", lambda: rid in rrs.held)
            row = wait_until("overdue", lambda: [
                r for r in clerk.ctl("copy", "list")["issued"] if r["overdue"]])
            assert [r["id"] for r in row] == [rid]
            wait_until("alerted", lambda: net[B].alert_counts().get("copy-overdue") == 1)
            # The 住所地 CS is killed while the system works on it: the request stays spooled.
            net[A].kill9()
            net[A].start()
            assert state_of(net[A], rid)["state"] == "spooled"
            rrs.release(rid, ("answer", copy_of(p)))
            assert settled(net[B], rid)["state"] == "answered"
            # The 交付地 CS restarts with a request not yet delivered (the 住所地 is down).
            net[A].stop()
            rid2 = request(clerk, q)["id"]
            net[B].kill9()
            net[B].start()
            net[A].start()
            wait_until("held 2", lambda: rid2 in rrs.held)
            rrs.release(rid2, ("answer", copy_of(q)))
            assert settled(net[B], rid2)["state"] == "answered"
            # Each request seen once by the resident record system, answered once.
            assert [r["request_id"] for r in rrs.seen] == [rid, rid2]
        home = net[A].clerk().ctl("copy", "list")["home"]
        assert [(r["id"], r["state"]) for r in home] == [(rid, "answered"), (rid2, "answered")]
        answered = [e for e in history(net[B]) if e["action"] == "copy.answered"]
        assert sorted(e["target"] for e in answered) == sorted([rid, rid2]), answered
        # Kept for copy.keep (1 year), then erased by purge at both ends.
        for name in (A, B):
            net[name].admin("purge")
            assert store_rows(net[name].store, "SELECT count(*) FROM copy_out") + \
                store_rows(net[name].store, "SELECT count(*) FROM copy_in") != [(0,), (0,)]
            set_clock(net[name], years_on(1, 1))
            net[name].admin("purge")
            assert store_rows(net[name].store, "SELECT count(*) FROM copy_out") == [(0,)]
            assert store_rows(net[name].store, "SELECT count(*) FROM copy_in") == [(0,)]


def case_receiver_checks():
    """The 住所地 CS checks every field of a copy.request from the network (a peer playing
    大阪市's CS by hand): each malformed body refused invalid-field naming the field, nothing
    kept or spooled; a minimal good one kept and spooled with every key; a copy.answer to no
    request refused unknown-request."""
    s = Synth(seed=904)

    def conf(net):
        net[A].extra["copy"] = "{spool: %s, scan_interval: 50ms}" % spool(net)

    with Network([GW, A, "pref:13"], extra_identities=[B], configure=conf) as net:
        p = s.person("131016")
        add_residents(net[A], [p])
        cert, key = net.cert(B)
        peer = Peer(net[GW].address, cert, key, net.ca())
        assert peer.connect("urn:juki:cs:131016", "muni") == "OK"

        def body(**over):
            b = {"person": {"code": p["code"], "name": p["name"], "birth": p["birth"]},
                 "requester": {"name": "x", "relation": "self", "identity": "document",
                               "document": "旅券"},
                 "home": "131016", "issuer": "271004", "copies": 1}
            for k, v in over.items():
                if v is None:
                    b.pop(k)
                else:
                    b[k] = v
            return b

        def send(b, type_="copy.request", **header):
            m = peer.message(type_, "urn:juki:cs:271004", "urn:juki:cs:131016", b, **header)
            ack = peer.exchange(m)
            assert ack["corr"] == m["id"], ack
            return m, ack["body"]

        bad = [(body(home="011002"), "home"), (body(issuer="131016"), "issuer"),
               (body(copies=11), "copies"), (body(items=["spouse"]), "items"),
               (body(extra=1), "body"), (body(person={"code": p["code"]}), "person.name"),
               (body(requester={"name": "x", "relation": "self", "identity": "card",
                                "card": "K1"}), "requester.code"),
               (body(requester={"name": "x", "relation": "self", "identity": "document"}),
                "requester.document"),
               (body(person=None), "person")]
        for b, field in bad:
            _, ack = send(b)
            assert ack["status"] == "rejected" and ack["reason"] == "invalid-field", ack
            assert ack["detail"].startswith(field + ":"), (field, ack)
            assert p["name"] not in ack["detail"] and p["code"] not in ack["detail"], ack
        _, ack = send(body(person={"code": p["code"], "name": p["name"], "birth": "2999-01-01"}))
        assert ack["reason"] == "future-date", ack
        assert net[A].clerk().ctl("copy", "list")["home"] == []
        # A minimal good request: kept, and written out with every key of the interface.
        m, ack = send(body())
        assert ack["status"] == "accepted", ack
        path = os.path.join(spool(net), "outgoing", m["id"] + ".json")
        wait_until("spooled", lambda: os.path.exists(path))
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        assert (doc["items"], doc["household"], doc["copies"], doc["issuer"]) == \
            ([], False, 1, "271004"), doc
        # The same message again: a duplicate, written once.
        ack = peer.exchange(m)
        assert ack["body"]["status"] == "duplicate", ack
        assert len(net[A].clerk().ctl("copy", "list")["home"]) == 1
        # An answer to no request sent from here.
        _, ack = send({"request_id": m["id"], "status": "refused", "reason": "rrs-refused"},
                      "copy.answer", corr=m["id"])
        assert ack["reason"] == "unknown-request", ack
        peer.close()


if __name__ == "__main__":
    run_cases([case_copy_end_to_end, case_refusals, case_timeout_and_restarts,
               case_receiver_checks])
