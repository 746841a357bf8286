"""Management reports to the certification authority (第6-8(6)ウ・エ; docs/protocol.md §15.5).

The national server, a 委任 prefecture (through the national server) and a municipality
(through its prefecture and the national server) ask the certification authority for a
report on its management measures for the 異動等情報 it was given.  The request is held at
the link server juki-authlinkd (urn:juki:authlink:0) that sends the authority its
異動等情報; the authority, played here by a test peer with the ca:jpki node certificate
(jukitest.peer.Peer over ninsho), fetches and answers there, and the answer comes back to
whoever asked.
"""

import base64
import datetime
import os
import tempfile

from jukitest import Network, fails, history, run_cases, run_ctl, urn, wait_until
from jukitest.peer import Peer

GW, CS, PREF, JLIS, LINK = "fwgate:east", "cs:131016", "pref:13", "jlis:0", "authlink:0"
CA, OTHER_CA, NENKIN = "ca:jpki", "ca:other", "agency:nenkin"


def jst_today(offset_days=0):
    now = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=9)))
    return (now + datetime.timedelta(days=offset_days)).strftime("%Y-%m-%d")


def configure(net):
    net[CS].extra["report_poll"] = "200ms"


def network(**kw):
    return Network([GW, CS, PREF, JLIS, LINK], extra_identities=[CA, OTHER_CA, NENKIN],
                   configure=configure, **kw)


def boss(daemon):
    """The daemon's supervisor (責任者), who asks for reports."""
    return daemon.operators.get("boss") or daemon.add_operator("boss", ["supervisor"])


def request(daemon, to=CA, provider=None, subject="異動等情報の管理状況の報告"):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("異動等情報の適切な管理のための措置の実施状況を報告してください。\n")
    try:
        args = ["report", "request", "--to", urn(to), "--kind", "report", "--subject", subject,
                "--text-file", f.name, "--due", jst_today(30)]
        if provider:
            args += ["--provider", provider]
        return boss(daemon).ctl(*args)
    finally:
        os.unlink(f.name)


def reports(daemon):
    return {r["id"]: r for r in daemon.admin("report", "list")["reports"]}


def state(daemon, rid):
    r = reports(daemon).get(rid)
    return r and r["state"]


def wait_state(daemon, rid, want, timeout=30):
    wait_until("%s: report %s %s" % (daemon.name, rid, want),
               lambda: state(daemon, rid) == want, timeout)


def refused(ack, reason):
    assert ack["status"] == "rejected" and ack["reason"] == reason, ack


class Authority:
    """The certification authority's link to the link server over ninsho, with its node
    certificate (no staff card)."""

    def __init__(self, net, name=CA, server=LINK):
        cert, key = net.cert(name)
        self.urn, self.server = urn(name), urn(server)
        self.peer = Peer(net[GW].address, cert, key, net.ca())

    def __enter__(self):
        answer = self.peer.connect(self.server, "ninsho")
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

    def answer(self, rid, data, media="text/plain"):
        return self.send("report.answer", {"id": rid, "media": media,
                                           "data": base64.b64encode(data).decode()})


