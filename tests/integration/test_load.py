"""The bulk load (docs/architecture.md §26): `juki-ctl load FILE...` at a prefectural and
the national server — all or nothing, a bad row named by file and line, a store that holds
records refused unless --merge, reconciliation agreeing afterwards, a kill -9 in the middle
leaving the store as it was, and the server taking ordinary traffic afterwards."""

import csv
import io
import json
import os
import subprocess
import time

from jukitest import (Network, run_cases, wait_until, CtlError, CTL_FAILED, CTL, fails,
                      store_rows, add_residents)
from jukitest.synth import Synth, wrong_check_digit

GW, CS, PREF, JLIS = "fwgate:east", "cs:131016", "pref:13", "jlis:0"
COLS = ["code", "lgcode", "version", "reason", "reason_date", "recorded", "name", "birth",
        "sex", "address"]
TODAY = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 9 * 3600))


def rows_for(s, n, lgcodes=("131016", "131024")):
    """n people of two municipalities of Tokyo, a tenth of them with a second record
    (a move within the municipality, version 2): current records and history."""
    out = []
    for i in range(n):
        lg = lgcodes[i % len(lgcodes)]
        p = s.person(lg)
        out.append(dict(p, lgcode=lg, version=1, reason="出生", reason_date="2020-01-0%d" % (
            1 + i % 9), recorded="2020-01-10T00:00:00.000Z"))
        if i % 10 == 0:
            out.append(dict(p, lgcode=lg, version=2, reason="転居", reason_date=TODAY,
                            address=s.address(lg), recorded=None))
    return out


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLS)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r[c] for c in COLS])
    return path


def write_jsonl(path, rows):
    """The same rows as change records, the form of the server's export."""
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            rec = {"code": r["code"], "lgcode": r["lgcode"], "version": r["version"],
                   "reason": r["reason"], "reason_date": r["reason_date"],
                   "recorded": r["recorded"] or time.strftime(
                       "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                   "person": {"name": r["name"], "birth": r["birth"], "sex": r["sex"],
                              "address": r["address"]}}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def load(net, node, *args):
    return net[node].admin("load", *args)


def current(net, node):
    return net[node].status()["records"]["current"]


def case_load_at_pref_and_jlis_reconcile():
    s = Synth(seed=71)
    with Network([GW, CS, PREF, JLIS]) as net:
        rows = rows_for(s, 3000)
        # recorded left empty on the second records: the load's time, at both servers alike.
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        for r in rows:
            r["recorded"] = r["recorded"] or now
        half = len(rows) // 2
        a = write_csv(os.path.join(net.dir, "a.csv"), rows[:half])
        b = write_csv(os.path.join(net.dir, "b.csv"), rows[half:])
        out = load(net, PREF, a, b)
        assert out["state"] == "done" and out["rows"] == 3300, out
        assert (out["current"], out["history"], out["duplicates"]) == (3300, 0, 0), out
        out = load(net, JLIS, write_jsonl(os.path.join(net.dir, "all.jsonl"), rows))
        assert out["state"] == "done" and out["current"] == 3300, out
        assert current(net, PREF) == 3000 and current(net, JLIS) == 3000
        # The store swapped in keeps the store's mode: personal data, the daemon's alone.
        for node in (PREF, JLIS):
            assert os.stat(net[node].store).st_mode & 0o777 == 0o600, node
        # History and the lookups by attributes were built.
        moved = rows[0]
        recs = net[JLIS].ctl("person", "show", moved["code"])["records"]
        assert [(r["version"], r["current"]) for r in recs] == [(2, True), (1, False)], recs
        found = net[PREF].ctl("lookup", "--purpose", "inquiry", "--name", rows[5]["name"],
                              "--birth", rows[5]["birth"], "--sex", rows[5]["sex"],
                              "--address", rows[5]["address"])
        assert rows[5]["code"] in [r["code"] for r in found["records"]], found
        # The update counts made by the loads agree: pref's sent with jlis's received.
        days = {d["day"]: d for d in net[PREF].ctl("reconcile")["days"]}
        assert days[TODAY]["status"] == "ok" and days[TODAY]["sent"] == 300, days[TODAY]
        day = net[PREF].ctl("reconcile", "--date", "2020-01-10")["days"][0]
        assert (day["status"], day["sent"], day["received"]) == ("ok", 3000, 3000), day
        # Both loads are in the operation history.
        hist = net[PREF].admin("audit", "show")["entries"]
        acts = [(e["action"], e["outcome"]) for e in hist
                if e["action"] in ("load", "load.done")]
        assert acts == [("load", "ok"), ("load.done", "ok")], acts
        # Ordinary traffic through the loaded stores: a birth at the CS reaches the nation.
        newborn = s.person("131016")
        add_residents(net[CS], [newborn])
        wait_until("the newborn at jlis", lambda: current(net, JLIS) == 3001, timeout=60)
        assert current(net, PREF) == 3001
        # The swapped-in store survives a restart.
        net[PREF].stop()
        net[PREF].start()
        assert current(net, PREF) == 3001


