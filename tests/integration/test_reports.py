"""Management reports between bodies (第6-8(1)ウ・エ, (2), (4); docs/protocol.md §15).

A municipality, a prefecture or the national server asks a body that received identity
information for a report on its management measures (or for improvement); the request
travels through the servers the standard names, the body fetches it from the server that
provided and answers it with a staff card, and the answer comes back to the requester.
The bodies are test peers (jukitest.peer.Peer: the body's certificate outside, a staff card
inside) where a case sends what juki-ctl never would, and juki-ctl itself (provide reports,
provide reply, docs/body.md §7) where a staff member fetches and answers as they would.
"""

import base64
import datetime
import json
import os
import signal
import tempfile

from jukitest import Network, fails, fname, history, run_cases, run_ctl, urn, wait_until
from jukitest.peer import Peer
from test_provide_client import Body as Terminal, Card

GW, CS, PREF, JLIS = "fwgate:east", "cs:131016", "pref:13", "jlis:0"
NENKIN, KYOIKU, OSAKA = "agency:nenkin", "exec:13-kyoiku", "exec:27-kyoiku"
BODIES = [NENKIN, KYOIKU, OSAKA]
STAFF = {NENKIN: "urn:juki:op:agency:nenkin:sato", KYOIKU: "urn:juki:op:exec:13-kyoiku:suzuki",
         OSAKA: "urn:juki:op:exec:27-kyoiku:tanaka"}
DAY_MS = 86400_000


def jst_today(offset_days=0):
    now = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=9)))
    return (now + datetime.timedelta(days=offset_days)).strftime("%Y-%m-%d")


def configure(net):
    net[CS].extra["report_poll"] = "200ms"
    for body in BODIES:
        run_ctl("pki", "issue", net.pki, STAFF[body], json_out=False)


def network(**kw):
    return Network([GW, CS, PREF, JLIS], extra_identities=BODIES, configure=configure, **kw)


def boss(daemon):
    """The daemon's supervisor (責任者), who asks for reports."""
    return daemon.operators.get("boss") or daemon.add_operator("boss", ["supervisor"])


def request(daemon, to, provider=None, due=None, kind="report", subject="管理状況の報告",
            text="本人確認情報の適切な管理のための措置の実施状況を報告してください。\n"):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(text)
    try:
        args = ["report", "request", "--to", urn(to), "--kind", kind, "--subject", subject,
                "--text-file", f.name, "--due", due or jst_today(30)]
        if provider:
            args += ["--provider", provider]
        return boss(daemon).ctl(*args)
    finally:
        os.unlink(f.name)


def reports(daemon, **filters):
    args = ["report", "list"]
    for k, v in filters.items():
        args += ["--" + k, v]
    return {r["id"]: r for r in daemon.admin(*args)["reports"]}


def state(daemon, rid):
    r = reports(daemon).get(rid)
    return r and r["state"]


def wait_state(daemon, rid, want, timeout=30):
    wait_until("%s: report %s %s" % (daemon.name, rid, want),
               lambda: state(daemon, rid) == want, timeout)


class Body:
    """A body's link to a server over provide: its node certificate outside, a staff card
    inside (None: the body's own certificate inside, no staff card)."""

    def __init__(self, net, body, server, staff=True):
        cert, key = net.cert(body)
        inner = net.cert(STAFF[body]) if staff else None
        self.urn, self.server = urn(body), urn(server)
        self.peer = Peer(net[GW].address, cert, key, net.ca(), inner=inner)

    def __enter__(self):
        answer = self.peer.connect(self.server, "provide")
        assert answer == "OK", answer
        return self

    def __exit__(self, *exc):
        self.peer.close()

    def send(self, type_, body):
        ack = self.peer.exchange(self.peer.message(type_, self.urn, self.server, body))
        assert ack["type"] == "ack", ack
        return ack["body"]

    def fetch(self):
        ack = self.send("report.fetch", {})
        assert ack["status"] == "accepted", ack
        return {r["id"]: r for r in ack["result"]["reports"]}

    def answer(self, rid, data=b"All measures are in place.\n", media="text/plain", **extra):
        body = {"id": rid, "media": media, "data": base64.b64encode(data).decode()}
        body.update(extra)
        return self.send("report.answer", body)


def refusal(fn, *args, **kw):
    """The message of a juki-ctl call that must fail."""
    _, error, err = fails(fn, *args, **kw)
    return "%s %s" % (error, err)