def case_asked_at_jlis_pref_and_cs_answered_by_the_authority():
    """第6-8(6)ウ・エ: the national server, a 委任 prefecture and a municipality ask the
    authority; each request is held at authlink:0, the authority fetches and answers them
    there with its node certificate, and each answer reaches the server that asked."""
    with network() as net:
        link = net[LINK]
        asked = {}
        for d in (net[JLIS], net[PREF], net[CS]):
            r = request(d)
            assert r["to"] == urn(CA), r
            asked[d.name] = r["id"]
        # The route: jlis -> authlink; pref -> jlis -> authlink; cs -> pref -> jlis -> authlink.
        assert reports(net[JLIS])[asked[JLIS]]["next"] == urn(LINK)
        assert reports(net[PREF])[asked[PREF]]["next"] == urn(JLIS)
        assert reports(net[CS])[asked[CS]]["next"] == urn(PREF)
        for rid in asked.values():
            wait_state(link, rid, "received")
            held = reports(link)[rid]
            assert held["role"] == "held" and held["from"] == urn(JLIS), held
        # jlis learns "received" from the link server's ack.
        wait_state(net[JLIS], asked[JLIS], "received")
        with Authority(net) as ca:
            fetched = ca.fetch()
            assert set(fetched) == set(asked.values()), fetched
            assert fetched[asked[CS]]["requester"] == urn(CS)
            assert fetched[asked[PREF]]["requester"] == urn(PREF)
            assert fetched[asked[JLIS]]["requester"] == urn(JLIS)
            docs = {}
            for name, rid in asked.items():
                docs[name] = ("措置は適切に実施しています (%s)。\n" % name).encode()
                ack = ca.answer(rid, docs[name])
                assert ack["status"] == "accepted", ack
            assert ca.fetch() == {}  # answered: no longer open
        for name, rid in asked.items():
            wait_state(net[name], rid, "answered")
            shown = net[name].admin("report", "show", rid)
            assert shown["by"] == urn(CA), shown
            assert base64.b64decode(shown["answer"]["data"]) == docs[name], shown
        # On the way: the prefecture and jlis have the municipality's answer too.
        for d in (net[PREF], net[JLIS], link):
            assert state(d, asked[CS]) == "answered", d.name
        # Every step is in the operation history.
        steps = [(e["action"], e["operator"], e["outcome"]) for e in history(link)
                 if e["action"].startswith("report.")]
        assert steps.count(("report.request", urn(JLIS), "ok")) == 3, steps
        assert ("report.fetch", urn(CA), "ok") in steps, steps
        assert steps.count(("report.answer", urn(CA), "ok")) == 3, steps
        for d, action in ((net[JLIS], "report.request"), (net[JLIS], "report.received"),
                          (net[JLIS], "report.answer"), (net[PREF], "report.request"),
                          (net[PREF], "report.answer"), (net[CS], "report.request"),
                          (net[CS], "report.answered")):
            assert any(e["action"] == action for e in history(d)), (d.name, action)
        # The link server lists and shows, and holds no personal data: only management text.
        shown = link.admin("report", "show", asked[CS])
        assert shown["state"] == "answered" and shown["requester"] == urn(CS), shown


def case_wrong_routes_and_other_authority_refused():
    """Routes the standard does not name are refused with report-route where asked or on
    the way; another authority and other nodes are refused at the link server (not-a-body),
    an unknown id report-unknown, a second answer report-answered; each in the history."""
    with network() as net:
        link = net[LINK]
        # The national server provided: never "pref" there.
        _, error, err = fails(request, net[JLIS], provider="pref")
        assert "report-route" in "%s %s" % (error, err), (error, err)
        # The prefecture provides no 異動等情報 itself (no ninsho.authlink of its own).
        _, error, err = fails(request, net[PREF], provider="pref")
        assert "report-route" in err and "provides no" in err, err
        # Another authority than the one the national server provides to.
        _, error, err = fails(request, net[JLIS], to=OTHER_CA)
        assert "report-route" in err, err
        # A municipality cannot know; its prefecture refuses, the CS learns it and alerts.
        wrong = request(net[CS], provider="pref")["id"]
        wait_state(net[CS], wrong, "refused")
        assert reports(net[CS])[wrong]["reason"] == "report-route"
        alerts = [a for a in net[CS].alerts()["recent"] if a["code"] == "report-refused"]
        assert alerts and wrong in alerts[0]["detail"], alerts
        assert wrong not in reports(link)
        rid = request(net[JLIS])["id"]
        wait_state(link, rid, "received")
        # Another authority: refused, and learns nothing of the request.
        with Authority(net, OTHER_CA) as other:
            refused(other.send("report.fetch", {}), "not-a-body")
            refused(other.answer(rid, b"x\n"), "not-a-body")
        with Authority(net) as ca:
            # The authority asks nothing of the link server.
            doc = {"id": rid[:-4] + "0000", "kind": "report", "requester": urn(CA),
                   "body": urn(CA), "provider": "national", "subject": "x", "text": "x",
                   "due": jst_today(3)}
            refused(ca.send("report.request", doc), "report-route")
            unknown = rid[:-4] + ("1111" if not rid.endswith("1111") else "2222")
            refused(ca.answer(unknown, b"x\n"), "report-unknown")
            refused(ca.send("report.fetch", {"all": True}), "invalid-field")
            refused(ca.answer(rid, b"\xff\xfe"), "invalid-field")
            refused(ca.answer(rid, b"x" * (256 * 1024 + 1)), "answer-too-large")
            assert ca.answer(rid, b"ok\n")["status"] == "accepted"
            refused(ca.answer(rid, b"again\n"), "report-answered")
        wait_state(net[JLIS], rid, "answered")
        assert base64.b64decode(net[JLIS].admin("report", "show", rid)["answer"]["data"]) \
            == b"ok\n"
        # The authority cannot reach the national server, nor a body the link server.
        cert, key = net.cert(CA)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn(JLIS), "ninsho").startswith("DENY policy")
        cert, key = net.cert(NENKIN)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn(LINK), "ninsho").startswith("DENY policy")
        # Each refusal at the link server is in its history with its reason.
        outcomes = [(e["action"], e["operator"], e["outcome"]) for e in history(link)
                    if e["action"].startswith("report.")]
        for want in (("report.fetch", urn(OTHER_CA), "not-a-body"),
                     ("report.answer", urn(OTHER_CA), "not-a-body"),
                     ("report.request", urn(CA), "report-route"),
                     ("report.answer", urn(CA), "report-unknown"),
                     ("report.answer", urn(CA), "invalid-field"),
                     ("report.answer", urn(CA), "report-answered"),
                     ("report.answer", urn(CA), "ok")):
            assert want in outcomes, (want, outcomes)
        refusals = [e for e in history(net[PREF]) if e["action"] == "report.request"
                    and e["outcome"] == "report-route"]
        assert len(refusals) == 1, refusals