def case_bad_row_refuses_the_file_and_nonempty_needs_merge():
    s = Synth(seed=72)
    with Network([JLIS]) as net:
        rows = rows_for(s, 200)
        good = write_csv(os.path.join(net.dir, "good.csv"), rows)
        bad_rows = [dict(r) for r in rows]
        bad_rows[6]["code"] = wrong_check_digit(bad_rows[6]["code"])
        bad = write_csv(os.path.join(net.dir, "bad.csv"), bad_rows)
        code, err, text = fails(load, net, JLIS, good, bad)
        assert code == CTL_FAILED, (code, err, text)
        assert (err["file"], err["line"], err["field"], err["reason"]) == (
            bad, 8, "code", "check-digit"), err
        assert rows[6]["code"] not in json.dumps(err) + text
        # Nothing of either file, no shadow left.
        assert current(net, JLIS) == 0
        assert not os.path.exists(net[JLIS].store + ".load")
        # The text form names the file and line too.
        p = subprocess.run([CTL, "-s", net[JLIS].socket, "load", bad], capture_output=True,
                           text=True)
        assert p.returncode == CTL_FAILED and "%s:8: code:" % bad in p.stdout, p.stdout
        assert load(net, JLIS, good)["current"] == 220
        code, err, text = fails(load, net, JLIS, good)
        assert code == CTL_FAILED and "needs --merge" in text, (code, err, text)
        out = load(net, JLIS, "--merge", good)
        assert (out["state"], out["duplicates"], out["current"]) == ("done", 220, 0), out
        more = rows_for(s, 50)
        out = load(net, JLIS, "--merge", write_csv(os.path.join(net.dir, "more.csv"), more))
        assert (out["current"], out["history"]) == (55, 0), out
        assert current(net, JLIS) == 250


def case_pref_refuses_other_prefectures_records():
    s = Synth(seed=73)
    with Network([PREF]) as net:
        rows = rows_for(s, 20, lgcodes=("131016", "011002"))
        code, err, text = fails(load, net, PREF, write_csv(os.path.join(net.dir, "x.csv"), rows))
        assert (err["line"], err["field"], err["reason"]) == (4, "lgcode", "origin"), err
        assert current(net, PREF) == 0