def refused(ack, reason):
    assert ack["status"] == "rejected" and ack["reason"] == reason, ack


def case_municipality_through_pref_and_national_to_agency():
    """第6-8(1)エ: a municipality asks an agency the national server provided to, through
    its prefecture and the national server; the agency fetches it at the national server,
    answers it, and the answer reaches the municipality."""
    with network() as net:
        r = request(net[CS], NENKIN, provider="national", kind="improvement")
        rid = r["id"]
        assert r["state"] == "sent" and r["next"] == urn(PREF), r
        wait_state(net[JLIS], rid, "received")
        held = reports(net[JLIS])[rid]
        assert held["role"] == "held" and held["from"] == urn(PREF), held
        assert held["requester"] == urn(CS) and held["kind"] == "improvement", held
        relay = reports(net[PREF])[rid]
        assert relay["role"] == "passed-on" and relay["next"] == urn(JLIS), relay
        # The municipality learns from its prefecture that the holder has it.
        wait_state(net[CS], rid, "received")
        # Nothing is held for the agency at the prefecture: it was not the provider.
        with Body(net, NENKIN, PREF) as b:
            assert rid not in b.fetch()
        with Body(net, NENKIN, JLIS) as b:
            got = b.fetch()
            assert got[rid]["requester"] == urn(CS) and got[rid]["due"] == jst_today(30)
            assert "報告してください" in got[rid]["text"]
            assert b.answer(rid)["status"] == "accepted"
            assert rid not in b.fetch()  # answered: no longer open
        wait_state(net[PREF], rid, "answered")
        wait_state(net[CS], rid, "answered")
        shown = net[CS].admin("report", "show", rid)
        assert shown["by"] == STAFF[NENKIN], shown
        assert base64.b64decode(shown["answer"]["data"]) == b"All measures are in place.\n"
        assert shown["answer"]["media"] == "text/plain"
        # Every step is in the operation history, at each server.
        steps = [(e["operator"], e["outcome"]) for e in history(net[JLIS])
                 if e["action"] == "report.answer" and e.get("target") == rid]
        assert steps == [(STAFF[NENKIN], "ok")], steps
        for d, action in ((net[CS], "report.request"), (net[PREF], "report.request"),
                          (net[JLIS], "report.request"), (net[JLIS], "report.fetch"),
                          (net[CS], "report.answered")):
            assert any(e["action"] == action for e in history(d)), (d.name, action)
        # The answer can be saved as the document it is.
        out = os.path.join(net.dir, "answer.txt")
        net[CS].admin("report", "show", rid, "--save", out)
        with open(out, "rb") as f:
            assert f.read() == b"All measures are in place.\n"


def case_pref_asks_its_executive_body():
    """第6-8(4)ア: a prefecture asks its own executive body directly; the body fetches it
    from the prefecture and answers there.  An executive body of another prefecture is
    not the prefecture's to ask directly (the national server provides to it)."""
    with network() as net:
        r = request(net[PREF], KYOIKU)
        rid = r["id"]
        assert r["state"] == "received" and r.get("next") is None, r
        with Body(net, KYOIKU, PREF) as b:
            assert rid in b.fetch()
            pdf = b"%PDF-1.4\n% a report\n"
            assert b.answer(rid, data=pdf, media="application/pdf")["status"] == "accepted"
        shown = net[PREF].admin("report", "show", rid)
        assert shown["state"] == "answered" and shown["by"] == STAFF[KYOIKU], shown
        assert base64.b64decode(shown["answer"]["data"]) == pdf
        assert shown["answer"]["media"] == "application/pdf"
        # Another prefecture's executive body: only through the national server.
        err = refusal(request, net[PREF], OSAKA)
        assert "report-route" in err, err
        r2 = request(net[PREF], OSAKA, provider="national")
        wait_state(net[JLIS], r2["id"], "received")
        wait_state(net[PREF], r2["id"], "received")


def case_municipality_asks_its_prefecture():
    """第6-8(4)イ: a municipality asks its prefecture about the prefecture's own use; the
    prefecture answers (juki-ctl report answer) and the municipality gets the answer."""
    with network() as net:
        rid = request(net[CS], PREF)["id"]
        wait_state(net[CS], rid, "received")
        doc = os.path.join(net.dir, "pref-answer.txt")
        with open(doc, "w") as f:
            f.write("利用状況は適切に管理されています。\n")
        res = boss(net[PREF]).ctl("report", "answer", rid, "--file", doc)
        assert res["state"] == "answered", res
        wait_state(net[CS], rid, "answered")
        shown = net[CS].admin("report", "show", rid)
        assert base64.b64decode(shown["answer"]["data"]).decode().startswith("利用状況")
        # Only a request addressed to the prefecture itself is its to answer.
        other = request(net[PREF], KYOIKU)["id"]
        err = refusal(boss(net[PREF]).ctl, "report", "answer", other, "--file", doc)
        assert "its body answers it" in err, err


