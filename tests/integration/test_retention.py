"""Retention (第6-7) and recovery (第4-9(2)) with real daemons: the five-year purge
removes exactly what the rule says and leaves no bytes behind; a prefectural
server restored from an older backup catches up by itself."""

import json
import os
import sqlite3

from jukitest import (Network, run_cases, run_ctl, set_clock, store_bytes, wait_until,
                      years_on)
from jukitest.synth import Synth, import_csv, change_row

GW, A, PREF, JLIS = "fwgate:east", "cs:131016", "pref:13", "jlis:0"
NET = [GW, A, PREF, JLIS]


def write(net, name, text):
    path = os.path.join(net.dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def current(net, node):
    return net[node].status()["records"]["current"]




def rows(path, sql):
    """A count read from a store file without changing it."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()






def case_five_year_purge():
    s = Synth(seed=51)
    with Network(NET) as net:
        people = [s.person("131016") for _ in range(30)]
        gone, moved = people[0], people[1]
        gone["name"] = "消去 太郎"
        old_address = moved["address"]
        net[A].ctl("import", write(net, "d1.csv", import_csv(
            [change_row(p, "職権記載") for p in people])))
        # One person dies (a removal); another moves within the town (a correction).
        moved2 = dict(moved, address=s.address("131016"))
        net[A].ctl("import", write(net, "d2.csv", import_csv(
            [change_row(gone, "死亡"), change_row(moved2, "転居")])))
        wait_until("jlis has every record", lambda: len(net[JLIS].ctl(
            "person", "show", moved["code"])["records"]) == 2)
        for node in (A, PREF, JLIS):
            assert gone["name"].encode() in store_bytes(net[node])
            assert old_address.encode() in store_bytes(net[node])

        # A day short of five years: nothing is due anywhere.
        for node in (A, PREF, JLIS):
            set_clock(net[node], years_on(5, -1))
            report = net[node].ctl("purge", "--dry-run")
            # (Only the inbox, ids of old messages, has a horizon of days, not years.)
            due = [r for r in report["rules"] if r["period"] == "years" and r["due"] > 0]
            assert due == [], (node, report)

        # Five years on: the removed person and the superseded record, nothing else.
        for node in (A, PREF, JLIS):
            set_clock(net[node], years_on(5, 1))
            dry = net[node].ctl("purge", "--dry-run")
            due = {r["name"]: r["due"] for r in dry["rules"] if r["period"] == "years"}
            # The dead person (current removal, and the entry record it superseded) and
            # the mover's superseded address; at the CS also the two files' import log.
            # And every update count and digest: all of that one day.
            want = {"honnin_removed": 1, "honnin_removed_history": 1, "honnin_history": 1,
                    "honnin_counts": rows(net[node].store, "SELECT count(*) FROM honnin_counts"),
                    "honnin_digest": rows(net[node].store, "SELECT count(*) FROM honnin_digest")}
            assert want["honnin_counts"] > 0 and want["honnin_digest"] > 0, (node, want)
            assert {k: v for k, v in due.items() if k in want} == want, (node, due)
            assert all(v == 0 for k, v in due.items()
                       if k not in want and k != "csd_import_log"), (node, due)
            report = net[node].ctl("purge")
            assert report["removed"] == dry["due"], (node, report)
            assert {r["name"]: r["removed"] for r in report["rules"]} == \
                {r["name"]: r["due"] for r in dry["rules"]}, (node, report)
            again = net[node].ctl("purge")
            assert again["removed"] == 0, (node, again)
            data = store_bytes(net[node])
            assert gone["name"].encode() not in data, node
            assert old_address.encode() not in data, node
            # What is kept is still there, bytes and records.
            assert people[5]["name"].encode() in data, node
            assert moved2["address"].encode() in data, node
        assert net[A].status()["residents"] == {"resident": 29}
        assert current(net, PREF) == 29 and current(net, JLIS) == 29
        rec = net[JLIS].ctl("person", "show", moved["code"])["records"]
        assert len(rec) == 1 and rec[0]["person"]["address"] == moved2["address"], rec


def case_restored_pref_catches_up():
    s = Synth(seed=52)
    with Network(NET) as net:
        first = [s.person("131016") for _ in range(300)]
        net[A].ctl("import", write(net, "d1.csv", import_csv(
            [change_row(p, "職権記載") for p in first])))
        wait_until("300 at pref", lambda: current(net, PREF) == 300)
        backup = os.path.join(net.dir, "pref-backup")
        manifest = net[PREF].ctl("backup", backup)
        assert manifest["node"] == "urn:juki:pref:13", manifest
        run_ctl("backup", "verify", backup)
        second = [s.person("131016") for _ in range(200)]
        net[A].ctl("import", write(net, "d2.csv", import_csv(
            [change_row(p, "出生") for p in second])))
        wait_until("500 at jlis", lambda: current(net, JLIS) == 500)

        # The prefecture loses its disk and comes back from the older backup.
        net[PREF].stop()
        run_ctl("restore", "--store", net[PREF].store, backup)
        net[PREF].start()
        assert current(net, PREF) == 300
        # The municipality's update counts find the difference and send the day again.
        day = net[A].ctl("reconcile")["days"][0]
        assert (day["status"], day["sent"], day["received"]) == ("ok", 500, 500), day
        assert day["resent"] >= 1
        assert current(net, PREF) == 500
        # And the prefecture, whose counts came back with the backup, agrees with jlis.
        day = net[PREF].ctl("reconcile")["days"][0]
        assert (day["status"], day["sent"], day["received"]) == ("ok", 500, 500), day
        assert current(net, JLIS) == 500


if __name__ == "__main__":
    run_cases([case_five_year_purge, case_restored_pref_catches_up])
