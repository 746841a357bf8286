"""Two national centres (docs/architecture.md §27): a prefecture delivers every record to
both, urn:juki:jlis:east and urn:juki:jlis:west, each in a network namespace of its own
joined to the gateway by a veth pair. The line to one is cut in the middle of a load: the
other keeps receiving, the cut one catches up when the line returns, and the update counts
and digests agree at both (`juki-ctl reconcile --centres`), nothing lost or doubled. A
centre whose store is lost catches up by itself from the prefecture's reconciliation. An
agency's query falls back to the other centre, both boards show the network, and the
certification authority is fed each 異動等情報 entry once from whichever centre is reachable.

Needs root (ip netns, veth); without it every case is skipped, and says so."""

import base64
import json
import os
import signal
import subprocess
import sys
import threading

from jukitest import (CARD_PIN, CTL, SOURCE, Netns, Network, add_residents, board_entry,
                      history, run_cases, secret_fd, store_rows, wait_board, wait_until)
from jukitest.authority import authority_node
from jukitest.synth import Synth, change_row, import_csv
from test_provide_client import (AGREEMENT, BODY, JIMU, PURPOSE, STAFF, Body, Card, agreement,
                                 queries_file, read_answers)
from test_ninsho_reports import Authority
from test_ninsho_reports import reports as report_rows
from test_ninsho_reports import request as ninsho_request
from test_reports import request as report_request

AUTHLINK, CA = "authlink:0", "ca:jpki"

GW, A, PREF, EAST, WEST = "fwgate:east", "cs:131016", "pref:13", "jlis:east", "jlis:west"


def records(net, node):
    return net[node].status()["records"]


def at_centres(net, n):
    return all(records(net, c)["current"] == n for c in (EAST, WEST))


def make_centres(net):
    """Each centre in a namespace of its own; the prefecture notices a silent line soon."""
    net.lines = {c: net.put_in_netns(c, c.split(":")[1]) for c in (EAST, WEST)}
    net[PREF].delivery["idle_timeout"] = "2s"


def check_agree(net, n):
    """What a user checks: reconcile --centres at the prefecture agrees, each centre holds
    n records, each once, counted once as received from the prefecture."""
    out = net[PREF].ctl("reconcile", "--centres")
    assert out["dests"] == ["urn:juki:jlis:east", "urn:juki:jlis:west"], out
    assert len(out["centres"]) == 1, out["centres"]
    day = out["centres"][0]
    assert day["agree"] is True, day
    got = {c["dest"]: c for c in day["centres"]}
    assert set(got) == {"urn:juki:jlis:east", "urn:juki:jlis:west"}, day
    for c in got.values():
        assert (c["status"], c["sent"], c["received"]) == ("ok", n, n), c
        assert c["received_digest"] == c["sent_digest"], c
    assert got["urn:juki:jlis:east"]["received_digest"] == \
        got["urn:juki:jlis:west"]["received_digest"]
    # The nation's view at each centre: the same counts and digests from every prefecture.
    east, west = (net[c].ctl("received")["received"] for c in (EAST, WEST))
    assert east == west == [{"peer": "urn:juki:pref:13", "day": day["day"], "total": n,
                             "digest": got["urn:juki:jlis:east"]["received_digest"]}], east
    for c in (EAST, WEST):
        assert records(net, c) == {"current": n, "history": 0}, c
        rows = dict(store_rows(net[c].store, "SELECT peer, sum(n) FROM honnin_counts"
                                                " WHERE side = 0 GROUP BY peer"))
        assert rows == {"urn:juki:pref:13": n}, (c, rows)
        # Redeliveries after the cut were answered as duplicates, never applied again.
        assert net[c].status()["inbound"]["rejected"] == {}, c