def case_overdue_alerted_once():
    """A request not answered by its due date (a Japan day) becomes overdue at the
    requester, with one report-overdue alert, shown in the list; an answer still ends it."""
    with network() as net:
        rid = request(net[CS], NENKIN, due=jst_today(0))["id"]
        wait_state(net[CS], rid, "received")
        assert net[CS].alert_counts().get("report-overdue", 0) == 0
        cs = net[CS]
        cs.extra["clock_offset"] = "%dms" % (2 * DAY_MS)
        cs.write_config()
        before = cs.log_text().count(": reloaded")
        cs.signal(signal.SIGHUP)
        wait_until("cs reloaded", lambda: cs.log_text().count(": reloaded") > before)
        wait_state(cs, rid, "overdue")
        listed = reports(cs, state="overdue")
        assert list(listed) == [rid] and listed[rid]["alerted"], listed
        overdue = [e for e in history(cs) if e["action"] == "report.overdue"]
        assert [e["target"] for e in overdue] == [rid], overdue
        alerts = [a for a in cs.alerts()["recent"] if a["code"] == "report-overdue"]
        assert len(alerts) == 1 and rid in alerts[0]["detail"], alerts
        with Body(net, NENKIN, PREF) as b:
            assert b.answer(rid)["status"] == "accepted"
        # Answered late, after many more looks (each poll is one): still one alert.
        wait_state(cs, rid, "answered")
        assert cs.alert_counts().get("report-overdue") == 1
        assert len([e for e in history(cs) if e["action"] == "report.overdue"]) == 1


def case_bad_answers_refused():
    """Malformed, oversized and misdirected answers are refused with their reasons, and
    a request not routed as 第6-8 says is refused by policy or by the server."""
    with network() as net:
        rid = request(net[PREF], KYOIKU)["id"]
        theirs = request(net[PREF], NENKIN)["id"]
        with Body(net, KYOIKU, PREF) as b:
            # A body sees only what is held for it.
            assert list(b.fetch()) == [rid]
            refused(b.answer(rid, data=b"\xff\xfe not UTF-8"), "invalid-field")
            refused(b.answer(rid, data=b"not a pdf", media="application/pdf"),
                    "invalid-field")
            refused(b.answer(rid, media="text/html"), "invalid-field")
            refused(b.answer(rid, extra="x"), "invalid-field")
            refused(b.send("report.answer", {"id": rid, "media": "text/plain",
                                             "data": "!!not base64!!"}), "invalid-field")
            refused(b.answer(rid, data=b"x" * (256 * 1024 + 1)), "answer-too-large")
            # Another body's request is unknown to this one.
            refused(b.answer(theirs), "report-unknown")
            refused(b.send("report.fetch", {"all": True}), "invalid-field")
            # A body does not pass requests on.
            fake = {"id": rid, "kind": "report", "requester": urn(KYOIKU),
                    "body": urn(NENKIN), "provider": "pref", "subject": "x", "text": "x",
                    "due": jst_today(3)}
            refused(b.send("report.request", fake), "report-route")
            assert b.answer(rid, data=b"x" * (256 * 1024))["status"] == "accepted"
            refused(b.answer(rid), "report-answered")
        # Without a staff card the body's messages are refused.
        with Body(net, NENKIN, PREF, staff=False) as b:
            refused(b.send("report.fetch", {}), "no-staff-card")
        assert state(net[PREF], theirs) == "received"
        # A municipality never asks at the national server directly: the policy has no
        # provide flow from a CS to it, and the gateway refuses the connection.
        cert, key = net.cert(CS)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            answer = p.connect(urn(JLIS), "provide")
            assert answer.startswith("DENY policy"), answer
        # A municipality asking its prefecture to hold a request for another prefecture's
        # executive body: refused where it is asked, and by the prefecture.
        err = refusal(request, net[CS], OSAKA)
        assert "report-route" in err, err
        cert, key = net.cert(CS)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn(PREF), "provide") == "OK"
            doc = p.message("report.request", urn(CS), urn(PREF), {
                "id": rid.replace(rid[-4:], "0000"), "kind": "report", "requester": urn(CS),
                "body": urn(OSAKA), "provider": "pref", "subject": "x", "text": "x",
                "due": jst_today(3)})
            refused(p.exchange(doc)["body"], "report-route")
            # A request id kept here already, in another message: refused, the first stands.
            doc = p.message("report.request", urn(CS), urn(PREF), {
                "id": theirs, "kind": "report", "requester": urn(CS), "body": urn(NENKIN),
                "provider": "pref", "subject": "x", "text": "x", "due": jst_today(3)})
            refused(p.exchange(doc)["body"], "report-exists")
            # report.status about a request this CS did not pass: unknown.
            doc = p.message("report.status", urn(CS), urn(PREF), {"id": theirs})
            refused(p.exchange(doc)["body"], "report-unknown")
        assert reports(net[PREF])[theirs]["requester"] == urn(PREF)
        refusals = [e for e in history(net[PREF])
                    if e["action"] == "report.answer" and e["outcome"] != "ok"]
        assert len(refusals) >= 7, refusals


