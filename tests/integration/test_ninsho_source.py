"""異動等情報 at its source (第6-8(6), CTest label `authlink`): the national server derives
the entries from the records that become current and sends them to the link server in
ninsho.idou, under an active agreement with the certification authority (第6-8(6)ア).

The link server urn:juki:authlink:0 is played by the test (jukitest.peer.FakeNode behind
the real gateway): what arrives there is exactly what a real juki-jlisd sent, and the test
acknowledges it as a link server would.  Changes are made at a real CS by an import, and
travel CS -> pref -> jlis as always.
"""

import json
import os
import re

from jukitest import Network, add_residents, free_port, run_cases, urn, wait_until
from jukitest.peer import FakeNode, ack_of
from jukitest.synth import Synth, change_row, import_csv

GW, A, B, PREF, JLIS = "fwgate:east", "cs:131016", "cs:131024", "pref:13", "jlis:0"
AUTHLINK, CA = "authlink:0", "ca:jpki"
NET = [GW, A, PREF, JLIS]
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class Link:
    """The link server as the test plays it (name, for the server source): every ninsho.idou
    it took, acknowledged."""

    def __init__(self, name=AUTHLINK, source=JLIS):
        self.name, self.source = name, source
        self.fake = None

    def configure(self, net):
        address = "127.0.0.1:%d" % free_port()
        net.fake_nodes[self.name] = address
        cert, key = net.cert(self.name)
        self.fake = FakeNode(address, cert, key, net.ca(), lambda conn, doc: [ack_of(doc)])
        net[self.source].extra["ninsho"] = "{authlink: %s, ca: %s}" % (urn(self.name), urn(CA))

    def messages(self):
        return [doc for _, doc in list(self.fake.received)]

    def entries(self):
        return [e for m in self.messages() for e in m["body"]["entries"]]


def network(link):
    return Network(NET, extra_identities=[link.name], configure=link.configure)


def ninsho(net, node=JLIS):
    return net[node].status()["ninsho"]


def imported(net, rows):
    path = os.path.join(net.dir, "change-%d.csv" % len(os.listdir(net.dir)))
    with open(path, "w", encoding="utf-8") as f:
        f.write(import_csv(rows))
    out = net[A].ctl("import", path)
    assert out["state"] == "accepted", out


def at_jlis(net, current, history):
    wait_until("%d current, %d history records at jlis" % (current, history),
               lambda: net[JLIS].status()["records"] == {"current": current,
                                                         "history": history})


def feed_agreement(net, node=JLIS):
    s1 = net[node].add_operator("s1", ["supervisor"], datasets=["provide"])
    s2 = net[node].add_operator("s2", ["supervisor"], datasets=["provide"])
    added = s1.ctl("agreement", "add", "jpki-feed", "--body", urn(CA), "--items",
                   "code,name,birth,sex,address,change", "--methods", "feed", "--keep-days",
                   3650, "--responsible", "urn:juki:op:ca:jpki:boss")
    assert added["state"] == "pending" and added["methods"] == ["feed"], added
    assert added["jimu"] == [], added
    approved = s2.ctl("agreement", "approve", "jpki-feed")
    assert approved["state"] == "active", approved