def case_cut_in_the_middle_of_a_load():
    """The line to east cut while records flow: west gets everything meanwhile, east
    catches up from the prefecture's outbox when the line returns, both agree."""
    s = Synth(seed=271)
    first = [s.person("131016") for _ in range(300)]
    load = [s.person("131016") for _ in range(3000)]
    later = [s.person("131016") for _ in range(300)]
    total = len(first) + len(load) + len(later)
    with Network([GW, A, PREF, EAST, WEST], configure=make_centres) as net:
        add_residents(net[A], first)
        wait_until("the first records at both centres", lambda: at_centres(net, 300))
        # The load runs while the line is cut: cut as soon as east has begun receiving it.
        loader = threading.Thread(target=add_residents, args=(net[A], load))
        loader.start()
        wait_until("east receiving the load", lambda: records(net, EAST)["current"] > 300,
                   interval=0.002)
        net.lines[EAST].cut()
        loader.join()
        add_residents(net[A], later)
        wait_until("everything at west while east is cut",
                   lambda: records(net, WEST)["current"] == total, timeout=60)
        cut_at = records(net, EAST)["current"]
        assert 300 < cut_at < total, cut_at
        # The prefecture holds what east has not acknowledged, and only for east.
        def queued():
            return {q["dest"] for q in net[PREF].ctl("outbox")["queues"]}
        wait_until("only east's records queued", lambda: queued() == {"urn:juki:jlis:east"})
        # Asked now, the centres do not agree: east's answer waits behind its records.
        code = net[PREF].admin("reconcile", "--centres", pre=["-t", "1s"], check=False)[0]
        assert code == 1, code
        net.lines[EAST].restore()
        wait_until("east caught up", lambda: records(net, EAST)["current"] == total,
                   timeout=60)
        check_agree(net, total)


def case_lost_centre_catches_up():
    """West loses its store (a centre rebuilt empty): the prefecture's reconciliation
    finds the difference and sends the records again; west catches up by itself."""
    s = Synth(seed=272)
    people = [s.person("131016") for _ in range(1000)]

    def configure(net):
        make_centres(net)
        net[PREF].extra["honnin"] = "{reconcile_interval: 1s}"

    with Network([GW, A, PREF, EAST, WEST], configure=configure) as net:
        add_residents(net[A], people)
        wait_until("1000 at both centres", lambda: at_centres(net, 1000), timeout=60)
        net[WEST].stop()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(net[WEST].store + suffix)
            except FileNotFoundError:
                pass
        net[WEST].start()
        wait_until("west caught up by itself", lambda: records(net, WEST)["current"] == 1000,
                   timeout=60)
        wait_until("the centres agree", lambda: net[PREF].ctl(
            "reconcile", "--centres", "--no-check", check=False)[0] == 0, timeout=30)
        check_agree(net, 1000)
        # East was never asked again for records it had: nothing re-sent to it.
        # (read as it stands: the 1 s timer may have a day pending again: exit 1, same table)
        out = json.loads(net[PREF].ctl("reconcile", "--no-check", check=False)[1])
        rows = {r["dest"]: r for r in out["days"]}
        assert rows["urn:juki:jlis:east"]["resent"] == 0, rows
        assert rows["urn:juki:jlis:west"]["resent"] >= 1, rows


def report_copies(net, rid):
    """The prefecture's request rid: its state, and each centre's copy's state."""
    shown = net[PREF].admin("report", "show", rid)
    return shown["state"], {c["centre"]: c["state"] for c in shown.get("centres", [])}


def batch_cut_half_way(net, body, queries, cut):
    """juki-ctl provide batch from body; once two parts are answered the client is held
    still (SIGSTOP), cut() runs, and it goes on.  Returns (exit code, result, stderr)."""
    fd = secret_fd(CARD_PIN)
    argv = [CTL, "--json", "provide", "batch", "--body-conf", body.path, "--card-pin-fd",
            str(fd), "--agreement", AGREEMENT, "--jimu", JIMU, "--purpose", PURPOSE, queries]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         pass_fds=(fd,), env=dict(os.environ, **(body.card.env or {})))
    os.close(fd)
    err = []
    try:
        for line in p.stderr:
            err.append(line)
            if "part 2/" in line and " done " in line:
                os.kill(p.pid, signal.SIGSTOP)
                try:
                    cut()
                finally:
                    os.kill(p.pid, signal.SIGCONT)
                break
        out, rest = p.communicate(timeout=90)
    except BaseException:
        p.kill()
        p.wait()
        raise
    err.append(rest)
    return p.returncode, json.loads(out) if out else None, "".join(err)