def case_prefecture_providing_itself():
    """第6-8(6)ウ first paragraph (都道府県知事), エ: a prefecture that provides 異動等情報
    itself through its own link server (ninsho.authlink = authlink:13) holds its own and its
    municipalities' requests there; the authority answers there, and the answer comes back
    over ninsho to the prefecture and on to the municipality.  What the national server
    provided (it provides nothing here) is refused on the way."""
    link13 = "authlink:13"

    def configure13(net):
        configure(net)
        net[PREF].ninsho = {"authlink": urn(link13), "ca": urn(CA)}
        net[link13].authlink["sources"] = "[%s]" % urn(PREF)

    with Network([GW, CS, PREF, JLIS, link13], extra_identities=[CA],
                 configure=configure13) as net:
        link = net[link13]
        mine = request(net[PREF])  # provider pref: the prefecture has its own link server
        assert mine["next"] == urn(link13), mine
        theirs = request(net[CS], provider="pref")["id"]
        assert reports(net[CS])[theirs]["next"] == urn(PREF)
        wait_state(net[PREF], mine["id"], "received")
        wait_state(link, theirs, "received")
        assert reports(net[PREF])[theirs]["next"] == urn(link13)
        assert reports(link)[theirs]["from"] == urn(PREF)
        # The CS learns from its prefecture that the link server holds it.
        wait_until("the CS learns its request is held",
                   lambda: state(net[CS], theirs) == "received", 30)
        # What the national server provided goes through it: it has no link server here.
        national = request(net[PREF], provider="national")["id"]
        wait_state(net[PREF], national, "refused")
        assert reports(net[PREF])[national]["reason"] == "report-route"
        with Authority(net, CA, link13) as ca:
            assert set(ca.fetch()) == {mine["id"], theirs}
            assert ca.answer(mine["id"], b"pref ok\n")["status"] == "accepted"
            assert ca.answer(theirs, b"cs ok\n")["status"] == "accepted"
        wait_state(net[PREF], mine["id"], "answered")
        wait_state(net[CS], theirs, "answered")
        shown = net[CS].admin("report", "show", theirs)
        assert shown["by"] == urn(CA) and base64.b64decode(shown["answer"]["data"]) == b"cs ok\n"
        shown = net[PREF].admin("report", "show", mine["id"])
        assert base64.b64decode(shown["answer"]["data"]) == b"pref ok\n", shown
        answers = [e for e in history(net[PREF]) if e["action"] == "report.answer"
                   and e["operator"] == urn(link13) and e["outcome"] == "ok"]
        assert len(answers) == 2, answers


def case_link_server_and_jlis_restart_midway():
    """The link server is down when jlis passes a request on, and killed (-9) after the
    answer; jlis is down when the link server sends the answer back: nothing is lost,
    nothing is held or applied twice."""
    with network() as net:
        link, jlis = net[LINK], net[JLIS]
        link.stop()
        rid = request(net[CS])["id"]
        wait_state(jlis, rid, "sent")
        link.start()
        wait_state(link, rid, "received")
        wait_state(jlis, rid, "received")
        jlis.stop()
        with Authority(net) as ca:
            assert list(ca.fetch()) == [rid]
            assert ca.answer(rid, b"ok\n")["status"] == "accepted"
        link.kill9()
        link.start()
        assert state(link, rid) == "answered"
        jlis.start()
        for d in (jlis, net[PREF], net[CS]):
            wait_state(d, rid, "answered")
        for d in (net[CS], net[PREF], jlis, link):
            assert list(reports(d)) == [rid], d.name
        held = [e for e in history(link) if e["action"] == "report.request"]
        assert len(held) == 1, held
        back = [e for e in history(jlis) if e["action"] == "report.answer"]
        assert len(back) == 1 and back[0]["operator"] == urn(LINK), back
        wait_until("the link server's outbox is empty",
                   lambda: link.admin("status")["outbound"]["queued"] == 0, 30)