def case_idou_sent_under_agreement():
    """Without an agreement a death is withheld and alerted; with one, a death, a 転出, a
    move (転居) and a change of name arrive as exactly those entries, in record order; a
    kana-only correction and a birth send nothing."""
    s = Synth(seed=61)
    link = Link()
    with network(link) as net:
        people = [s.person("131016") for _ in range(6)]
        add_residents(net[A], people)  # 職権記載 of new codes: nothing to tell
        at_jlis(net, 6, 0)
        st = ninsho(net)
        assert st == {"authlink": urn(AUTHLINK), "ca": urn(CA), "agreement": None,
                      "sent_entries": 0, "withheld": 0}, st
        assert net[JLIS].alert_counts().get("ninsho-no-agreement", 0) == 0

        # No agreement: the death is withheld, counted, alerted; nothing goes out.
        imported(net, [change_row(people[5], "死亡")])
        at_jlis(net, 6, 1)
        assert ninsho(net)["withheld"] == 1
        assert net[JLIS].alert_counts().get("ninsho-no-agreement") == 1
        alert = [a for a in net[JLIS].alerts()["recent"] if a["code"] == "ninsho-no-agreement"]
        assert alert and alert[0]["peer"] == urn(CA), alert
        for p in people:  # no personal data in the alert
            for item in (p["code"], p["name"], p["address"]):
                assert item not in alert[0]["detail"], alert
        # Still none: a second withheld entry the same day is counted, not alerted again.
        imported(net, [change_row(people[4], "職権消除")])
        at_jlis(net, 6, 2)
        assert ninsho(net)["withheld"] == 2
        assert net[JLIS].alert_counts().get("ninsho-no-agreement") == 1
        assert link.messages() == []

        feed_agreement(net)
        assert ninsho(net)["agreement"] == "jpki-feed"

        # One import, one batch: death, move, change of name, kana only, a birth.
        moved = dict(people[1], address=s.address("131016"))
        renamed = dict(people[2], name="改名 太郎")
        newborn = s.person("131016")
        day = "2026-12-01"
        imported(net, [
            change_row(people[0], "死亡", date=day),
            change_row(moved, "転居", date=day),
            change_row(renamed, "氏名変更", date=day),
            change_row(people[3], "職権修正", date=day, kana="カナ ダケ"),
            change_row(newborn, "出生", date=day),
        ])
        at_jlis(net, 7, 6)
        # Then a 転出 of the kana-corrected person, last: once it is there, all before it is.
        imported(net, [change_row(people[3], "転出", date=day)])
        at_jlis(net, 7, 7)
        wait_until("the 転出 at the link server",
                   lambda: any(e["kind"] == "removal" for e in link.entries()))

        msgs = link.messages()
        assert len(msgs) == 2, msgs  # one per batch that derived something
        for m in msgs:
            assert m["type"] == "ninsho.idou" and m["from"] == urn(JLIS), m
            assert m["to"] == urn(AUTHLINK), m
            body = m["body"]
            assert (body["ca"], body["agreement"], body["retention_days"]) == (
                urn(CA), "jpki-feed", 3650), body
            assert set(body) == {"ca", "agreement", "retention_days", "entries"}, body
        entries = link.entries()
        got = [(e["code"], e["kind"]) for e in entries]
        assert got == [(people[0]["code"], "death"), (people[1]["code"], "change"),
                       (people[2]["code"], "change"), (people[3]["code"], "removal")], got
        assert all(UUID7.match(e["id"]) for e in entries), entries
        assert len({e["id"] for e in entries}) == 4
        assert all(e["date"] == day for e in entries), entries
        # A death or removal carries no items; a change the four items after it, no kana.
        assert "items" not in entries[0] and "items" not in entries[3], entries
        four = lambda p: {"name": p["name"], "birth": p["birth"], "sex": p["sex"],
                          "address": p["address"], "lgcode": "131016"}
        assert entries[1]["items"] == four(moved), entries[1]
        assert entries[2]["items"] == four(renamed), entries[2]
        assert all("new_code" not in e for e in entries)

        # Acknowledged: nothing left queued for the link server; the counts.
        wait_until("the outbox to the link server empty",
                   lambda: net[JLIS].status()["outbound"]["queued"] == 0)
        assert net[JLIS].ctl("outbox")["rejected"] == []
        st = ninsho(net)
        assert st["sent_entries"] == 4 and st["withheld"] == 2, st
        assert net[JLIS].alert_counts().get("ninsho-no-agreement") == 1

        # Suspended: withheld again, and nothing more goes out.
        assert net[JLIS].operators["s1"].ctl("agreement", "suspend",
                                             "jpki-feed")["state"] == "suspended"
        imported(net, [change_row(people[2], "死亡", date=day)])
        at_jlis(net, 7, 8)
        st = ninsho(net)
        assert st["agreement"] is None and st["withheld"] == 3 and st["sent_entries"] == 4, st
        assert len(link.messages()) == 2
    link.fake.close()


def case_move_between_municipalities():
    """A move-in at another municipality (転入 at cs:131024, its 転出 at cs:131016 by the
    転入通知): the link server hears of the new address as a change with the new
    municipality's items, after the removal when the 転出 reached the national server
    first, alone when the 転入 did (the 転出 then arrives late, as history: nothing)."""
    s = Synth(seed=65)
    link = Link()
    with Network(NET + [B], extra_identities=[AUTHLINK], configure=link.configure) as net:
        p, q = s.person("131016"), s.person("131016")
        add_residents(net[A], [p, q])
        at_jlis(net, 2, 0)
        feed_agreement(net)
        move = s.moved(p, "131024")
        net[B].ctl("movein", "--file", "-", input=json.dumps(move, ensure_ascii=False))
        at_jlis(net, 2, 2)  # p's 転入 current; A's first record and its 転出 history
        # A death last: once it is at the link server, everything queued before it is.
        imported(net, [change_row(q, "死亡")])
        at_jlis(net, 2, 3)
        wait_until("the death at the link server",
                   lambda: any(e["code"] == q["code"] for e in link.entries()))
        of_p = [e for e in link.entries() if e["code"] == p["code"]]
        kinds = [e["kind"] for e in of_p]
        assert kinds in (["change"], ["removal", "change"]), of_p
        moved = move["person"]
        assert of_p[-1]["items"] == {"name": moved["name"], "birth": moved["birth"],
                                     "sex": moved["sex"], "address": moved["address"],
                                     "lgcode": "131024"}, of_p
        assert of_p[-1]["date"] == move["date"]
    link.fake.close()


def case_split_over_1000():
    """A batch that derives more than 1,000 entries is sent as messages of at most 1,000, in
    record order, queued together."""
    s = Synth(seed=63)
    link = Link()
    with network(link) as net:
        people = [s.person("131016") for _ in range(1200)]
        add_residents(net[A], people)
        at_jlis(net, 1200, 0)
        feed_agreement(net)
        imported(net, [change_row(p, "死亡") for p in people])
        at_jlis(net, 1200, 1200)
        wait_until("1200 entries at the link server", lambda: len(link.entries()) == 1200,
                   timeout=60)
        assert [len(m["body"]["entries"]) for m in link.messages()] == [1000, 200]
        assert [e["code"] for e in link.entries()] == [p["code"] for p in people]
        assert ninsho(net)["sent_entries"] == 1200
    link.fake.close()