def case_pref_restart_midway():
    """The prefecture stops twice on the way (a request queued toward it, an answer
    queued toward it): nothing is lost, nothing is applied twice."""
    with network() as net:
        pref = net[PREF]
        pref.stop()
        rid = request(net[CS], NENKIN, provider="national")["id"]
        assert state(net[CS], rid) == "sent"
        pref.start()
        wait_state(net[JLIS], rid, "received")
        wait_state(pref, rid, "received")
        pref.kill9()
        with Body(net, NENKIN, JLIS) as b:
            assert b.answer(rid)["status"] == "accepted"
        wait_state(net[JLIS], rid, "answered")
        pref.start()
        wait_state(pref, rid, "answered")
        wait_state(net[CS], rid, "answered")
        for d in (net[CS], pref, net[JLIS]):
            assert list(reports(d)) == [rid], d.name
        taken = [e for e in history(pref) if e["action"] == "report.request"]
        assert len(taken) == 1, taken
        answers = [e for e in history(pref) if e["action"] == "report.answer"]
        assert len(answers) == 1, answers
        assert net[JLIS].admin("status")["outbound"]["queued"] == 0


def terminal(net, body, server, staff, token=False, name=None):
    """The body's terminal for juki-ctl provide: its body file naming server, a staff card
    (on a SoftHSM2 token, or an encrypted key file)."""
    card = Card(net, "urn:juki:op:%s:%s" % (body, staff), token=token)
    return Terminal(net, card, gateways=[net[GW].address], body=body, server=server,
                    name=name or "%s-%s.yaml" % (fname(body), fname(server)))


