"""Identity information end to end (第6-6): CS -> pref -> jlis through the
gateway, recorded once at every hop, confirmed by update counts (更新件数リスト),
and caught up again when a receiver lost records."""

import hashlib
import json
import signal
import sqlite3
import time

from jukitest import Network, add_residents, run_cases, wait_until
from jukitest.synth import Synth

GW, A, B, PREF, PREF_B, JLIS = ("fwgate:east", "cs:131016", "cs:271004", "pref:13", "pref:27",
                                "jlis:0")


def records(net, node):
    return net[node].status()["records"]


def reconcile(net, node, *args):
    return net[node].ctl("reconcile", *args)


def case_every_hop_records_once():
    s = Synth(seed=31)
    with Network([GW, A, PREF, JLIS]) as net:
        people = [s.person("131016") for _ in range(300)]
        add_residents(net[A], people)
        wait_until("300 records at jlis", lambda: records(net, JLIS)["current"] == 300)
        assert records(net, PREF) == {"current": 300, "history": 0}
        # Memory as the daemon sees it: SQLite's heap is part of the resident size.
        mem = net[PREF].status()["memory"]
        assert 0 < mem["sqlite_bytes"] <= mem["sqlite_peak_bytes"] < mem["peak_rss_bytes"], mem
        assert 0 < mem["rss_bytes"] <= mem["peak_rss_bytes"], mem
        # The same record at every hop, with who sent it.
        p = people[7]
        at_pref = net[PREF].ctl("person", "show", p["code"])["records"]
        at_jlis = net[JLIS].ctl("person", "show", p["code"])["records"]
        assert len(at_pref) == 1 and len(at_jlis) == 1
        for rec, sender in ((at_pref[0], "urn:juki:cs:131016"), (at_jlis[0], "urn:juki:pref:13")):
            assert rec["person"]["name"] == p["name"] and rec["version"] == 1, rec
            assert rec["reason"] == "職権記載" and rec["lgcode"] == "131016", rec
            assert rec["sender"] == sender and rec["current"], rec
        # Update counts agree at both hops: A -> pref, pref -> jlis.
        for node in (A, PREF):
            out = reconcile(net, node)
            assert len(out["days"]) == 1, out
            day = out["days"][0]
            assert day["status"] == "ok" and day["sent"] == 300 and day["received"] == 300, day
            assert day["sent_digest"] == day["received_digest"] and day["resent"] == 0, day
        # A correction supersedes; the old record becomes history everywhere.
        rec = net[A].ctl("resident", "show", p["code"])
        assert rec["version"] == 1 and rec["status"] == "resident"


def case_move_between_prefectures():
    """A person moves from 千代田区 to 大阪市: each prefecture holds its own
    municipality's record, the nation the newer one, whatever arrives first."""
    s = Synth(seed=32)
    with Network([GW, A, B, PREF, PREF_B, JLIS]) as net:
        p = s.person("131016")
        add_residents(net[A], [p])
        move = s.moved(p, "271004")
        net[B].ctl("movein", "--file", "-", input=json.dumps(move))
        wait_until("3 records of the person at jlis", lambda: len(
            net[JLIS].ctl("person", "show", p["code"], check=False)[1] and
            json.loads(net[JLIS].ctl("person", "show", p["code"], check=False)[1])
            ["records"]) == 3)
        at_jlis = net[JLIS].ctl("person", "show", p["code"])["records"]
        current = [r for r in at_jlis if r["current"]]
        assert len(current) == 1 and current[0]["lgcode"] == "271004", at_jlis
        assert current[0]["reason"] == "転入"
        # pref:13 holds A's records, the removal current, and the 転出確定通知 marks it.
        show = wait_until("the confirmation at pref:13", lambda: (lambda r: r["tenshutsu_kakutei"]
                          and r)(net[PREF].ctl("person", "show", p["code"])))
        cur = [r for r in show["records"] if r["current"]][0]
        assert cur["reason"] == "転出" and cur["lgcode"] == "131016" and cur["version"] == 2
        assert show["tenshutsu_kakutei"][0]["new_lgcode"] == "271004"
        at_b = net[PREF_B].ctl("person", "show", p["code"])["records"]
        assert [(r["lgcode"], r["reason"], r["current"]) for r in at_b] == [("271004", "転入",
                                                                              True)]


def case_pref_killed_midstream():
    """pref killed with SIGKILL while records flow: counts reconcile exactly, nothing twice."""
    s = Synth(seed=33)
    with Network([GW, A, PREF, JLIS]) as net:
        people = [s.person("131016") for _ in range(3000)]
        net[PREF].stop()
        add_residents(net[A], people)
        net[PREF].start()
        wait_until("pref midway", lambda: 0 < records(net, PREF)["current"], timeout=60,
                   interval=0.001)
        net[PREF].kill9()
        net[PREF].start()
        wait_until("3000 records at jlis", lambda: records(net, JLIS)["current"] == 3000,
                   timeout=120)
        assert records(net, PREF) == {"current": 3000, "history": 0}
        for node in (A, PREF):
            day = reconcile(net, node)["days"][0]
            assert (day["status"], day["sent"], day["received"]) == ("ok", 3000, 3000), day
        # Redeliveries after the kill were answered as duplicates, not applied twice.
        assert net[PREF].status()["inbound"]["rejected"] == {}