def case_prefecture_provides_itself():
    """A prefecture with ninsho.authlink set (its own link server) sends as the national
    server does, under its own agreement; the national server, unset, sends nothing."""
    s = Synth(seed=64)
    link = Link("authlink:13", PREF)
    with network(link) as net:
        p, q = s.person("131016"), s.person("131016")
        add_residents(net[A], [p, q])
        at_jlis(net, 2, 0)
        feed_agreement(net, PREF)
        imported(net, [change_row(dict(p, address=s.address("131016")), "転居"),
                       change_row(q, "職権修正", kana="カナ")])
        at_jlis(net, 2, 2)
        wait_until("the entry at authlink:13", lambda: len(link.entries()) == 1)
        m = link.messages()[0]
        assert (m["from"], m["to"]) == (urn(PREF), urn("authlink:13")), m
        assert [(e["code"], e["kind"]) for e in link.entries()] == [(p["code"], "change")]
        assert ninsho(net, PREF)["sent_entries"] == 1
        assert ninsho(net)["authlink"] is None and ninsho(net)["sent_entries"] == 0
    link.fake.close()


def case_idou_off_by_default():
    """A server without ninsho.authlink derives and sends nothing, whatever agreement."""
    s = Synth(seed=62)
    with Network(NET) as net:
        st = net[PREF].status()["ninsho"]
        assert st["authlink"] is None and st["ca"] == urn(CA), st
        assert net[JLIS].status()["ninsho"]["authlink"] is None
        p = s.person("131016")
        add_residents(net[A], [p])
        imported(net, [change_row(p, "死亡")])
        at_jlis(net, 1, 1)
        for node in (PREF, JLIS):
            st = net[node].status()["ninsho"]
            assert st["sent_entries"] == 0 and st["withheld"] == 0, st
            assert net[node].alert_counts().get("ninsho-no-agreement", 0) == 0
        assert net[JLIS].status()["outbound"]["queued"] == 0
        assert net[JLIS].ctl("outbox")["rejected"] == []


def case_feed_agreement_rules():
    """juki-ctl agreement add with a certification authority: method feed alone, no 事務,
    no cap needed; feed for an agency is refused; a bad ninsho config is refused at start."""
    with Network(NET) as net:
        s1 = net[JLIS].add_operator("s1", ["supervisor"], datasets=["provide"])
        base = ["agreement", "add", "x", "--items", "code,name", "--keep-days", 30]

        def refused(*extra):
            code, _, err = s1.ctl(*(base + list(extra)), check=False)
            assert code != 0, err
            return err
        assert "methods" in refused("--body", urn(CA), "--methods", "online",
                                    "--responsible", "urn:juki:op:ca:jpki:boss")
        assert "methods" in refused("--body", urn(CA), "--methods", "feed,batch",
                                    "--responsible", "urn:juki:op:ca:jpki:boss")
        assert "jimu" in refused("--body", urn(CA), "--methods", "feed", "--jimu", "1-1",
                                 "--responsible", "urn:juki:op:ca:jpki:boss")
        assert "methods" in refused("--body", "urn:juki:agency:nenkin", "--methods", "feed",
                                    "--jimu", "1-1", "--daily-cap", 1, "--bulk-threshold", 1,
                                    "--responsible", "urn:juki:op:agency:nenkin:boss")
        # An agency's agreement still needs its 事務 and cap.
        assert "jimu" in refused("--body", "urn:juki:agency:nenkin", "--methods", "online",
                                 "--daily-cap", 1, "--bulk-threshold", 1,
                                 "--responsible", "urn:juki:op:agency:nenkin:boss")
        ok = s1.ctl("agreement", "add", "jpki", "--body", urn(CA), "--items", "code",
                    "--methods", "feed", "--keep-days", 30,
                    "--responsible", "urn:juki:op:ca:jpki:boss")
        assert ok["methods"] == ["feed"] and ok["state"] == "pending", ok
        # The configuration check: ninsho.authlink must be a link server, ca an authority.
        d = net[JLIS]
        d.stop()
        for bad in ("{authlink: urn:juki:pref:13}", "{authlink: urn:juki:authlink:0, "
                    "ca: urn:juki:agency:nenkin}"):
            d.extra["ninsho"] = bad
            d.write_config()
            code, out, err = run_check(d)
            assert code != 0 and "ninsho." in out + err, (code, out, err)


def run_check(d):
    import subprocess
    p = subprocess.run([d.binary, "-n", "-f", d.config], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


if __name__ == "__main__":
    run_cases([case_idou_sent_under_agreement, case_move_between_municipalities,
               case_split_over_1000,
               case_prefecture_provides_itself, case_idou_off_by_default,
               case_feed_agreement_rules])