def doc_file(net, name, data):
    path = os.path.join(net.dir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def case_agency_answers_with_juki_ctl():
    """第6-8(1)エ with juki-ctl at the body: a municipality asks an agency the national server
    provided to, through its prefecture and the national server; the agency's staff member
    sees it with juki-ctl provide reports (staff card on a SoftHSM2 token) and answers it with
    juki-ctl provide reply; the answer, and who gave it, is seen at the municipality."""
    with network() as net:
        rid = request(net[CS], NENKIN, provider="national")["id"]
        wait_state(net[JLIS], rid, "received")
        at_jlis = terminal(net, NENKIN, JLIS, "kato", token=True)
        at_pref = terminal(net, NENKIN, PREF, "kato2")
        staff = "urn:juki:op:%s:kato" % NENKIN
        # At the prefecture nothing is held for the agency: the national server provided.
        assert at_pref.ctl("reports")["reports"] == []
        got = at_jlis.ctl("reports")
        assert (got["body"], got["server"], got["staff"]) == (urn(NENKIN), urn(JLIS), staff)
        assert [r["id"] for r in got["reports"]] == [rid] and got["total"] == 1, got
        held = got["reports"][0]
        assert held["requester"] == urn(CS) and held["kind"] == "report", held
        assert held["due"] == jst_today(30) and "報告してください" in held["text"], held
        text = at_jlis.ctl("reports", json_out=False)
        lines = text.splitlines()
        assert lines[0] == "1 management-report requests held for %s at %s" % (
            urn(NENKIN), urn(JLIS)), text
        assert rid in lines[2] and urn(CS) in lines[2] and "管理状況の報告" in lines[2], text
        answer = "本人確認情報の管理措置は規程どおり実施しています。\n".encode()
        r = at_jlis.ctl("reply", rid, "--file", doc_file(net, "answer.txt", answer))
        assert r == {"id": rid, "media": "text/plain", "size": len(answer),
                     "state": "answered", "server": urn(JLIS), "staff": staff}, r
        assert at_jlis.ctl("reports")["reports"] == []  # answered: no longer open
        wait_state(net[JLIS], rid, "answered")
        wait_state(net[PREF], rid, "answered")
        wait_state(net[CS], rid, "answered")
        shown = net[CS].admin("report", "show", rid)
        assert shown["by"] == staff, shown
        assert shown["answer"]["media"] == "text/plain", shown
        assert base64.b64decode(shown["answer"]["data"]) == answer
        steps = [(e["operator"], e["outcome"]) for e in history(net[JLIS])
                 if e["action"] in ("report.fetch", "report.answer")]
        assert steps == [(staff, "ok")] * 4, steps  # three fetches and the answer


def case_juki_ctl_reply_refused():
    """juki-ctl provide reply refuses a missing file, an oversized document, a PDF that is
    not a PDF and a text that is not UTF-8 before anything is sent (exit 2), and shows the
    server's refusal with its reason for an unknown id, another body's request and a second
    answer (exit 1); a PDF is answered as one."""
    with network() as net:
        rid = request(net[PREF], KYOIKU)["id"]
        theirs = request(net[PREF], NENKIN)["id"]
        t = terminal(net, KYOIKU, PREF, "ito")
        staff = "urn:juki:op:%s:ito" % KYOIKU
        assert [r["id"] for r in t.ctl("reports")["reports"]] == [rid]
        text = doc_file(net, "a.txt", b"ok\n")
        for args, want in (
                ((rid, "--file", os.path.join(net.dir, "missing.txt")), "No such file"),
                ((rid, "--file", doc_file(net, "big.txt", b"x" * (256 * 1024 + 1))),
                 "over 256 KiB"),
                ((rid, "--file", text, "--media", "application/pdf"), "not a PDF"),
                ((rid, "--file", doc_file(net, "bin.txt", b"\xff\xfe")), "not UTF-8"),
                ((rid, "--file", doc_file(net, "empty.txt", b"")), "empty"),
                ((rid, "--file", text, "--media", "text/html"), "--media")):
            code, out, err = t.ctl("reply", *args, check=False)
            assert code == 2 and want in err, (args, code, err)
        # A wrong card passphrase: exit 4, nothing sent.
        code, out, err = t.ctl("reply", rid, "--file", text, card_pin="0000", check=False)
        assert code == 4, (code, err)
        assert not [e for e in history(net[PREF]) if e["action"] == "report.answer"]
        # The server's refusals, with their reasons.
        unknown = rid[:-4] + ("0000" if not rid.endswith("0000") else "1111")
        for other in (unknown, theirs):
            code, out, err = t.ctl("reply", other, "--file", text, check=False)
            assert code == 1 and "provide reply: report-unknown: " in err, (code, err)
            assert json.loads(out)["error"] == "report-unknown", out
        # A PDF, known by its first bytes, is answered as one; a second answer is refused.
        pdf = b"%PDF-1.4\n% a report\n"
        r = t.ctl("reply", rid, "--file", doc_file(net, "a.pdf", pdf))
        assert r["media"] == "application/pdf" and r["size"] == len(pdf), r
        code, out, err = t.ctl("reply", rid, "--file", text, check=False)
        assert code == 1 and "report-answered" in err, (code, err)
        shown = net[PREF].admin("report", "show", rid)
        assert shown["by"] == staff and base64.b64decode(shown["answer"]["data"]) == pdf
        assert state(net[PREF], theirs) == "received"
        answers = [e["outcome"] for e in history(net[PREF])
                   if e["action"] == "report.answer" and e["operator"] == staff]
        assert len(answers) == 4 and answers.count("ok") == 1, answers


if __name__ == "__main__":
    run_cases([
        case_municipality_through_pref_and_national_to_agency,
        case_pref_asks_its_executive_body,
        case_municipality_asks_its_prefecture,
        case_overdue_alerted_once,
        case_bad_answers_refused,
        case_pref_restart_midway,
        case_agency_answers_with_juki_ctl,
        case_juki_ctl_reply_refused,
    ])