def case_agency_fails_over_reports_and_batch():
    """A state agency's staff member asks east; with east's line cut, the same command is
    answered by west (the body file's fallback), from west's own records. A management
    report asked meanwhile reaches west at once and east when its line returns, each
    acknowledging its copy on its own; the agency answers it at west, and the same answer
    given again at east changes nothing. A batch whose centre is cut half-way is completed
    at west: every query answered once, in order. Every node sends its heartbeats to both
    centres and each centre to the other: both boards show the whole network, and west's
    shows east down while its line is cut."""
    s = Synth(seed=273)
    people = [s.person("131016") for _ in range(20)]
    east, west = "urn:juki:" + EAST, "urn:juki:" + WEST

    def configure(net):
        make_centres(net)
        for c in (EAST, WEST):
            net[c].extra["provide"] = "{jimu: '%s'}" % os.path.join(
                SOURCE, "conf", "jimu-example.csv")

    with Network([GW, A, PREF, EAST, WEST], extra_identities=[BODY], configure=configure,
                 monitor=True) as net:
        add_residents(net[A], people)
        wait_until("20 at both centres", lambda: at_centres(net, 20))
        for board, other in ((EAST, WEST), (WEST, EAST)):
            for node in (A, PREF, other):
                wait_board(net[board], node, "up")
        for c in (EAST, WEST):
            agreement(net, server=c)
        card = Card(net, STAFF)
        body = Body(net, card, gateways=[net[GW].address], server=EAST,
                    fallback="[urn:juki:jlis:west]")
        r = body.query("--code", people[0]["code"])
        assert r["found"] is True and r["server"] == east, r
        net.lines[EAST].cut()
        r = body.query("--code", people[1]["code"])
        assert r["found"] is True and r["server"] == west, r
        assert r["record"]["code"] == people[1]["code"], r
        # Each centre recorded the provision it made, and only that one.
        for c, code in ((EAST, people[0]["code"]), (WEST, people[1]["code"])):
            rows = store_rows(net[c].store, "SELECT code FROM provisions")
            assert rows == [(code,)], (c, rows)

        # A management report about what the national server provided, asked while east is
        # cut: a copy to each centre; west holds it at once, east's waits at the prefecture.
        rid = report_request(net[PREF], BODY, provider="national")["id"]
        wait_until("west holds the request", lambda: report_copies(net, rid) == (
            "received", {east: "sent", west: "received"}))
        got = body.ctl("reports")
        assert got["server"] == west and [x["id"] for x in got["reports"]] == [rid], got
        doc = os.path.join(net.dir, "answer.txt")
        with open(doc, "w", encoding="utf-8") as f:
            f.write("規程どおり管理しています。\n")
        assert body.ctl("reply", rid, "--file", doc)["server"] == west
        wait_until("the answer from west at the prefecture",
                   lambda: report_copies(net, rid)[0] == "answered")

        # West's board: east silent, so down; the prefecture still heard (up, or degraded
        # by the alerts it forwards about its line to east).
        wait_board(net[WEST], EAST, "down")
        assert wait_board(net[WEST], PREF, None)["state"] in ("up", "degraded")
        net.lines[EAST].restore()
        wait_board(net[WEST], EAST, "up")
        wait_until("the prefecture heard at east again", lambda: board_entry(
            net[EAST], PREF)["state"] in ("up", "degraded"))
        # East's copy delivered when its line returned, and acknowledged by east.
        wait_until("east holds its copy too", lambda: report_copies(net, rid) == (
            "answered", {east: "received", west: "received"}))
        held = {x["id"]: x for x in net[EAST].admin("report", "list")["reports"]}
        assert held[rid]["state"] == "received" and held[rid]["from"] == "urn:juki:" + PREF
        # Answered again at east (its copy still open there): the prefecture keeps the first.
        assert body.ctl("reply", rid, "--file", doc)["server"] == east
        wait_until("east's answer taken at the prefecture", lambda: any(
            e["action"] == "report.answer" and e.get("target") == rid and
            "first answer kept" in e.get("detail", "") for e in history(net[PREF])))
        shown = net[PREF].admin("report", "show", rid)
        assert shown["state"] == "answered" and shown["by"] == STAFF, shown

        # A batch at east, east cut after two of its twenty parts: the rest at west.
        batch = Body(net, card, gateways=[net[GW].address], server=EAST, name="batch.yaml",
                     fallback="[urn:juki:jlis:west]", part_size=1)
        with open(batch.path, encoding="utf-8") as f:
            text = f.read().replace("part_timeout: 60s", "part_timeout: 2s")
        with open(batch.path, "w", encoding="utf-8") as f:
            f.write(text)
        qf = queries_file(net, "batch.jsonl", people)
        code, res, err = batch_cut_half_way(net, batch, qf, net.lines[EAST].cut)
        assert code == 0, (code, res, err)
        assert res["servers"] == [east, west] and res["server"] == west, res
        assert (res["count"], res["parts"], res["found"]) == (20, 20, 20), res
        assert "moving to %s" % west in err, err
        header, answers = read_answers(res["file"])
        assert header["batch"] == res["batch"] and header["count"] == 20, header
        # Each query answered once, in order: nothing lost, nothing twice.
        assert [a["record"]["code"] for a in answers] == [p["code"] for p in people], answers
        # Each centre recorded what it answered; only parts in flight at the cut (at most
        # four of one query) may be recorded at both, and west began where the answers
        # stopped.
        def provided(c, online):
            rows = [r[0] for r in store_rows(net[c].store, "SELECT code FROM provisions")]
            rows.remove(online)  # the online query's, above
            assert len(rows) == len(set(rows)), (c, rows)
            return set(rows)
        codes = [p["code"] for p in people]
        at_east, at_west = provided(EAST, codes[0]), provided(WEST, codes[1])
        assert at_east | at_west == set(codes), (at_east, at_west)
        assert len(at_east & at_west) <= 4, (at_east, at_west)
        assert 2 <= len(at_east) < 20, at_east
        assert at_east == set(codes[:len(at_east)]), at_east
        assert at_west == set(codes[20 - len(at_west):]), at_west
        net.lines[EAST].restore()