def case_lost_records_caught_up():
    """A receiver that lost records (as if restored from an older backup) is found
    out by the update counts; the sender sends the day again and it catches up."""
    s = Synth(seed=34)
    with Network([GW, A, PREF, JLIS]) as net:
        people = [s.person("131016") for _ in range(500)]
        add_residents(net[A], people)
        wait_until("500 at jlis", lambda: records(net, JLIS)["current"] == 500)
        net[PREF].stop()
        lost = [p["code"] for p in people[:120]]
        with sqlite3.connect(net[PREF].store) as db:
            db.executemany("DELETE FROM honnin WHERE code = ?", [(c,) for c in lost])
            # The lost records' counts go with them, as in an older copy: the count
            # drops and each lost record's hash leaves the XOR digest.
            # Both what it recorded from A (side 0) and what it passed on to jlis (side 1).
            db.execute("UPDATE honnin_counts SET n = n - 120")
            for side in (0, 1):
                (digest,) = db.execute("SELECT digest FROM honnin_digest WHERE side = ?",
                                       (side,)).fetchone()
                d = bytearray(digest)
                for c in lost:
                    h = hashlib.sha256(("%s|131016|1" % c).encode()).digest()
                    d = bytearray(x ^ y for x, y in zip(d, h))
                db.execute("UPDATE honnin_digest SET digest = ? WHERE side = ?", (bytes(d), side))
        net[PREF].start()
        assert records(net, PREF)["current"] == 380
        # One reconcile finds the difference, raises the alert, sends the day again
        # and asks again behind the records: the answer it waits for is the repaired one.
        day = reconcile(net, A)["days"][0]
        assert day["status"] == "ok" and day["sent"] == 500 and day["received"] == 500, day
        assert day["resent"] == 1, day
        st = net[A].status()
        assert st["alerts"]["counts"].get("count-mismatch") == 1, st["alerts"]
        rec = [a for a in net[A].alerts()["recent"] if a["code"] == "count-mismatch"][0]
        assert "sent 500, recorded 380" in rec["detail"], rec
        assert records(net, PREF)["current"] == 500
        # jlis already had them: the re-sent records were duplicates there, counted once.
        assert records(net, JLIS)["current"] == 500
        day = reconcile(net, PREF)["days"][0]
        assert (day["status"], day["sent"], day["received"]) == ("ok", 500, 500), day


def case_deadline_alert():
    """A change still undelivered when the next operating day starts raises an alert
    (第6-6(1)).  The CS's clock is moved to one minute past the start."""
    s = Synth(seed=35)
    with Network([GW, A, PREF, JLIS]) as net:
        net[PREF].stop()
        add_residents(net[A], [s.person("131016") for _ in range(3)])
        assert net[A].status()["alerts"]["counts"].get("deadline-missed") is None
        now_ms = int(time.time() * 1000)
        jst_day = (now_ms + 9 * 3600_000) // 86400_000 * 86400_000 - 9 * 3600_000
        start = jst_day + (8 * 60 + 30) * 60_000  # delivery.deadline: 08:30 by default
        if start <= now_ms:
            start += 86400_000
        net[A].extra["clock_offset"] = "%dms" % (start + 60_000 - now_ms)
        # Every day an operating day (docs/operations.md §33): tomorrow may be a Saturday or a
        # holiday, when no operating day starts (test_calendar.py covers those).
        net[A].extra["calendar"] = ("{weekdays: [mon, tue, wed, thu, fri, sat, sun], "
                                    "holidays: false, closures: []}")
        net[A].write_config()
        net[A].signal(signal.SIGHUP)
        rec = wait_until("the deadline alert", lambda: [
            a for a in net[A].alerts()["recent"] if a["code"] == "deadline-missed"])
        assert rec[0]["peer"] == "urn:juki:pref:13" and "honnin" in rec[0]["detail"], rec
        # Once per destination, service and day, however often it is checked.
        net[A].signal(signal.SIGHUP)
        wait_until("reloaded twice", lambda: net[A].log_text().count("juki-csd: reloaded") == 2)
        assert net[A].status()["alerts"]["counts"]["deadline-missed"] == 1
        # The prefecture comes back: the records go through.
        net[PREF].start()
        wait_until("delivered late", lambda: records(net, JLIS)["current"] == 3)


def case_reconcile_interval_on_reload():
    """A node started without rounds of reconciliation starts them when a reload sets
    reconcile_interval."""
    s = Synth(seed=35)

    def configure(net):
        net[A].extra["honnin"] = "{reconcile_interval: 0}"

    with Network([GW, A, PREF], configure=configure) as net:
        add_residents(net[A], [s.person("131016") for _ in range(50)])
        wait_until("50 at pref", lambda: records(net, PREF)["current"] == 50)
        assert reconcile(net, A, "--no-check")["days"] == []
        net[A].extra["honnin"] = "{reconcile_interval: 200ms}"
        net[A].write_config()
        net[A].signal(signal.SIGHUP)
        wait_until("a round after the reload", lambda: [
            (d["status"], d["sent"], d["received"])
            for d in reconcile(net, A, "--no-check")["days"]] == [("ok", 50, 50)])


if __name__ == "__main__":
    run_cases([case_every_hop_records_once, case_move_between_prefectures,
               case_pref_killed_midstream, case_lost_records_caught_up,
               case_deadline_alert,
               case_reconcile_interval_on_reload])