def case_refused_by_the_link_server():
    """A link server fed to another authority than jlis's ninsho.ca refuses what jlis
    passes on (report-route): refused at jlis with the alert report-refused, in the link
    server's history, never held there."""

    def configure_other(net):
        configure(net)
        net[LINK].authlink["ca"] = urn(OTHER_CA)

    with Network([GW, CS, PREF, JLIS, LINK], extra_identities=[CA, OTHER_CA],
                 configure=configure_other) as net:
        rid = request(net[PREF])["id"]
        wait_state(net[JLIS], rid, "refused")
        shown = net[JLIS].admin("report", "show", rid)
        assert shown["reason"] == "report-route", shown
        alerts = [a for a in net[JLIS].alerts()["recent"] if a["code"] == "report-refused"]
        assert len(alerts) == 1 and rid in alerts[0]["detail"], alerts
        assert rid not in reports(net[LINK])
        refusals = [e for e in history(net[LINK]) if e["action"] == "report.request"]
        assert [(e["operator"], e["outcome"]) for e in refusals] == \
            [(urn(JLIS), "report-route")], refusals
        assert state(net[PREF], rid) == "sent"
        with Authority(net, OTHER_CA) as other:
            assert other.fetch() == {}


def case_copy_through_another_centre():
    """A prefecture with two national centres passes the same request to the authority
    through each (docs/architecture.md §27): the link server takes the copy through the
    second centre (played by a peer with jlis:west's certificate) as the same request —
    one row, both routes, the answer sent back both ways — and still refuses, as
    report-exists, a request under that id that differs in anything, or a copy through a
    centre it came through already."""
    west = "jlis:west"
    with Network([GW, CS, PREF, JLIS, LINK], extra_identities=[CA, west],
                 configure=configure) as net:
        link = net[LINK]
        rid = request(net[PREF])["id"]
        wait_state(link, rid, "received")
        shown = link.admin("report", "show", rid)
        doc = {"id": rid, "kind": shown["kind"], "requester": shown["requester"],
               "body": shown["to"], "provider": shown["provider"], "subject": shown["subject"],
               "text": shown["text"], "due": shown["due"]}
        cert, key = net.cert(west)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn(LINK), "ninsho") == "OK"

            def send(body):
                ack = p.exchange(p.message("report.request", urn(west), urn(LINK), body))
                assert ack["type"] == "ack", ack
                return ack["body"]
            # Another request under the same id: refused, whatever differs.
            for key_, value in (("subject", "別の件"), ("text", "別の本文\n"),
                                ("requester", urn(CS)), ("due", jst_today(31))):
                refused(send(dict(doc, **{key_: value})), "report-exists")
            # The same request through west: taken, no second row.
            assert send(doc)["status"] == "accepted"
            # Through west again (another message): refused, west's route is taken.
            refused(send(doc), "report-exists")
        assert list(reports(link)) == [rid]
        shown = link.admin("report", "show", rid)
        assert shown["from"] == urn(JLIS) and shown["state"] == "received", shown
        assert {c["centre"]: c["state"] for c in shown["centres"]} == \
            {urn(JLIS): "received", urn(west): "received"}, shown
        # The first centre cannot re-use the id for something else either.
        cert, key = net.cert(JLIS)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn(LINK), "ninsho") == "OK"
            ack = p.exchange(p.message("report.request", urn(JLIS), urn(LINK),
                                       dict(doc, subject="別の件")))
            refused(ack["body"], "report-exists")
        steps = [(e["operator"], e["outcome"], e.get("detail", "")) for e in history(link)
                 if e["action"] == "report.request" and e.get("target") == rid]
        assert [s[:2] for s in steps].count((urn(west), "report-exists")) == 5, steps
        assert [s[:2] for s in steps].count((urn(JLIS), "report-exists")) == 1, steps
        taken = [s for s in steps if s[:2] == (urn(west), "ok")]
        assert len(taken) == 1 and "the same request through" in taken[0][2], steps
        # Answered once; the answer goes back through both centres.
        with Authority(net) as ca:
            assert list(ca.fetch()) == [rid]
            assert ca.answer(rid, b"ok\n")["status"] == "accepted"
            assert ca.fetch() == {}
        wait_state(net[PREF], rid, "answered")
        queued = {q["dest"] for q in link.admin("outbox")["queues"]}
        assert urn(west) in queued, queued


if __name__ == "__main__":
    run_cases([
        case_asked_at_jlis_pref_and_cs_answered_by_the_authority,
        case_wrong_routes_and_other_authority_refused,
        case_prefecture_providing_itself,
        case_link_server_and_jlis_restart_midway,
        case_refused_by_the_link_server,
        case_copy_through_another_centre,
    ])