def case_kill9_mid_load_leaves_store_as_before():
    s = Synth(seed=74)
    with Network([JLIS]) as net:
        rows = rows_for(s, 60000)
        path = write_csv(os.path.join(net.dir, "big.csv"), rows)
        p = subprocess.Popen([CTL, "-s", net[JLIS].socket, "--json", "load", path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        st = wait_until("rows going in", lambda: (lambda r: r["rows"] > 1000 and r)(
            net[JLIS].admin("load", "status")), timeout=60, interval=0.01)
        assert st["state"] == "running", st
        net[JLIS].kill9()
        p.wait(timeout=30)
        assert p.returncode != 0
        net[JLIS].start()
        assert current(net, JLIS) == 0
        assert not os.path.exists(net[JLIS].store + ".load")
        assert store_rows(net[JLIS].store, "SELECT count(*) FROM honnin_counts") == [(0,)]
        out = load(net, JLIS, path)
        assert out["state"] == "done" and out["current"] == 66000, out
        net[JLIS].kill9()
        net[JLIS].start()
        assert current(net, JLIS) == 60000


def case_load_at_a_cs_reconciles_with_its_prefecture():
    """A CS loads its own residents (lgcode may be left out); they count as sent to its
    prefecture, which loads the same records: the CS's reconciliation agrees."""
    s = Synth(seed=75)
    with Network([GW, CS, PREF]) as net:
        rows = rows_for(s, 200, lgcodes=("131016",))
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        for r in rows:
            r["recorded"] = r["recorded"] or now
        own = [dict(r, lgcode=None) for r in rows]
        out = load(net, CS, write_csv(os.path.join(net.dir, "cs.csv"), own))
        assert (out["state"], out["rows"]) == ("done", 220), out
        assert net[CS].status()["residents"].get("resident") == 200
        # Another municipality's record is refused at the CS.
        code, err, _ = fails(load, net, CS, "--merge", write_csv(
            os.path.join(net.dir, "other.csv"), rows_for(s, 1, lgcodes=("131024",))))
        assert (err["line"], err["reason"]) == (2, "origin"), err
        assert load(net, PREF, write_csv(os.path.join(net.dir, "pref.csv"), rows))["current"] \
            == 220
        day = net[CS].ctl("reconcile", "--date", "2020-01-10")["days"][0]
        assert (day["status"], day["sent"], day["received"]) == ("ok", 200, 200), day
        day = net[CS].ctl("reconcile", "--date", TODAY)["days"][0]
        assert (day["status"], day["sent"], day["received"]) == ("ok", 20, 20), day


def case_centre_rebuilt_by_load_other_by_reconciliation():
    """Two national centres (architecture.md §27): a prefecture's load counts its records as
    sent to each centre; a centre rebuilt with the load agrees at once, the other, left
    empty, catches up by reconciliation; reconcile --centres agrees."""
    s = Synth(seed=73)
    east, west = "jlis:east", "jlis:west"
    with Network([GW, CS, PREF, east, west]) as net:
        rows = rows_for(s, 400)
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        for r in rows:
            r["recorded"] = now
        assert load(net, PREF, write_csv(os.path.join(net.dir, "p.csv"), rows))["current"] \
            == 440
        assert load(net, east, write_jsonl(os.path.join(net.dir, "e.jsonl"), rows))["current"] \
            == 440
        assert current(net, west) == 0
        net[PREF].ctl("reconcile")
        wait_until("west caught up", lambda: current(net, west) == 400, timeout=30)
        wait_until("the centres agree", lambda: net[PREF].ctl(
            "reconcile", "--centres", check=False)[0] == 0, timeout=30)
        day = [d for d in net[PREF].ctl("reconcile", "--centres")["centres"]
               if d["day"] == TODAY][0]
        got = {c["dest"]: c for c in day["centres"]}
        assert set(got) == {"urn:juki:jlis:east", "urn:juki:jlis:west"}, day
        for c in got.values():
            assert (c["status"], c["sent"], c["received"]) == ("ok", 440, 440), c
        assert day["agree"] is True, day


if __name__ == "__main__":
    run_cases([case_load_at_pref_and_jlis_reconcile,
               case_bad_row_refuses_the_file_and_nonempty_needs_merge,
               case_pref_refuses_other_prefectures_records,
               case_load_at_a_cs_reconciles_with_its_prefecture,
               case_centre_rebuilt_by_load_other_by_reconciliation,
               case_kill9_mid_load_leaves_store_as_before])
