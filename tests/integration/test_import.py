"""Input from the resident record system (第6-6(1), 第4-8(2)エ): import files
validated whole and applied all or nothing, then propagated to pref and jlis."""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from jukitest import Network, run_cases, wait_until, CtlError, CTL_FAILED
from jukitest.synth import Synth, import_csv, change_row, wrong_check_digit

GW, A, PREF, JLIS = "fwgate:east", "cs:131016", "pref:13", "jlis:0"
NET = [GW, A, PREF, JLIS]


def write(net, name, text):
    path = os.path.join(net.dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def records(net, node):
    return net[node].status()["records"]["current"] if node != A else \
        net[A].status()["residents"].get("resident", 0)


def case_ten_thousand_rows_reach_jlis():
    s = Synth(seed=41)
    with Network(NET) as net:
        people = [s.person("131016") for _ in range(10000)]
        reasons = ["出生", "職権記載", "転入"]
        rows = [change_row(p, reasons[i % 3]) for i, p in enumerate(people)]
        path = write(net, "day1.csv", import_csv(rows))
        out = net[A].ctl("import", path)
        assert out["state"] == "accepted", out
        r = out["receipt"]
        assert r["rows"] == 10000 and r["changes"] == 10000 and r["format"] == "csv", r
        assert r["by_reason"] == {"出生": 3334, "職権記載": 3333, "転入": 3333}, r
        # The file is filed with its receipt.
        done = os.path.join(net[A].spool, "done")
        assert os.path.exists(os.path.join(done, out["job"]))
        with open(os.path.join(done, out["job"] + ".receipt.json")) as f:
            assert json.load(f)["sha256"] == r["sha256"]
        wait_until("10,000 at jlis", lambda: records(net, JLIS) == 10000, timeout=120)
        assert records(net, PREF) == 10000 and records(net, A) == 10000
        # Equal counts at every hop, by reason and digest.
        for node in (A, PREF):
            day = net[node].ctl("reconcile")["days"][0]
            assert (day["status"], day["sent"], day["received"]) == ("ok", 10000, 10000), day
        # A second file of the same day: corrections and removals; versions move on.
        rows2 = [change_row(dict(people[0], address=s.address("131016")), "転居"),
                 change_row(people[1], "死亡"),
                 change_row(dict(people[2], name="山田 太郎"), "氏名変更")]
        out = net[A].ctl("import", write(net, "day1b.jsonl",
                                         "\n".join(json.dumps(r, ensure_ascii=False)
                                                   for r in rows2)))
        assert out["state"] == "accepted" and out["receipt"]["format"] == "jsonl", out
        wait_until("the corrections at jlis", lambda: len(
            net[JLIS].ctl("person", "show", people[0]["code"])["records"]) == 2)
        recs = net[JLIS].ctl("person", "show", people[1]["code"])["records"]
        assert recs[0]["current"] and recs[0]["reason"] == "死亡" and recs[0]["version"] == 2
        st = net[A].status()["residents"]
        assert st == {"resident": 9999, "removed": 1}, st
        day = net[A].ctl("reconcile")["days"][0]
        assert (day["status"], day["sent"]) == ("ok", 10003), day


def case_bad_file_changes_nothing():
    s = Synth(seed=42)
    with Network(NET) as net:
        people = [s.person("131016") for _ in range(2000)]
        rows = [change_row(p, "出生") for p in people]
        rows[10]["code"] = wrong_check_digit(rows[10]["code"])
        rows[500]["reason_date"] = "2026-02-30"
        rows[1500]["sex"] = 3
        rows[1999]["reason"] = "引越し"
        path = write(net, "bad.csv", import_csv(rows))
        try:
            net[A].ctl("import", path)
            raise AssertionError("a bad file was accepted")
        except CtlError as e:
            assert e.code == CTL_FAILED
            out = json.loads(e.out)
        rep = out["report"]
        assert out["state"] == "rejected" and rep["error_count"] == 4, rep
        got = [(e["line"], e["field"], e["reason"]) for e in rep["errors"]]
        assert got == [(12, "code", "check-digit"), (502, "reason_date", "invalid-field"),
                       (1502, "sex", "invalid-field"), (2001, "reason", "invalid-field")], got
        # No personal data in the report.
        text = json.dumps(rep, ensure_ascii=False)
        assert people[0]["name"] not in text and people[0]["code"] not in text
        # Nothing anywhere: no record, nothing queued, nothing sent on.
        assert net[A].status()["residents"] == {}
        assert net[A].status()["outbound"]["queued"] == 0
        assert records(net, PREF) == 0 and records(net, JLIS) == 0
        rejected = os.path.join(net[A].spool, "rejected")
        assert os.path.exists(os.path.join(rejected, out["job"] + ".report.json"))
        # Consistency: a correction for someone unknown, an entry for a resident.
        net[A].ctl("import", write(net, "ok.csv", import_csv([change_row(people[0], "出生")])))
        rows = [change_row(people[0], "出生"), change_row(people[1], "転居")]
        try:
            net[A].ctl("import", write(net, "inconsistent.csv", import_csv(rows)))
            raise AssertionError("an inconsistent file was accepted")
        except CtlError as e:
            rep = json.loads(e.out)["report"]
        got = [(e["line"], e["reason"]) for e in rep["errors"]]
        assert got == [(2, "already-resident"), (3, "unknown-person")], got
        assert net[A].status()["residents"] == {"resident": 1}


def case_spool_drop_and_no_second_apply():
    """The resident record system renames a file into incoming/; a file that was
    applied is not applied again, even when it comes back under another name."""
    s = Synth(seed=43)
    with Network(NET) as net:
        people = [s.person("131016") for _ in range(50)]
        text = import_csv([change_row(p, "職権記載") for p in people])
        incoming = os.path.join(net[A].spool, "incoming")
        tmp = os.path.join(incoming, ".20261126-a.csv.part")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.rename(tmp, os.path.join(incoming, "20261126-a.csv"))
        st = wait_until("filed", lambda: (lambda j: j["state"] in ("accepted", "rejected") and j)(
            net[A].ctl("import", "status", "20261126-a.csv")))
        assert st["state"] == "accepted" and st["receipt"]["changes"] == 50, st
        # The same bytes again, as if the daemon had stopped before filing them.
        shutil.copy(os.path.join(net[A].spool, "done", "20261126-a.csv"),
                    os.path.join(incoming, "20261126-b.csv"))
        st = wait_until("filed", lambda: (lambda j: j["state"] in ("accepted", "rejected") and j)(
            net[A].ctl("import", "status", "20261126-b.csv")))
        assert st["state"] == "accepted" and st["receipt"]["sha256"] == \
            net[A].ctl("import", "status", "20261126-a.csv")["receipt"]["sha256"]
        assert net[A].status()["residents"] == {"resident": 50}
        wait_until("50 at jlis", lambda: records(net, JLIS) == 50)
        day = net[A].ctl("reconcile")["days"][0]
        assert day["sent"] == 50 and day["status"] == "ok", day


def case_watchdog_fed_during_a_long_apply():
    """A file replayed in one transaction holds the event loop for as long as it
    takes: the daemon must keep pinging systemd's watchdog meanwhile, or
    systemd kills it, and kills it again after the restart (the file is still
    in incoming/)."""
    s = Synth(seed=44)
    # Pings are due every quarter of it.  A step that cannot ping (the commit of the
    # whole file, sending its first batches) takes up to 0.9 s under ASan and load:
    # the bound leaves room for that, and an apply that stopped pinging (seconds
    # without one) still fails it.
    watchdog_ms = 2000

    def configure(net):
        net[A].env = {"NOTIFY_SOCKET": os.path.join(net.dir, "notify.sock"),
                      "WATCHDOG_USEC": str(watchdog_ms * 1000)}
        # Every file goes the long way: validated in small steps, then replayed.
        net[A].imports = {"single_pass": 0, "step_rows": 500}
        configure.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        configure.sock.bind(net[A].env["NOTIFY_SOCKET"])
        configure.sock.settimeout(0.05)

    pings, stop = [], threading.Event()

    def listen():
        while not stop.is_set():
            try:
                if b"WATCHDOG=1" in configure.sock.recv(4096):
                    pings.append(time.monotonic())
            except socket.timeout:
                pass

    with Network(NET, configure=configure) as net:
        text = import_csv([change_row(s.person("131016"), "職権記載") for _ in range(300000)])
        path = write(net, "big.csv", text)
        reader = threading.Thread(target=listen)
        reader.start()
        try:
            start = time.monotonic()
            out = net[A].ctl("import", path, timeout=300)
            end = time.monotonic()
        finally:
            stop.set()
            reader.join()
            configure.sock.close()
        assert out["state"] == "accepted" and out["receipt"]["changes"] == 300000, out
        during = [t for t in pings if start <= t <= end]
        marks = [start] + during + [end]
        gaps = [(b - a, a - start) for a, b in zip(marks, marks[1:])]
        longest, at = max(gaps)
        assert longest < watchdog_ms / 1000, \
            "the watchdog went %.0f ms without a ping (limit %d ms) from %.1f s into a %.1f s " \
            "import (%d pings)" % (longest * 1000, watchdog_ms, at, end - start, len(during))


if __name__ == "__main__":
    run_cases([case_ten_thousand_rows_reach_jlis, case_bad_file_changes_nothing,
               case_spool_drop_and_no_second_apply, case_watchdog_fed_during_a_long_apply])