def ca_agreement(net, centre):
    """The agreement with the authority (method feed) at a centre: one supervisor adds it,
    another approves it."""
    d = net[centre]
    s1 = d.add_operator("c1", ["supervisor"], ["provide"])
    s2 = d.add_operator("c2", ["supervisor"], ["provide"])
    s1.ctl("agreement", "add", "ca-jpki", "--body", "urn:juki:" + CA, "--methods", "feed",
           "--items", "code,name,birth,sex,address,change", "--keep-days", 30,
           "--responsible", "urn:juki:op:ca:jpki:boss")
    assert s2.ctl("agreement", "approve", "ca-jpki")["state"] == "active"


def case_authority_fed_once_from_either_centre():
    """Both centres derive 異動等情報 and send it to the link server, which passes each entry
    to the authority once; with east cut, the entries still reach the authority from west,
    and east's own copies, delivered when its line returns, add nothing."""
    s = Synth(seed=274)
    people = [s.person("131016") for _ in range(6)]
    holder = []

    def configure(net):
        make_centres(net)
        authority_node(holder, ocsp=False)(net)
        net[AUTHLINK].authlink["sources"] = "[urn:juki:jlis:east, urn:juki:jlis:west]"

    def deaths(net, who, name):
        path = os.path.join(net.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(import_csv([change_row(p, "死亡") for p in who]))
        assert net[A].ctl("import", path)["state"] == "accepted"

    try:
        with Network([GW, A, PREF, EAST, WEST, AUTHLINK], extra_identities=[CA],
                     configure=configure) as net:
            auth = holder[0]
            add_residents(net[A], people)
            wait_until("6 at both centres", lambda: at_centres(net, 6))
            for c in (EAST, WEST):
                ca_agreement(net, c)
            cert, key = net.cert(CA)
            auth.serve(net.ca(), crl=os.path.join(net.pki, "crl.pem"), cert=cert, key=key)

            def feed():
                return net[AUTHLINK].status()["feed"]

            deaths(net, people[:2], "day1.csv")
            wait_until("both centres' entries at the link server",
                       lambda: feed()["received_twice"] == 2, timeout=30)
            wait_until("2 entries at the authority", lambda: auth.last_seq() >= 2, timeout=30)
            net.lines[EAST].cut()
            deaths(net, people[2:3], "day2.csv")
            wait_until("the third entry, from west", lambda: auth.last_seq() >= 3, timeout=30)
            assert feed()["received_twice"] == 2, feed()
            net.lines[EAST].restore()
            wait_until("east's copy at the link server",
                       lambda: feed()["received_twice"] == 3, timeout=30)
            wait_until("everything acked", lambda: feed()["unacked"] == 0, timeout=30)
            assert auth.last_seq() == 3 and feed()["last_seq"] == 3, feed()
            rows = auth.feed_rows()
            # Three entries, each once, numbered without a gap.
            assert [r[0] for r in rows] == [1, 2, 3] and len({r[1] for r in rows}) == 3, rows
            assert [r[2] for r in rows] == ["death"] * 3, rows
            for c in (EAST, WEST):
                assert net[c].status()["ninsho"]["sent_entries"] == 3, c
    finally:
        for a in holder:
            a.stop()


def case_authority_asked_through_either_centre():
    """A municipality asks the certification authority for a report (第6-8(6)エ) while the
    line to east, the prefecture's national, is cut: the prefecture passes a copy to each
    centre, west passes its copy on to the link server, which holds it; the authority
    answers there and the answer reaches the prefecture and the municipality through west.
    When east's line returns, east's copy is delivered and passed on as well: the link
    server takes it as the same request (no second row, nothing refused) and sends the
    answer back through east too, which the prefecture takes keeping the first: the
    municipality has the answer once."""
    east, west = "urn:juki:" + EAST, "urn:juki:" + WEST
    ca_urn = "urn:juki:" + CA

    def configure(net):
        make_centres(net)
        net[AUTHLINK].authlink["sources"] = "[urn:juki:jlis:east, urn:juki:jlis:west]"
        net[A].extra["report_poll"] = "200ms"

    def link_requests(net):
        return [(e["operator"], e["outcome"], e.get("detail", ""))
                for e in history(net[AUTHLINK]) if e["action"] == "report.request"]

    with Network([GW, A, PREF, EAST, WEST, AUTHLINK], extra_identities=[CA],
                 configure=configure) as net:
        link = net[AUTHLINK]
        net.lines[EAST].cut()
        rid = ninsho_request(net[A])["id"]
        # Passed on through west at once; east's copy waits at the prefecture. The request
        # is held at the link server, not at a centre: the prefecture keeps it sent.
        wait_until("west's copy passed on", lambda: report_copies(net, rid) == (
            "sent", {east: "sent", west: "received"}))
        wait_until("held at the link server",
                   lambda: report_rows(link).get(rid, {}).get("state") == "received")
        held = link.admin("report", "show", rid)
        assert held["from"] == west and held["requester"] == "urn:juki:" + A, held
        doc = "異動等情報は規程どおり管理しています。\n".encode()
        with Authority(net, CA, AUTHLINK) as ca:
            assert list(ca.fetch()) == [rid]
            assert ca.answer(rid, doc)["status"] == "accepted"
            assert ca.fetch() == {}
        wait_until("the answer at the municipality",
                   lambda: report_rows(net[A])[rid]["state"] == "answered")
        first = net[PREF].admin("report", "show", rid)
        assert first["state"] == "answered" and first["by"] == ca_urn, first
        assert base64.b64decode(first["answer"]["data"]) == doc, first

        net.lines[EAST].restore()
        # East's copy reaches the link server as the same request: taken, not refused.
        wait_until("east's copy taken at the link server", lambda: any(
            (op, outcome) == (east, "ok") and "the same request" in detail
            for op, outcome, detail in link_requests(net)), timeout=30)
        assert sorted(r[:2] for r in link_requests(net)) == [(east, "ok"), (west, "ok")]
        assert list(report_rows(link)) == [rid]
        shown = link.admin("report", "show", rid)
        assert shown["state"] == "answered" and shown["from"] == west, shown
        assert {c["centre"]: c["state"] for c in shown["centres"]} == \
            {east: "received", west: "received"}, shown
        # The answer back through east too: east's row closed, the prefecture keeps the
        # first answer.
        wait_until("the answer through east", lambda: any(
            e["action"] == "report.answer" and e["operator"] == east and
            "first answer kept" in e.get("detail", "") for e in history(net[PREF])),
            timeout=30)
        for c in (EAST, WEST):
            row = net[c].admin("report", "show", rid)
            assert row["state"] == "answered" and row["next"] == "urn:juki:" + AUTHLINK, row
        assert report_copies(net, rid) == ("answered", {east: "received", west: "received"})
        again = net[PREF].admin("report", "show", rid)
        assert (again["answered"], again["answer"]) == (first["answered"], first["answer"])
        answers = [e["operator"] for e in history(net[PREF]) if e["action"] == "report.answer"]
        assert sorted(answers) == [east, west], answers
        # The authority answered once; the municipality has its answer once.
        assert [e["operator"] for e in history(link) if e["action"] == "report.answer"] == \
            [ca_urn]
        got = [e for e in history(net[A]) if e["action"] == "report.answered"]
        assert len(got) == 1 and got[0]["target"] == rid, got
        shown = net[A].admin("report", "show", rid)
        assert base64.b64decode(shown["answer"]["data"]) == doc, shown
        wait_until("the link server's outbox is empty",
                   lambda: link.admin("status")["outbound"]["queued"] == 0)


if __name__ == "__main__":
    if not Netns.available():
        print("skipped: network namespaces need root and ip netns")
        sys.exit(0)
    run_cases([case_cut_in_the_middle_of_a_load, case_lost_centre_catches_up,
               case_agency_fails_over_reports_and_batch,
               case_authority_fed_once_from_either_centre,
               case_authority_asked_through_either_centre])
