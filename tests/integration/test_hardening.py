"""Hardening: what the network does when an attacker, a careless operator or a full disk
tries it (CTest label `hardening`).  Each topic is a block of cases under a comment header;
run_cases() at the end runs them all.

- Slow callers: everything a peer must do before it is trusted (handshake, CONNECT or FROM
  line, inner handshake) is bounded by one deadline from accept (docs/protocol.md §3, "Time
  before trust"); a trickling caller is cut off as soon as a silent one, alerted
  (`slow-caller`), counted, and holds one of its address's connections until then; a burst of
  refusals at the gateway is logged as a summary line.
- Lookups over the limit raise `rate-limited`; the lookup counts and the deadline alerts
  survive a restart.
- Retention: spool files and backups past their period are erased by `juki-ctl purge`.
- Dates after today are refused at every way in (`future-date`).
- Folders that others can write to are refused at start and at reload.
- A full store disk: the real reason, one `disk-full` alert, nothing lost.
- The operation history cut, rolled back, replaced or deleted is detected (`audit-missing`,
  `audit-rollback`), and its verification does not stop the daemon serving.
- juki-ctl's command line, as a person mistypes it: no PIN rides in on it, none is echoed
  back, an option is named whole and given once, and nothing crashes the program (exit 2, a
  usage error, for all of it); no daemon is needed.  tests/unit/test_ctl_args.c tries every
  command and option of the table the same way.
- A replayed message id with other bytes is refused `replay-mismatch`, alerted and kept.
- The import spool: a full disk leaves no debris and says why; files and folders others own or
  can write are refused.
- Reconciliation narrows a count difference down to the records that differ.
- A person current in two municipalities (二重登録) is found, listed and alerted at the
  prefecture and the nation; a refused 転入通知 is a task for the new municipality's clerk; the
  refusal tells the sender only `no-match`, and a burst of refusals is alerted and limited.

The node names (A, B, GW, PREF, JLIS) mean the same in every block; a block that needs a
network of its own names it after itself (REPLAY_NET, SPOOL_NET, DR_NET).
"""

import copy
import datetime
import glob
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import tempfile
import time

from jukitest import (CTL, CTL_FAILED, CTL_USAGE, CtlError, Network, SANITIZER_MARKERS,
                      add_residents, fails, fill_disk, history, mount_tmpfs, run_cases, run_ctl,
                      set_clock, store_rows, unmount_all, urn, wait_until)
from jukitest.peer import Peer, now, tcp_connect, uuid7
from jukitest.synth import Synth, change_row, import_csv, lgcode_check_digit

A, B = "cs:131016", "cs:271004"
from jukitest.receiver import Receiver
GW = "fwgate:east"
FAKE_GW = "fwgate:fake"  # a gateway certificate with no daemon: the test's hand
INTERVAL = 0.3  # a slow caller's pace: one byte per INTERVAL
REQUEST = b"CONNECT urn:juki:cs:271004 muni\n"  # 33 bytes: 9.9 s at that pace


def trickle(socks, data, interval=INTERVAL):
    """Send data to each of socks one byte per interval until the other end closes it.

    Returns, per socket, (bytes sent, seconds until it was closed or None,
    what came back).  Bounded by len(data) rounds of interval each.
    """
    start = time.monotonic()
    state = [{"sent": 0, "closed": None, "got": b""} for _ in socks]
    for i in range(len(data)):
        live = [k for k, st in enumerate(state) if st["closed"] is None]
        if not live:
            break
        for k in live:
            try:
                socks[k].send(data[i:i + 1])
                state[k]["sent"] += 1
            except (OSError, ssl.SSLError):
                state[k]["closed"] = time.monotonic() - start
        # The pace of the caller, and the time to notice a close: one interval.
        until = time.monotonic() + interval
        while time.monotonic() < until:
            live = [k for k, st in enumerate(state) if st["closed"] is None]
            if not live:
                break
            ready, _, _ = select.select([socks[k] for k in live], [], [],
                                        max(0.0, until - time.monotonic()))
            for s in ready:
                k = socks.index(s)
                try:
                    chunk = s.recv(1024)
                except (OSError, ssl.SSLError):
                    chunk = b""
                if chunk:
                    state[k]["got"] += chunk
                else:
                    state[k]["closed"] = time.monotonic() - start
    return [(st["sent"], st["closed"], st["got"]) for st in state]


def peer(net, name, address, **kw):
    cert, key = net.cert(name)
    return Peer(address, cert, key, net.ca(), **kw)


def counters(net):
    return net[GW].status()["counters"]


def case_slow_callers_at_the_gateway():
    """Trickled CONNECT lines and handshakes: cut at the deadline, alerted, counted."""
    def configure(net):
        net[GW].limits.update({"handshake_timeout": "1s", "line_timeout": "2s",
                               "per_address": 2})

    with Network([GW, A, B], configure=configure) as net:
        gw = net[GW]
        attacker = "127.0.0.2"
        slow = [peer(net, A, gw.address, source=attacker) for _ in range(2)]
        try:
            for p in slow:
                p.open_outer()
            wait_until("two callers from the attacker", lambda: counters(net)["accepted"] == 2)
            # Half-open, they hold the address's two connections: a third is cut.
            third = peer(net, A, gw.address, source=attacker)
            third.refused_in_handshake()
            assert gw.alert_counts().get("flood") == 1, gw.alert_counts()

            results = trickle([p.sock for p in slow], REQUEST)
        finally:
            for p in slow:
                p.close()
        for sent, closed, got in results:
            # The line's 2 s from the end of the handshake, not 33 bytes * 0.3 s.
            assert closed is not None and closed < 4.0, results
            assert sent < len(REQUEST) // 2, results
            assert got == b"DENY timeout CONNECT line: no request within 2000 ms\n", results
        wait_until("two slow-caller alerts", lambda: gw.alert_counts().get("slow-caller") == 2)
        c = counters(net)
        assert c["slow_callers"] == 2 and c["tunnels"] == 0 and c["active"] == 0, c
        records = [r for r in gw.alerts()["recent"] if r["code"] == "slow-caller"]
        assert all(r["peer"] == urn(A) and r["addr"].startswith(attacker + ":")
                   for r in records), records

        # A TLS handshake trickled in (a record header, then its body byte by byte).
        with tcp_connect(gw.address) as raw:
            hello = b"\x16\x03\x01\x00\xc8" + b"\x01" * 40
            [(sent, closed, _)] = trickle([raw], hello)
        assert closed is not None and closed < 3.0 and sent < len(hello) // 2, (sent, closed)
        wait_until("a third slow caller", lambda: counters(net)["slow_callers"] == 3)
        assert gw.alert_counts().get("slow-caller") == 3, gw.alert_counts()

        # Closed, they no longer count: the attacker's address is served again.
        with peer(net, A, gw.address, source=attacker) as p:
            assert p.connect(urn(B), "muni") == "OK"
            assert p.inner is not None


def case_slow_from_line_at_a_node_port():
    """A gateway (by its certificate) that trickles its FROM line is cut at the deadline."""
    def configure(net):
        net[B].limits.update({"handshake_timeout": "1s", "line_timeout": "2s"})

    with Network([GW, A, B], extra_identities=[FAKE_GW], configure=configure) as net:
        node = net[B]
        before = node.status()["inbound"]
        line = ("FROM %s muni\n" % urn(A)).encode()
        with peer(net, FAKE_GW, node.address) as fake:
            fake.open_outer()
            [(sent, closed, got)] = trickle([fake.sock], line)
        # 1 s + 2 s from accept at most, not len(line) * 0.3 s (8.4 s).
        assert closed is not None and closed < 4.0, (sent, closed, got)
        assert sent < len(line) // 2 and got == b"", (sent, closed, got)
        wait_until("a slow-caller alert at the node",
                   lambda: node.alert_counts().get("slow-caller") == 1)
        st = node.status()["inbound"]
        assert st["slow_callers"] == before["slow_callers"] + 1, st
        assert st["channels"] == before["channels"], st
        rec = [r for r in node.alerts()["recent"] if r["code"] == "slow-caller"][-1]
        assert "FROM line" in rec["detail"], rec
        # The node still takes tunnels through the real gateway.
        with peer(net, A, net[GW].address) as p:
            assert p.connect(urn(B), "muni") == "OK"


def case_refusal_burst_summarised():
    """A burst of refusals from one source: the first logged in full, the rest as a count."""
    sapporo = "urn:juki:cs:01100" + lgcode_check_digit("01100")
    malformed, unknown = 20, 10

    with Network([GW, A, B]) as net:
        gw = net[GW]
        source = "127.0.0.3"
        for i in range(malformed + unknown):
            with peer(net, A, gw.address, source=source) as p:
                if i < malformed:
                    p.open_outer()
                    assert p.request("CONNECT nonsense muni").startswith("DENY malformed ")
                else:
                    assert p.connect(sapporo, "muni").startswith("DENY unknown-node ")
        n = malformed + unknown
        wait_until("every refusal counted", lambda: counters(net)["denied"] == n)
        # Every refusal is still an alert of its own.
        counts = gw.alert_counts()
        assert counts == {"malformed-request": malformed, "unknown-node": unknown}, counts
        assert gw.stop() == 0
        log = gw.log_text()
        lines = [l for l in log.splitlines() if "addr=%s:" % source in l]
        assert len(lines) == 1 and "alert: malformed-request" in lines[0], lines
        summaries = [l for l in log.splitlines() if "refused from %s" % source in l]
        assert len(summaries) == 1, summaries
        assert summaries[0].endswith(
            "fwgate: %d refused from %s in the last %s s: malformed %d, unknown-node %d"
            % (n - 1, source, summaries[0].split(" in the last ")[1].split(" ")[0],
               malformed - 1, unknown)), summaries


GW, A, PREF = "fwgate:east", "cs:131016", "pref:13"
NET = [GW, A, PREF]
DAY_MS = 86400_000




def restart(d):
    """Stop a daemon gracefully and start it again; returns when it answers ready."""
    assert d.stop() == 0
    d.start()


def case_rate_limit_raises_one_alert_per_operator():
    """A burst over the lookup limit raises the alert rate-limited once per operator and
    window, naming the operator and not what was looked up; every refusal is still in
    the history."""
    s = Synth(seed=901)

    def configure(net):
        net[A].operator["lookups_per_minute"] = 3

    with Network(NET, configure=configure) as net:
        p = s.person("131016")
        add_residents(net[A], [p])
        clerk = net[A].clerk()
        other = net[A].add_operator("suzuki", ["clerk"])
        for _ in range(3):
            clerk.ctl("lookup", "--purpose", "tax", p["code"])
        for _ in range(5):
            assert fails(clerk.ctl, "lookup", "--purpose", "tax", p["code"])[1] == \
                "rate-limited"
        alerts = [a for a in net[A].alerts()["recent"] if a["code"] == "rate-limited"]
        assert len(alerts) == 1, alerts
        assert "clerk" in alerts[0]["detail"], alerts
        for a in alerts:
            text = json.dumps(a, ensure_ascii=False)
            assert p["code"] not in text and p["name"] not in text, a
        # Another operator's burst is an alert of its own.
        for _ in range(3):
            other.ctl("lookup", "--purpose", "tax", p["code"])
        assert fails(other.ctl, "lookup", "--purpose", "tax", p["code"])[1] == "rate-limited"
        assert net[A].alert_counts().get("rate-limited") == 2
        # Every refusal is in the history, as before.
        refused = [e for e in history(net[A], operator=clerk.urn)
                   if e["action"] == "lookup" and e["outcome"] == "rate-limited"]
        assert len(refused) == 5, refused
        # The next window's first refusal is an alert again.
        set_clock(net[A], 61_000)
        for _ in range(3):
            clerk.ctl("lookup", "--purpose", "tax", p["code"])
        assert fails(clerk.ctl, "lookup", "--purpose", "tax", p["code"])[1] == "rate-limited"
        assert net[A].alert_counts().get("rate-limited") == 3


def case_rate_limit_holds_across_a_restart():
    """An operator's lookups of the last minute are in the store: a restart in the middle
    of a burst gives no fresh allowance."""
    s = Synth(seed=902)

    def configure(net):
        net[A].operator["lookups_per_minute"] = 4

    with Network(NET, configure=configure) as net:
        p = s.person("131016")
        add_residents(net[A], [p])
        clerk = net[A].clerk()
        for _ in range(2):
            clerk.ctl("lookup", "--purpose", "tax", p["code"])
        restart(net[A])
        for _ in range(2):
            clerk.ctl("lookup", "--purpose", "tax", p["code"])
        code, err, msg = fails(clerk.ctl, "lookup", "--purpose", "tax", p["code"])
        assert err == "rate-limited", (code, err, msg)
        restart(net[A])
        assert fails(clerk.ctl, "lookup", "--purpose", "tax", p["code"])[1] == "rate-limited"
        # The alert of this window was raised before the restart: not again.
        assert net[A].alert_counts().get("rate-limited") is None
        # A minute on, the allowance is back.
        set_clock(net[A], 61_000)
        clerk.ctl("lookup", "--purpose", "tax", p["code"])


def case_deadline_alert_not_repeated_after_restart():
    """The deadline alert of (destination, service, day) is raised once, however often the
    daemon restarts that day."""
    s = Synth(seed=903)
    with Network(NET) as net:
        net[PREF].stop()
        # Every day an operating day (docs/operations.md, the operating calendar): the case
        # moves to the next two days, whichever they are.
        net[A].extra["calendar"] = ("{weekdays: [mon, tue, wed, thu, fri, sat, sun], "
                                    "holidays: false, closures: []}")
        add_residents(net[A], [s.person("131016") for _ in range(2)])
        now_ms = int(time.time() * 1000)
        jst_day = (now_ms + 9 * 3600_000) // DAY_MS * DAY_MS - 9 * 3600_000
        start = jst_day + (8 * 60 + 30) * 60_000  # delivery.deadline: 08:30 by default
        if start <= now_ms:
            start += DAY_MS
        set_clock(net[A], start + 60_000 - now_ms)
        wait_until("the deadline alert",
                   lambda: net[A].alert_counts().get("deadline-missed") == 1)
        # The check runs at every start, before the daemon answers: one more would be there.
        restart(net[A])
        assert net[A].alert_counts().get("deadline-missed") is None
        restart(net[A])
        assert net[A].alert_counts().get("deadline-missed") is None
        assert net[A].log_text().count("alert: deadline-missed") == 1
        # The next operating day is another day: alerted again, once.
        set_clock(net[A], start + DAY_MS + 60_000 - now_ms)
        wait_until("the next day's alert",
                   lambda: net[A].alert_counts().get("deadline-missed") == 1)
        restart(net[A])
        assert net[A].log_text().count("alert: deadline-missed") == 2


def old(path, days):
    """Set path's times days ago."""
    t = time.time() - days * 86400
    os.utime(path, (t, t))


def spool_files(d, sub):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(d.spool, sub, "*")))


def item(report, name):
    found = [f for f in report["files"] if f["name"] == name]
    assert len(found) == 1, report["files"]
    return found[0]


def case_purge_erases_old_spool_files():
    """The spool's done/ and rejected/ files are kept import.keep and then erased by
    juki-ctl purge, with counts in its report; the newer ones stay.  The keep counts from
    the filing, not from when the file was written."""
    s = Synth(seed=904)

    def configure(net):
        net[A].imports["keep"] = "30d"

    with Network(NET, configure=configure) as net:
        d = net[A]
        # A file written 40 days ago, imported today.
        p = s.person("131016")
        tmp = os.path.join(d.spool, ".late.csv")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(import_csv([change_row(p, "職権記載")]))
        old(tmp, 40)
        os.rename(tmp, os.path.join(d.spool, "incoming", "late.csv"))
        wait_until("late.csv filed", lambda: os.path.exists(
            os.path.join(d.spool, "done", "late.csv.receipt.json")))
        # Files filed long ago, and some lately.
        for sub, name, days in (("done", "a.csv", 45), ("done", "a.csv.receipt.json", 45),
                                ("done", "b.csv", 10), ("done", "b.csv.receipt.json", 10),
                                ("rejected", "c.csv", 31), ("rejected", "c.csv.report.json", 31),
                                ("rejected", "d.csv", 29)):
            path = os.path.join(d.spool, sub, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write("山田 太郎,1980-01-01\n")
            old(path, days)
        dry = d.admin("purge", "--dry-run")
        assert (item(dry, "import_done")["due"], item(dry, "import_rejected")["due"]) == (2, 2)
        assert len(spool_files(d, "done")) == 6
        report = d.admin("purge")
        done, rejected = item(report, "import_done"), item(report, "import_rejected")
        assert (done["due"], done["removed"], done["keep_days"]) == (2, 2, 30), done
        assert (rejected["due"], rejected["removed"]) == (2, 2), rejected
        assert report["files_removed"] == 4, report
        assert spool_files(d, "done") == ["b.csv", "b.csv.receipt.json", "late.csv",
                                          "late.csv.receipt.json"]
        assert spool_files(d, "rejected") == ["d.csv"]
        text = run_ctl("purge", socket_path=d.socket, json_out=False)
        assert "import_done" in text and "import_rejected" in text, text
        assert "files: 4 erased (import_done 2, import_rejected 2)" in d.log_text()
        # Again: nothing more.
        again = d.admin("purge")
        assert again["files_removed"] == 0, again


def case_purge_erases_backups_past_keep():
    """Backups in backup.dir older than backup.keep are erased by juki-ctl purge, the
    newest never; what is not a backup of this node is left alone."""
    def configure(net):
        net[A].extra["backup"] = "{dir: %s, keep: 30d}" % os.path.join(net.dir, "backups")

    with Network(NET, configure=configure) as net:
        d = net[A]
        top = os.path.join(net.dir, "backups")

        def backups():
            return sorted(os.listdir(top))

        d.admin("backup", os.path.join(top, "b1"))
        d.admin("backup", os.path.join(top, "b2"))
        os.makedirs(os.path.join(top, "notes"))
        set_clock(d, 20 * DAY_MS)
        d.admin("backup", os.path.join(top, "b3"))
        # 40 days on: b1 and b2 are past keep, b3 (20 days old) is not.
        set_clock(d, 40 * DAY_MS)
        dry = d.admin("purge", "--dry-run")
        assert (item(dry, "backups")["due"], backups()) == (2, ["b1", "b2", "b3", "notes"])
        report = d.admin("purge")
        b = item(report, "backups")
        assert (b["backups"], b["due"], b["removed"], b["keep_days"]) == (3, 2, 2, 30), b
        assert backups() == ["b3", "notes"]
        # Long after: b3 is past keep too, but the newest stays.
        set_clock(d, 400 * DAY_MS)
        b = item(d.admin("purge"), "backups")
        assert (b["backups"], b["due"], b["removed"]) == (1, 0, 0), b
        assert backups() == ["b3", "notes"]
        run_ctl("backup", "verify", os.path.join(top, "b3"))


FD_GW, FD_A, FD_B, FD_C = "fwgate:east", "cs:131016", "cs:271004", "cs:131024"
FD_PREF, FD_JLIS = "pref:13", "jlis:0"
JST = datetime.timezone(datetime.timedelta(hours=9))


def fd_clock(net):
    """Every node's clock at noon (JST) of the host's tomorrow in Japan, and running from there;
    that day, the daemons' today, is net.fd_today (fixed here, whatever the host's clock does
    during the case)."""
    net.fd_today = datetime.datetime.now(JST).date() + datetime.timedelta(days=1)
    noon = datetime.datetime.combine(net.fd_today, datetime.time(12, 0), tzinfo=JST)
    offset_ms = int((noon.timestamp() - time.time()) * 1000)
    for name in net.names:
        if not name.startswith("fwgate:"):
            net[name].extra["clock_offset"] = "%dms" % offset_ms


def fd_refused(fn, *args, **kw):
    """A juki-ctl call that must be refused as invalid: its error message."""
    try:
        fn(*args, **kw)
    except CtlError as e:
        assert e.code == CTL_FAILED, e
        assert json.loads(e.out)["error"] == "invalid", e.out
        return e.err
    raise AssertionError("juki-ctl %s succeeded" % (args,))


def fd_record(person, lgcode, reason_date, birth=None):
    """A change record as a municipality's CS sends it in a honnin.batch."""
    p = {k: person[k] for k in ("name", "birth", "sex", "address")}
    if birth is not None:
        p["birth"] = birth
    return {"code": person["code"], "lgcode": lgcode, "version": 1, "reason": "転入",
            "reason_date": reason_date, "recorded": now(), "person": p}


def case_future_dates_refused_at_the_clerk():
    """resident add, resident correct and movein refuse a birth date or a change date after
    today (the daemon's), with the item, the field and today named; nothing is recorded.
    Today itself — the host's tomorrow — is allowed and reaches the nation."""
    s = Synth(seed=9101)
    with Network([FD_GW, FD_A, FD_PREF, FD_JLIS], configure=fd_clock) as net:
        a = net[FD_A]
        today = net.fd_today
        today_s, tomorrow_s = today.isoformat(), (today + datetime.timedelta(days=1)).isoformat()
        after = "after today (%s, JST) (future-date)" % today_s

        # resident add: a birth date after today.
        p = dict(s.person("131016"), birth=tomorrow_s)
        err = fd_refused(a.ctl, "resident", "add", "--file", "-", input=json.dumps(p))
        assert "residents[0].birth: " + after in err, err
        assert tomorrow_s not in err, err  # the value refused is not repeated
        # movein: a birth date, then a move date, after today; and far in the future.
        m = s.moved(s.person("271004"), "131016", today_s)
        m["person"]["birth"] = tomorrow_s
        err = fd_refused(a.ctl, "movein", "--file", "-", input=json.dumps(m))
        assert "moves[0].person.birth: " + after in err, err
        for date in (tomorrow_s, "9999-12-31"):
            m = s.moved(s.person("271004"), "131016", date)
            err = fd_refused(a.ctl, "movein", "--file", "-", input=json.dumps(m))
            assert "moves[0].date: " + after in err, err
        # Nothing was recorded, queued or sent.
        st = a.status()
        assert st["residents"] == {} and st["moveins"] == {}, st
        assert st["outbound"]["queued"] == 0, st["outbound"]
        assert a.ctl("resident", "show", p["code"], check=False)[0] == CTL_FAILED

        # Today — by the daemon's clock, the host's tomorrow — is allowed.
        q = dict(s.person("131016"), birth=today_s)
        assert a.ctl("resident", "add", "--file", "-", input=json.dumps(q))["added"] == 1
        # resident correct: a birth date, then a correction date, after today.
        err = fd_refused(a.ctl, "resident", "correct", q["code"], "--birth", tomorrow_s)
        assert "person.birth: " + after in err, err
        err = fd_refused(a.ctl, "resident", "correct", q["code"], "--address",
                         s.address("131016"), "--date", tomorrow_s)
        assert "date: " + after in err, err
        rec = a.ctl("resident", "show", q["code"])
        assert rec["version"] == 1 and rec["person"]["birth"] == today_s, rec
        assert rec["reason_date"] == today_s, rec
        assert a.status()["residents"] == {"resident": 1}

        # The record dated today reaches the nation: every node counts the same day.
        wait_until("q at jlis", lambda: net[FD_JLIS].status()["records"]["current"] == 1)
        at_jlis = net[FD_JLIS].ctl("person", "show", q["code"])["records"]
        assert [r["person"]["birth"] for r in at_jlis] == [today_s], at_jlis
        assert net[FD_PREF].status()["inbound"]["rejected"] == {}
        assert net[FD_JLIS].status()["inbound"]["rejected"] == {}


def case_future_dates_refused_from_the_network():
    """Hand-made messages with a date after today: a honnin.batch at the prefecture, a
    tennyu.notice at a CS, a tenshutsu.confirm at the prefecture are refused `future-date`,
    the record index and field named; nothing is kept and nothing reaches the nation.  The
    same messages dated today are accepted."""
    s = Synth(seed=9102)
    with Network([FD_GW, FD_A, FD_PREF, FD_JLIS], extra_identities=[FD_B, FD_C],
                 configure=fd_clock) as net:
        pref, jlis, a = net[FD_PREF], net[FD_JLIS], net[FD_A]
        today = net.fd_today
        today_s, tomorrow_s = today.isoformat(), (today + datetime.timedelta(days=1)).isoformat()
        after = "after today (%s, JST)" % today_s

        def ack_of(p, m):
            ack = p.exchange(m)
            assert ack["type"] == "ack" and ack["corr"] == m["id"], ack
            return ack["body"]

        # honnin.batch from a municipality of the prefecture (cs:131024).
        people = [s.person("131024") for _ in range(3)]
        cert, key = net.cert(FD_C)
        with Peer(net[FD_GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn(FD_PREF), "honnin") == "OK"

            def batch(records):
                return p.message("honnin.batch", urn(FD_C), urn(FD_PREF), {"records": records})

            body = ack_of(p, batch([fd_record(people[0], "131024", today_s),
                                    fd_record(people[1], "131024", today_s, birth=tomorrow_s)]))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "records[1].person.birth: " + after}, body
            body = ack_of(p, batch([fd_record(people[1], "131024", tomorrow_s)]))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "records[0].reason_date: " + after}, body
            # tenshutsu.confirm dated after today.
            body = ack_of(p, p.message("tenshutsu.confirm", urn(FD_C), urn(FD_PREF),
                                       {"code": people[2]["code"], "old_lgcode": "131024",
                                        "new_lgcode": "271004", "move_date": tomorrow_s,
                                        "tennyu_id": uuid7()}))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "move_date: " + after}, body
            # Nothing of them is held at the prefecture, none forwarded.
            st = pref.status()
            assert st["inbound"]["rejected"] == {"future-date": 3}, st["inbound"]
            assert st["inbound"]["accepted"] == 0, st["inbound"]
            assert st["records"] == {"current": 0, "history": 0}, st["records"]
            assert st["outbound"]["queued"] == 0, st["outbound"]
            assert pref.ctl("confirmations")["total"] == 0
            # The same records dated today: accepted, and on to the nation.
            body = ack_of(p, batch([fd_record(people[0], "131024", today_s),
                                    fd_record(people[1], "131024", today_s)]))
            assert body == {"status": "accepted"}, body
        wait_until("the batch dated today at jlis",
                   lambda: jlis.status()["records"]["current"] == 2)
        # What came after the refused batches arrived, and the refused never did: the national
        # server holds the two records as dated today, and has refused nothing.
        for person in people[:2]:
            recs = jlis.ctl("person", "show", person["code"])["records"]
            assert len(recs) == 1 and recs[0]["reason_date"] == today_s, recs
            assert recs[0]["person"]["birth"] == person["birth"], recs
        assert jlis.status()["inbound"]["rejected"] == {}

        # tennyu.notice at a CS (cs:271004 tells 千代田区 its resident moved in).
        resident = s.person("131016")
        a.ctl("resident", "add", "--file", "-", input=json.dumps(resident))
        moved = s.moved(resident, "271004", today_s)["person"]
        cert, key = net.cert(FD_B)
        with Peer(net[FD_GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn(FD_A), "muni") == "OK"

            def notice(person, date):
                return p.message("tennyu.notice", urn(FD_B), urn(FD_A),
                                 {"person": person, "old_lgcode": "131016", "move_date": date})

            body = ack_of(p, notice(moved, tomorrow_s))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "move_date: " + after}, body
            body = ack_of(p, notice(dict(moved, birth=tomorrow_s), today_s))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "person.birth: " + after}, body
            rec = a.ctl("resident", "show", resident["code"])
            assert rec["status"] == "resident" and rec["version"] == 1, rec
            assert rec["moveouts"] == [], rec
            assert a.status()["inbound"]["rejected"] == {"future-date": 2}
            # Dated today: the move-out is recorded.
            assert ack_of(p, notice(moved, today_s)) == {"status": "accepted"}
        rec = a.ctl("resident", "show", resident["code"])
        assert rec["status"] == "removed" and rec["reason_date"] == today_s, rec


def run(binary, *args):
    return subprocess.run([binary] + list(args), capture_output=True, text=True, timeout=30)


def _own_folders(net):
    """Each of the CS's folders, and the gateway's socket folder, a folder of its own
    (0700) under net.dir/state; returns {config key: folder}."""
    state = os.path.join(net.dir, "state")
    folders = {k: os.path.join(state, k) for k in ("store", "audit", "control", "spool")}
    folders["gateway control"] = os.path.join(state, "gwrun")
    for f in [state] + list(folders.values()):
        os.makedirs(f, mode=0o700, exist_ok=True)
    cs, gw = net[A], net[GW]
    cs.store = os.path.join(folders["store"], "cs.db")
    cs.extra["audit"] = "{path: %s}" % os.path.join(folders["audit"], "cs.audit")
    cs.socket = os.path.join(folders["control"], "cs.sock")
    cs.spool = os.path.join(folders["spool"], "spool")
    gw.socket = os.path.join(folders["gateway control"], "gw.sock")
    return folders


def _refusal(key, folder, mode, whom="others"):
    return "%s: %s: mode %04o, writable by %s (owner uid %d)" % (
        key, folder, mode, whom, os.geteuid())


def case_folder_modes_refused_at_start():
    """A node (store, audit, control, import spool) and a gateway (control) whose folder,
    or a folder above it, others may write to refuse to start, with the path and the
    mode, and pass -n no more; made private again, they start."""
    box = {}
    with Network([GW, A], configure=lambda net: box.update(_own_folders(net))) as net:
        cs, gw = net[A], net[GW]
        state = os.path.dirname(box["store"])
        cases = [(cs, "store", box["store"], 0o777, "others"),
                 (cs, "audit.path", box["audit"], 0o777, "others"),
                 (cs, "control", box["control"], 0o770, "group"),
                 (cs, "import spool", box["spool"], 0o777, "others"),
                 # a folder above every one of them (the CS's own rules are checked first)
                 (cs, "import spool", state, 0o777, "others"),
                 (gw, "control", box["gateway control"], 0o777, "others")]
        for d, key, folder, mode, whom in cases:
            want = _refusal(key, folder, mode, whom)
            d.stop()
            os.chmod(folder, mode)
            p = run(d.binary, "-n", "-f", d.config)
            assert p.returncode == 1 and want in p.stderr, (want, p.stderr)
            d.start(wait=False)
            wait_until("%s refuses to start" % d.name, lambda: not d.running(), timeout=20)
            assert d.proc.returncode == 1, d.proc.returncode
            assert want in d.log_text(), want
            os.chmod(folder, 0o700)
            d.start()
        assert cs.status()["ready"] and gw.status()["ready"]


def case_folder_owner_refused_at_start():
    """A store folder owned by another user than the daemon's or root is refused."""
    box = {}
    with Network([GW, A], configure=lambda net: box.update(_own_folders(net))) as net:
        if os.geteuid() != 0:
            print("skip case_folder_owner_refused_at_start: chown needs root")
            return
        cs = net[A]
        p = run(cs.binary, "-n", "-f", cs.config)
        assert p.returncode == 0, p.stderr
        os.chown(box["store"], 4242, 4242)
        p = run(cs.binary, "-n", "-f", cs.config)
        want = "store: %s: owned by uid 4242, not by the daemon's user (uid 0) or root" % (
            box["store"])
        assert p.returncode == 1 and want in p.stderr, p.stderr
        os.chown(box["store"], 0, 0)


def case_folder_modes_refused_at_reload():
    """A folder opened to others while the daemons run: the reload is refused with the
    path and the mode, the daemons keep running on the old configuration; made
    private again, the next reload is taken."""
    box = {}
    with Network([GW, A], configure=lambda net: box.update(_own_folders(net))) as net:
        for d, key, folder, done in ((net[A], "store", box["store"], "juki-csd: reloaded"),
                                     (net[GW], "control", box["gateway control"],
                                      "juki-fwgated: reloaded")):
            os.chmod(folder, 0o777)
            before = d.log_text().count("reload refused")
            d.signal(signal.SIGHUP)
            wait_until("%s refuses the reload" % d.name,
                       lambda: d.log_text().count("reload refused") > before)
            assert _refusal(key, folder, 0o777) in d.log_text()
            assert d.running() and d.status()["ready"]
            os.chmod(folder, 0o700)
            before = d.log_text().count(done)
            d.signal(signal.SIGHUP)
            wait_until("%s reloaded" % d.name, lambda: d.log_text().count(done) > before)


def case_backup_folder_writable_by_others_refused():
    """juki-ctl backup into a folder under one others may write to is refused with its
    path and mode, and nothing is written; a private one takes the backup."""
    with Network([GW, A]) as net:
        top = os.path.join(net.dir, "backups")
        os.makedirs(top, mode=0o700)
        os.chmod(top, 0o777)
        code, out, err = net[A].ctl("backup", os.path.join(top, "b1"), check=False)
        want = "%s: mode 0777, writable by others (owner uid %d)" % (top, os.geteuid())
        assert code == CTL_FAILED and want in err, (code, err)
        assert os.listdir(top) == []
        os.chmod(top, 0o700)
        assert net[A].ctl("backup", os.path.join(top, "b1"))["sha256"]


def _queued(net, node):
    return sum(q["count"] for q in net[node].ctl("outbox").get("queues", []))


def case_full_store_disk():
    """The prefecture's store fills up while a CS delivers 2000 records: nothing is
    acknowledged (the CS keeps every message queued), the prefecture raises one
    disk-full alert with the real reason however often the CS retries; when there is
    room again delivery resumes and every record arrives once."""
    s = Synth(seed=71)
    mounted = []

    def configure(net):
        folder = os.path.join(net.dir, "prefstore")
        mount_tmpfs(folder, "8m", mounted)
        net[PREF].store = os.path.join(folder, "pref.db")
        # the operation history elsewhere: the case is about the store
        net[PREF].extra["audit"] = "{path: %s}" % os.path.join(net.dir, "pref.audit")

    try:
        with Network([GW, A, PREF], configure=configure) as net:
            if not mounted:
                print("skip case_full_store_disk: cannot mount a tmpfs (not root?)")
                return
            pref = net[PREF]
            filler = fill_disk(mounted[0])
            people = [s.person("131016") for _ in range(2000)]
            net[A].ctl("resident", "add", "--file", "-",
                       input="\n".join(json.dumps(p) for p in people))
            # The CS tries again and again; each turn is refused for the real reason.
            wait_until("three refused turns at pref", lambda: pref.log_text().count(
                "rolled back: store: database or disk is full") >= 3, timeout=60)
            assert "refused: 0 errors" not in pref.log_text()
            assert pref.alert_counts().get("disk-full", 0) == 1, pref.alert_counts()
            alert = [a for a in pref.alerts()["recent"] if a["code"] == "disk-full"][0]
            assert "store: database or disk is full" in alert["detail"], alert
            # No false "accepted": nothing recorded, everything still queued at the CS.
            assert pref.status()["records"]["current"] == 0
            assert _queued(net, A) > 0
            # Room again: delivery resumes, nothing lost, nothing twice.
            os.unlink(filler)
            wait_until("2000 records at pref",
                       lambda: pref.status()["records"]["current"] == 2000, timeout=120)
            wait_until("the CS's outbox empty", lambda: _queued(net, A) == 0, timeout=60)
            assert pref.status()["records"] == {"current": 2000, "history": 0}
            assert pref.status()["inbound"]["rejected"] == {}
            assert pref.alert_counts().get("disk-full", 0) == 1
            assert "store: writes succeed again" in pref.log_text()
            # The history beside the store could not be written either: the first entry
            # written again ends the refusal of work, without a restart.
            assert pref.admin("audit", "show", "--limit", "1")["entries"]
            if "audit-failed" in pref.alert_counts():
                assert "the operation history is written again" in pref.log_text()
    finally:
        unmount_all(mounted)


def case_full_store_disk_import():
    """An import file dropped while the CS's store is full is refused for that reason
    (its report and the log say "store: database or disk is full", not "0 errors"),
    with one disk-full alert; dropped again when there is room, it is applied."""
    s = Synth(seed=72)
    mounted = []

    def configure(net):
        folder = os.path.join(net.dir, "csstore")
        mount_tmpfs(folder, "8m", mounted)
        net[A].store = os.path.join(folder, "cs.db")
        net[A].extra["audit"] = "{path: %s}" % os.path.join(net.dir, "cs.audit")

    def drop(net, name, text):
        tmp = os.path.join(net[A].spool, "incoming", "." + name + ".part")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.rename(tmp, os.path.join(net[A].spool, "incoming", name))

    try:
        with Network([GW, A], configure=configure) as net:
            if not mounted:
                print("skip case_full_store_disk_import: cannot mount a tmpfs (not root?)")
                return
            cs = net[A]
            text = import_csv([change_row(s.person("131016"), "出生") for _ in range(2000)])
            filler = fill_disk(mounted[0])
            drop(net, "day1.csv", text)
            report = os.path.join(cs.spool, "rejected", "day1.csv.report.json")
            wait_until("day1.csv refused", lambda: os.path.exists(report), timeout=60)
            with open(report) as f:
                doc = json.load(f)
            assert doc["aborted"] == "store: database or disk is full", doc
            assert "import: day1.csv refused: store: database or disk is full" in cs.log_text()
            assert "day1.csv refused: 0 errors" not in cs.log_text()
            assert cs.alert_counts().get("disk-full", 0) == 1, cs.alert_counts()
            assert cs.status()["residents"] == {}
            # Room again: the same file, dropped again, is applied.
            os.unlink(filler)
            drop(net, "day1-again.csv", text)
            receipt = os.path.join(cs.spool, "done", "day1-again.csv.receipt.json")
            wait_until("day1-again.csv applied", lambda: os.path.exists(receipt), timeout=60)
            assert cs.status()["residents"].get("resident") == 2000, cs.status()["residents"]
            assert cs.alert_counts().get("disk-full", 0) == 1
    finally:
        unmount_all(mounted)


def audit_files(daemon):
    return [daemon.store + ".audit" + s for s in ("", "-wal", "-shm")]


def lookup(net, code):
    """A clerk's lookup: the clerical work a suspended history refuses."""
    return net[A].clerk().ctl("lookup", "--purpose", "tax", code)


def registered(net, s):
    p = s.person("131016")
    net[A].ctl("resident", "add", "--file", "-", input=json.dumps(p, ensure_ascii=False))
    return p["code"]


def case_history_deleted_while_running():
    """The history file deleted under a running daemon: alert audit-missing at the next
    request, clerical work refused, and `juki-ctl audit adopt` (recorded as the first entry
    of the new history, with what was found) lets work go on, across a restart too."""
    s = Synth(seed=901)
    with Network(NET) as net:
        code = registered(net, s)
        assert lookup(net, code)["records"][0]["code"] == code
        recorded = history(net[A])[-1]["seq"]
        for path in audit_files(net[A]):
            if os.path.exists(path):
                os.unlink(path)
        status, err, msg = fails(lookup, net, code)
        assert status == CTL_FAILED and err == "audit-suspended", (status, err, msg)
        assert "juki-ctl audit adopt" in msg and "gone" in msg, msg
        assert net[A].alert_counts().get("audit-missing") == 1, net[A].alert_counts()
        # A supervisor's or administrator's other work waits as well; status does not.
        assert net[A].status()["ready"]
        status, err, msg = fails(net[A].admin, "operator", "list")
        assert err == "audit-suspended", (err, msg)
        # An administrator decides.
        found = net[A].admin("audit", "adopt")["found"]
        assert "gone" in found and \
            int(found.split("recorded ")[1].split()[0]) > recorded, found
        assert lookup(net, code)["records"][0]["code"] == code
        entries = history(net[A])
        first = entries[0]
        assert first["seq"] == 1 and first["action"] == "audit.adopt" and \
            first["outcome"] == "ok" and first["operator"].startswith("admin:uid="), first
        assert "gone" in first["detail"], first
        # Adopting again is refused: there is nothing to adopt.
        assert fails(net[A].admin, "audit", "adopt")[1] == "conflict"
        # Restarted, the node finds the adopted history the one it recorded.
        assert net[A].stop() == 0
        net[A].start()
        assert lookup(net, code)["records"][0]["code"] == code
        assert net[A].alert_counts().get("audit-missing") is None
        report = net[A].admin("audit", "verify")
        assert report["ok"] and report["recorded"] >= 3, report


def case_history_rolled_back_at_restart():
    """An older copy of the history put back while the daemon was stopped: audit-rollback at
    the start, clerical work refused, and audit verify (in the daemon, and offline against the
    node's store) says which entries are missing."""
    s = Synth(seed=902)
    with Network(NET) as net:
        code = registered(net, s)
        assert net[A].stop() == 0
        old = os.path.join(net.dir, "history-copy")
        shutil.copy(net[A].store + ".audit", old)
        net[A].start()
        for _ in range(3):
            lookup(net, code)
        assert net[A].stop() == 0
        for path in audit_files(net[A]):
            if os.path.exists(path):
                os.unlink(path)
        shutil.copy(old, net[A].store + ".audit")
        os.chmod(net[A].store + ".audit", 0o600)
        rolled = sqlite3.connect(net[A].store + ".audit").execute(
            "SELECT max(seq) FROM entries").fetchone()[0]
        net[A].start()
        assert net[A].alert_counts().get("audit-rollback") == 1, net[A].alert_counts()
        status, err, msg = fails(lookup, net, code)
        assert err == "audit-suspended" and "rolled back" in msg, (err, msg)
        code_, out, err_ = run_ctl("audit", "verify", socket_path=net[A].socket, check=False)
        report = json.loads(out)
        assert code_ == CTL_FAILED and not report["ok"], (code_, out, err_)
        assert report["reason"] == "missing" and report["first_broken"] == rolled + 1, report
        assert report["recorded"] > rolled, report
        # The same offline, from the files alone: the history against the node's store.
        assert net[A].stop() == 0
        code_, out, err_ = run_ctl("audit", "verify", "--file", net[A].store + ".audit",
                                   "--cert", net.cert(A)[0], "--store", net[A].store,
                                   check=False)
        report = json.loads(out)
        assert code_ == CTL_FAILED and report["reason"] == "missing" and \
            report["first_broken"] == rolled + 1, (code_, out, err_)
        # The file alone cannot tell: what only the store (or a copy kept elsewhere) proves.
        report = run_ctl("audit", "verify", "--file", net[A].store + ".audit", "--cert",
                         net.cert(A)[0])
        assert report["ok"], report
        # When the check cannot run, --json still says so on stdout.
        code_, out, err_ = run_ctl("audit", "verify", "--file", old + ".missing", "--cert",
                                   net.cert(A)[0], check=False)
        assert code_ == CTL_FAILED and json.loads(out) == {
            "ok": False, "error": old + ".missing: No such file or directory"}, (out, err_)


def chain_field(text):
    if text is None:
        return b"\xff\xff\xff\xff"
    raw = text.encode()
    return struct.pack(">I", len(raw)) + raw


def extend_history(daemon, n):
    """n more entries at the end of a stopped daemon's history, chained as docs/audit.md §3
    says, and the head remembered in its store: a large history, quickly."""
    db = sqlite3.connect(daemon.store + ".audit")
    seq, prev = db.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
    t = int(time.time() * 1000)
    rows = []
    for i in range(n):
        seq += 1
        canon = struct.pack(">Qq", seq, t) + chain_field("admin:uid=0") + \
            chain_field("status") + chain_field(None) + chain_field("ok") + chain_field(None)
        prev = hashlib.sha256(prev + canon).digest()
        rows.append((seq, t, "admin:uid=0", "status", None, "ok", None, prev))
    db.executemany("INSERT INTO entries VALUES(?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    store = sqlite3.connect(daemon.store)
    if store.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'audit_head'").fetchone()[0]:
        store.execute("UPDATE audit_head SET seq = ?, hash = ?", (seq, prev))
    store.commit()
    store.close()
    return seq


def control(sock_path, cmd, args=None):
    """One request on the control socket, as juki-ctl sends it (docs/control.md §2)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(sock_path)
        req = json.dumps({"v": 1, "cmd": cmd, "args": args or {}}).encode()
        s.sendall(struct.pack(">I", len(req)) + req)
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            assert chunk, "control socket closed"
            head += chunk
        (length,) = struct.unpack(">I", head)
        body = b""
        while len(body) < length:
            chunk = s.recv(length - len(body))
            assert chunk, "control socket closed"
            body += chunk
    return json.loads(body)


def case_verify_keeps_serving():
    """audit verify of a large history runs off the event loop: status is answered while the
    verification is still running, and the report comes when it is done."""
    with Network([GW, A]) as net:
        assert net[A].stop() == 0
        last = extend_history(net[A], 400000)
        net[A].start()
        started = control(net[A].socket, "audit.verify")
        assert started["ok"] and started["result"]["state"] == "running", started
        job = started["result"]["job"]
        answered = control(net[A].socket, "status")
        assert answered["ok"] and answered["result"]["ready"], answered
        still = control(net[A].socket, "audit.verify", {"job": job})
        assert still["result"]["state"] == "running", still
        deadline = time.monotonic() + 120
        while still["result"]["state"] == "running":
            assert time.monotonic() < deadline, "verification still running after 120 s"
            time.sleep(0.05)
            still = control(net[A].socket, "audit.verify", {"job": job})
        report = still["result"]
        assert report["ok"] and report["entries"] >= last and report["first_broken"] is None, \
            report
        # juki-ctl waits for it the same way.
        assert net[A].admin("audit", "verify")["entries"] >= last


SECRET = "86420"  # digits: an old getopt took "--pin 86420" for --pin-fd 86420
SOCK = "/nonexistent/juki.sock"


def ctl(*args):
    p = subprocess.run([CTL] + list(args), capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    assert not any(m in out for m in SANITIZER_MARKERS), out
    return p.returncode, out


def refused(*args, says=None):
    code, out = ctl(*args)
    assert code == CTL_USAGE, (args, code, out)
    assert SECRET not in out, (args, out)
    if says is not None:
        assert says in out, (args, says, out)
    return out


def case_no_abbreviation_takes_a_pin():
    """--pin is no option (getopt took it for --pin-fd), and what follows it is not shown."""
    refused("-s", SOCK, "--pin", SECRET, "status", says="unknown option --pin")
    refused("-s", SOCK, "--pin=" + SECRET, "status", says="unknown option --pin")
    refused("-s", SOCK, "--card-pin", SECRET, "status", says="unknown option --card-pin")
    refused("-s", SOCK, "operator", "set-pin", "tanaka", "--new-pin", SECRET + "x",
            says="unknown option --new-pin")
    refused("-s", SOCK, "operator", "add", "tanaka", "--roles", "clerk", "--datasets",
            "honnin", "--new-pin-fd", SECRET + "x", says="--new-pin-fd: a file descriptor")


def case_card_uri_with_a_pin_refused():
    """A card PIN in the --card URI (pin-value, pin-source) is refused like any PIN in argv."""
    with tempfile.TemporaryDirectory() as d:
        pinfile = os.path.join(d, "pin")
        with open(pinfile, "w") as f:
            f.write(SECRET)
        term = ["--connect", "127.0.0.1:9", "--cert", os.path.join(d, "op.crt"), "--ca",
                os.path.join(d, "ca.crt")]
        for uri in ("pkcs11:token=card;object=op;type=private;pin-value=" + SECRET,
                    "pkcs11:token=card;object=op?pin-value=" + SECRET,
                    "pkcs11:token=card;object=op?pin-source=file:" + pinfile,
                    "PKCS11:token=card?module-path=/x.so&pin-value=" + SECRET):
            out = refused(*term, "--card", uri, "login", says="--card")
            assert "PIN" in out and "card-pin-fd" in out, out


def case_unknown_option_no_crash():
    """operator add|list|set-pin|set-roles crashed on an unknown option."""
    for cmd in (["operator", "add", "tanaka", "--roles", "clerk", "--datasets", "honnin"],
                ["operator", "list"], ["operator", "set-pin", "tanaka"],
                ["operator", "set-roles", "tanaka", "--roles", "clerk", "--datasets", "honnin"],
                ["approve", "pending", "1"], ["purge"], ["pki", "crl", "/nonexistent"]):
        refused("-s", SOCK, *cmd, "--bogus", SECRET, says="unknown option --bogus")


def case_repeated_option_refused():
    """An option given twice is a usage error: which of the two was meant cannot be told."""
    refused("-s", SOCK, "alerts", "--max", "1", "--max", "2", says="--max: given twice")
    refused("-s", SOCK, "approvals", "--state", SECRET, "--state", SECRET,
            says="--state: given twice")
    refused("-s", SOCK, "-s", SOCK, "status", says="--socket: given twice")
    refused("-s", SOCK, "purge", "-n", "--dry-run", says="--dry-run: given twice")


def case_values_checked_alike():
    """--sex and --limit mean the same in every command that has them."""
    refused("-s", SOCK, "lookup", "--purpose", "tax", "--sex", "3", "--name", "x", "--birth",
            "2000-01-01", "--address", "y", says="--sex: 1 (male) or 2 (female)")
    for cmd in (["approvals"], ["movein", "list"], ["audit", "show"]):
        for bad in ("0", "-1", "", "1x", SECRET + "x"):
            refused("-s", SOCK, *cmd, "--limit", bad, says="--limit: a number")


def case_oversized_line_in_a_file_refused():
    """A residents or move-in file (or stdin) with a line of a megabyte: refused at that line,
    before anything is sent (the socket is not even there), never read whole."""
    big = '{"code":"x"}\n{"code":"' + "1" * (1 << 20) + '"}\n'
    path = os.path.join(tempfile.mkdtemp(prefix="juki-big-"), "big.jsonl")
    with open(path, "w") as f:
        f.write(big)
    try:
        for args, name, text in ((["resident", "add", "--file", "-"], "-", big),
                                 (["movein", "--file", path], path, None)):
            p = subprocess.run([CTL, "-s", SOCK] + args, input=text, capture_output=True,
                               text=True, timeout=30)
            assert p.returncode == CTL_FAILED, (args, p.returncode, p.stderr)
            assert "%s:2: line over 65536 bytes" % name in p.stderr, (args, p.stderr)
            assert "1111111111" not in p.stderr, p.stderr
    finally:
        shutil.rmtree(os.path.dirname(path))


A = "cs:131016"  # the receiver: holds the resident
B = "cs:271004"  # the peer's identity: the municipality the resident moves to
REPLAY_NET = [GW, A, "pref:13", "jlis:0"]
MOVE_DATE = "2026-11-25"


def case_replay_mismatch():
    """A message id received before, again with another body: not a redelivery.  It is
    refused `replay-mismatch`, alerted (sender and id, no personal data) and kept in
    inbox_mismatch; what stands is the first message's; the same bytes again are still
    an honest `duplicate`."""
    with Network(REPLAY_NET, extra_identities=[B]) as net:
        r = Receiver(net, seed=36)
        p = r.peer()
        good = r.notice(p)
        first = json.dumps(good, ensure_ascii=False).encode()
        ack = p.exchange(first)
        assert ack["corr"] == good["id"] and ack["body"] == {"status": "accepted"}, ack
        # The same id with another body: a move a day later.
        forged = copy.deepcopy(good)
        forged["body"]["move_date"] = "2026-11-26"
        forged_bytes = json.dumps(forged, ensure_ascii=False).encode()
        ack = p.exchange(forged_bytes)
        assert ack["corr"] == good["id"], ack
        assert ack["body"]["status"] == "rejected", ack
        assert ack["body"]["reason"] == "replay-mismatch", ack
        # An honest redelivery, byte for byte: a duplicate as ever, on this channel and a new one.
        ack = p.exchange(first)
        assert ack["corr"] == good["id"] and ack["body"] == {"status": "duplicate"}, ack
        p.close()
        p = r.peer()
        ack = p.exchange(first)
        assert ack["body"] == {"status": "duplicate"}, ack
        # The forgery again is refused again, and kept once.
        ack = p.exchange(forged_bytes)
        assert ack["body"]["reason"] == "replay-mismatch", ack
        p.close()

        st = net[A].status()
        assert st["inbound"]["accepted"] == 1 and st["inbound"]["duplicate"] == 2, st["inbound"]
        assert st["inbound"]["rejected"] == {"replay-mismatch": 2}, st["inbound"]
        assert st["alerts"]["counts"] == {"replay-mismatch": 2}, st["alerts"]
        rec = [a for a in net[A].alerts()["recent"] if a["code"] == "replay-mismatch"]
        assert len(rec) == 2 and all(a["peer"] == urn(B) for a in rec), rec
        assert all(good["id"] in a["detail"] and urn(B) in a["detail"] for a in rec), rec
        personal = [r.person["code"], r.person["address"]] + [
            v for k, v in r.person.items() if "name" in k and isinstance(v, str)]
        assert not [a for a in rec for v in personal if v and v in a["detail"]], rec

        # What stands at the receiver is the first message's move.
        res = net[A].ctl("resident", "show", r.person["code"])
        assert res["status"] == "removed" and res["version"] == 2, res
        assert [(m["tennyu_id"], m["date"]) for m in res["moveouts"]] == [
            (good["id"], MOVE_DATE)], res
        wait_until("the one confirmation at pref:13",
                   lambda: net["pref:13"].ctl("confirmations")["total"] == 1)
        # The refused bytes are kept for inspection, once, with the digest of what came.
        kept = store_rows(net[A].store, "SELECT msg_id, sender, hex(digest), text"
                          " FROM inbox_mismatch")
        text = kept[0][3] if kept else None
        assert len(kept) == 1 and kept[0][:3] == (
            good["id"], urn(B), hashlib.sha256(forged_bytes).hexdigest().upper()), kept
        assert (text if isinstance(text, bytes) else text.encode()) == forged_bytes, kept
        digest = store_rows(net[A].store, "SELECT hex(digest) FROM inbox WHERE msg_id = '%s'"
                            % good["id"])
        assert digest == [(hashlib.sha256(first).hexdigest().upper(),)], digest


GW, A, PREF, JLIS = "fwgate:east", "cs:131016", "pref:13", "jlis:0"
SPOOL_NET = [GW, A, PREF, JLIS]


def write(net, name, text):
    path = os.path.join(net.dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def case_full_spool_disk():
    """An upload that fills the spool's disk fails with the real error, leaves no
    partial file behind (the spool would stay full) and raises disk-full; a
    partial upload left by a stop is removed at start."""
    s = Synth(seed=45)
    mounted = []

    def configure(net):
        mount_tmpfs(net[A].spool, "64k", mounted)

    try:
        with Network(SPOOL_NET, configure=configure) as net:
            if not mounted:
                print("skip case_full_spool_disk: cannot mount a tmpfs (not root?)")
                return
            incoming = os.path.join(net[A].spool, "incoming")
            big = import_csv([change_row(s.person("131016"), "出生") for _ in range(2000)])
            try:
                net[A].ctl("import", write(net, "big.csv", big))
                raise AssertionError("an upload larger than the disk succeeded")
            except CtlError as e:
                assert "No space left on device" in e.err + e.out, e
                assert "Success" not in e.err + e.out, e
            assert [n for n in os.listdir(incoming) if n.startswith(".upload-")] == []
            assert net[A].alert_counts().get("disk-full", 0) >= 1
            # The room is back: a small file goes through.
            out = net[A].ctl("import", write(net, "small.csv", import_csv(
                [change_row(s.person("131016"), "出生")])))
            assert out["state"] == "accepted", out
            # A partial upload left by a stop goes at the next start.
            net[A].stop()
            with open(os.path.join(incoming, ".upload-x.csv"), "w") as f:
                f.write("code,")
            net[A].start()
            assert not os.path.exists(os.path.join(incoming, ".upload-x.csv"))
    finally:
        unmount_all(mounted)


def case_spool_owner_and_mode():
    """A file in incoming/ owned by another user than the daemon's or root is
    refused, never applied, its path named; a spool directory writable by
    others is refused at reload and at start, with its path and mode."""
    s = Synth(seed=46)
    with Network(SPOOL_NET) as net:
        if os.geteuid() != 0:
            print("skip case_spool_owner_and_mode: chown needs root")
            return
        incoming = os.path.join(net[A].spool, "incoming")
        tmp = os.path.join(incoming, ".foreign.csv.part")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(import_csv([change_row(s.person("131016"), "出生")]))
        os.chown(tmp, 4242, 4242)
        os.rename(tmp, os.path.join(incoming, "foreign.csv"))
        st = wait_until("filed", lambda: (lambda j: j["state"] in ("accepted", "rejected") and j)(
            net[A].ctl("import", "status", "foreign.csv")))
        assert st["state"] == "rejected", st
        assert "foreign.csv" in st["report"]["aborted"] and "4242" in st["report"]["aborted"], st
        assert net[A].status()["residents"] == {}
        assert net[A].alert_counts().get("spool-owner", 0) == 1
        assert "foreign.csv: owned by uid 4242" in net[A].log_text()

        # A directory others may write to: refused at reload, the old config kept.
        os.chmod(incoming, 0o777)
        before = net[A].log_text().count("reload refused")
        net[A].signal(signal.SIGHUP)
        wait_until("the reload refused",
                   lambda: net[A].log_text().count("reload refused") > before)
        assert "%s: mode 0777" % incoming in net[A].log_text()
        assert net[A].running()
        # And at start.
        net[A].stop()
        net[A].start(wait=False)
        wait_until("juki-csd refuses to start", lambda: not net[A].running())
        assert net[A].proc.returncode != 0
        assert net[A].log_text().count("%s: mode 0777" % incoming) == 2
        os.chmod(incoming, 0o700)
        net[A].start()
        assert net[A].status()["residents"] == {}


GW, A, B, PREF, PREF_B, JLIS = ("fwgate:east", "cs:131016", "cs:271004", "pref:13", "pref:27",
                                "jlis:0")


def records(net, node):
    return net[node].status()["records"]


def reconcile(net, node, *args):
    return net[node].ctl("reconcile", *args)


def case_one_lost_record_narrowed_down():
    """A receiver that lacks exactly one record of a day of 5,000: reconciliation narrows
    the difference down over ranges of codes and sends only a few records again, not the
    day (before: all 5,000)."""
    s = Synth(seed=36)
    n = 5000
    with Network([GW, A, PREF, JLIS]) as net:
        people = [s.person("131016") for _ in range(n)]
        add_residents(net[A], people)
        wait_until("%d at jlis" % n, lambda: records(net, JLIS)["current"] == n, timeout=120)
        net[PREF].stop()
        lost = people[1234]["code"]
        with sqlite3.connect(net[PREF].store) as db:
            db.execute("DELETE FROM honnin WHERE code = ?", (lost,))
            (reason,) = db.execute("SELECT reason FROM honnin_counts LIMIT 1").fetchone()
            db.execute("UPDATE honnin_counts SET n = n - 1 WHERE reason = ?", (reason,))
            h = hashlib.sha256(("%s|131016|1" % lost).encode()).digest()
            for side in (0, 1):
                (digest,) = db.execute("SELECT digest FROM honnin_digest WHERE side = ?",
                                       (side,)).fetchone()
                db.execute("UPDATE honnin_digest SET digest = ? WHERE side = ?",
                           (bytes(x ^ y for x, y in zip(digest, h)), side))
        net[PREF].start()
        assert records(net, PREF)["current"] == n - 1
        # One reconcile: the day query differs, the ranges narrow it down, the few records
        # of the last range go again, and the day is asked again: ok.
        day = reconcile(net, A)["days"][0]
        assert (day["status"], day["sent"], day["received"]) == ("ok", n, n), day
        assert day["resent"] == 1, day
        last = day["last_resend"]
        print("re-sent %d records of %d (%d rounds, ranges %s)"
              % (last["records"], n, last["rounds"], last["shown"]))
        assert 1 <= last["records"] <= 16 and last["ranges"] == 1, last
        assert 1 <= last["rounds"] <= 6, last
        (r,) = last["shown"]
        assert r["from"] <= lost <= r["to"], (r, lost)
        # The lost record is back at the far end, and only it was new there.
        assert records(net, PREF)["current"] == n
        assert net[PREF].ctl("person", "show", lost)["records"][0]["code"] == lost
        assert records(net, JLIS)["current"] == n
        assert net[PREF].status()["inbound"]["rejected"] == {}
        day = reconcile(net, PREF)["days"][0]
        assert (day["status"], day["sent"], day["received"]) == ("ok", n, n), day


DR_GW, DR_A, DR_B, DR_C = "fwgate:east", "cs:131016", "cs:131024", "cs:131032"
DR_PREF, DR_JLIS = "pref:13", "jlis:0"
DR_NET = [DR_GW, DR_A, DR_B, DR_C, DR_PREF, DR_JLIS]


def dr_grace(grace):
    def configure(net):
        for n in (DR_PREF, DR_JLIS):
            net[n].extra["conflict_grace"] = grace
    return configure


def dr_register(net, node, people):
    net[node].ctl("resident", "add", "--file", "-",
                  input="\n".join(json.dumps(p, ensure_ascii=False) for p in people))


def dr_movein(net, node, move):
    return net[node].ctl("movein", "--file", "-", input=json.dumps(move, ensure_ascii=False))


def dr_answered(net, node, code):
    """The move-in rows of code at node once every notice has its answer."""
    def rows():
        r = [m for m in net[node].ctl("movein", "list")["moveins"] if m["code"] == code]
        return r if r and all(m["status"] != "queued" for m in r) else None
    return wait_until("the answer to the notice of %s" % code, rows)


def dr_conflicts(net, node):
    """`juki-ctl conflicts` as a supervisor of node (made on first use)."""
    d = net[node]
    sup = d.operators.get("super") or d.add_operator("super", ["supervisor"])
    return sup.ctl("conflicts")


def dr_at(net, node, code, lgcode):
    """Whether node holds lgcode's latest record of code."""
    try:
        recs = net[node].ctl("person", "show", code)["records"]
    except AssertionError:
        return False
    return any(r["lgcode"] == lgcode for r in recs)


def dr_refused_movein(net, s):
    """A's resident moves to B; B's clerk names C as the former municipality: refused."""
    p = s.person("131016")
    dr_register(net, DR_A, [p])
    for n in (DR_PREF, DR_JLIS):
        wait_until("A's record at %s" % n, lambda: dr_at(net, n, p["code"], "131016"))
    move = s.moved(p, "131024")
    move["from"] = "131032"
    dr_movein(net, DR_B, move)
    row = dr_answered(net, DR_B, p["code"])[0]
    return p, row


def case_refused_movein_is_a_double_registration():
    """pref and jlis list the person current at A and B, alert once, B sees a task."""
    s = Synth(seed=101)
    with Network(DR_NET, configure=dr_grace("0s")) as net:
        p, row = dr_refused_movein(net, s)
        # B's clerk sees the refusal as a task, with what C told: no-match.
        assert row["status"] == "rejected" and row["reason"] == "no-match", row
        assert row["task"] == "to resolve", row
        # C, the wrong municipality, knows why: it has no such code.
        refused = net[DR_C].clerk().ctl("tennyu", "refused")["refused"]
        assert [(r["reason"], r["told"], r["code"]) for r in refused] == \
            [("unknown-person", "no-match", p["code"])], refused
        for n in (DR_PREF, DR_JLIS):
            got = wait_until("the conflict at %s" % n,
                             lambda: dr_conflicts(net, n)["total"] == 1 and dr_conflicts(net, n))
            c = got["conflicts"][0]
            assert c["code"] == p["code"] and c["holders"] == ["131016", "131024"], c
            wait_until("double-registration at %s" % n,
                       lambda: net[n].alert_counts().get("double-registration") == 1)
            a = [r for r in net[n].alerts()["recent"] if r["code"] == "double-registration"]
            assert "131016,131024" in a[0]["detail"] and "conflict %d" % c["id"] in a[0]["detail"]
            # The alert names the conflict, never the person's code.
            assert p["code"] not in a[0]["detail"], a
        # B withdraws the move-in: the task is resolved, the conflict gone everywhere.
        out = net[DR_B].ctl("movein", "resolve", p["code"], "--withdraw")
        assert out["resolution"] == "withdrawn", out
        row = net[DR_B].ctl("movein", "list")["moveins"][0]
        assert (row["task"], row["resolution"]) == ("resolved", "withdrawn"), row
        assert net[DR_B].ctl("resident", "show", p["code"])["status"] == "removed"
        hist = net[DR_B].admin("audit", "show", "--limit", "1000")["entries"]
        assert [e for e in hist if e["action"] == "movein.resolve"
                and e["target"] == p["code"]], hist
        for n in (DR_PREF, DR_JLIS):
            wait_until("the conflict cleared at %s" % n,
                       lambda: dr_conflicts(net, n)["total"] == 0)
            assert net[n].alert_counts().get("double-registration") == 1


def case_double_registration_cleared_by_the_former_tenshutsu():
    """The former municipality recording the 転出 clears the conflict at pref and jlis."""
    s = Synth(seed=102)
    with Network(DR_NET, configure=dr_grace("0s")) as net:
        p, row = dr_refused_movein(net, s)
        for n in (DR_PREF, DR_JLIS):
            wait_until("the conflict at %s" % n, lambda: dr_conflicts(net, n)["total"] == 1)
        path = os.path.join(net.dir, "moveout.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write(import_csv([change_row(p, "転出")]))
        assert net[DR_A].ctl("import", path)["state"] == "accepted"
        for n in (DR_PREF, DR_JLIS):
            wait_until("the conflict cleared at %s" % n,
                       lambda: dr_conflicts(net, n)["total"] == 0)
        # B's clerk closes the task; the move-in stands.
        assert net[DR_B].ctl("movein", "resolve", p["code"])["resolution"] == "resolved"
        assert net[DR_B].ctl("resident", "show", p["code"])["status"] == "resident"


def case_normal_movein_is_no_conflict_for_long():
    """A move-in whose 転出 arrives later is no conflict once it has, and raises no alert."""
    s = Synth(seed=103)
    with Network(DR_NET) as net:
        p = s.person("131016")
        dr_register(net, DR_A, [p])
        for n in (DR_PREF, DR_JLIS):
            wait_until("A's record at %s" % n, lambda: dr_at(net, n, p["code"], "131016"))
        dr_movein(net, DR_B, s.moved(p, "131024"))
        assert dr_answered(net, DR_B, p["code"])[0]["status"] == "accepted"
        for n in (DR_PREF, DR_JLIS):
            wait_until("B's 転入 and A's 転出 at %s" % n,
                       lambda: len(net[n].ctl("person", "show", p["code"])["records"]) == 3)
            assert dr_conflicts(net, n)["total"] == 0
            assert "double-registration" not in net[n].alert_counts()


def case_tennyu_refusals_tell_the_sender_no_match():
    """Unknown code and wrong birth date look the same to the sender; A keeps why."""
    s = Synth(seed=104)
    with Network([DR_GW, DR_A, DR_B, DR_PREF, DR_JLIS]) as net:
        resident, stranger = s.person("131016"), s.person("131016")
        dr_register(net, DR_A, [resident])
        wrong = s.moved(resident, "131024")
        wrong["person"]["birth"] = "1901-01-01" if resident["birth"] != "1901-01-01" \
            else "1902-02-02"
        dr_movein(net, DR_B, wrong)
        dr_movein(net, DR_B, s.moved(stranger, "131024"))
        a = dr_answered(net, DR_B, resident["code"])[0]
        b = dr_answered(net, DR_B, stranger["code"])[0]
        assert (a["reason"], a.get("detail")) == (b["reason"], b.get("detail")), (a, b)
        assert a["reason"] == "no-match", a
        # A's own clerk sees the precise reasons; its resident is untouched.
        refused = {r["code"]: r for r in net[DR_A].clerk().ctl("tennyu", "refused")["refused"]}
        assert refused[resident["code"]]["reason"] == "mismatch", refused
        assert refused[stranger["code"]]["reason"] == "unknown-person", refused
        assert {r["told"] for r in refused.values()} == {"no-match"}
        assert net[DR_A].ctl("resident", "show", resident["code"])["status"] == "resident"
        assert "refusal-burst" not in net[DR_A].alert_counts()


def case_refusal_burst_alerts_once():
    """Refused notices past the limit: refusal-burst once, then rate-limited."""
    s = Synth(seed=105)

    def configure(net):
        net[DR_A].extra["tennyu"] = "{refusal_limit: 3, refusal_window: 1h}"

    with Network([DR_GW, DR_A, DR_B, DR_PREF, DR_JLIS], configure=configure) as net:
        strangers = [s.person("131016") for _ in range(6)]
        for p in strangers:
            dr_movein(net, DR_B, s.moved(p, "131024"))
        reasons = [dr_answered(net, DR_B, p["code"])[0]["reason"] for p in strangers]
        assert reasons == ["no-match"] * 3 + ["rate-limited"] * 3, reasons
        assert net[DR_A].alert_counts().get("refusal-burst") == 1
        a = [r for r in net[DR_A].alerts()["recent"] if r["code"] == "refusal-burst"]
        assert a[0]["peer"] == "urn:juki:cs:131024", a
        assert all(p["code"] not in a[0]["detail"] for p in strangers)


if __name__ == "__main__":
    run_cases([case_slow_callers_at_the_gateway,
               case_slow_from_line_at_a_node_port,
               case_refusal_burst_summarised,
               case_rate_limit_raises_one_alert_per_operator,
               case_rate_limit_holds_across_a_restart,
               case_deadline_alert_not_repeated_after_restart,
               case_purge_erases_old_spool_files,
               case_purge_erases_backups_past_keep,
               case_future_dates_refused_at_the_clerk,
               case_future_dates_refused_from_the_network,
               case_folder_modes_refused_at_start,
               case_folder_owner_refused_at_start,
               case_folder_modes_refused_at_reload,
               case_backup_folder_writable_by_others_refused,
               case_full_store_disk,
               case_full_store_disk_import,
               case_history_deleted_while_running,
               case_history_rolled_back_at_restart,
               case_verify_keeps_serving,
               case_no_abbreviation_takes_a_pin,
               case_card_uri_with_a_pin_refused,
               case_unknown_option_no_crash,
               case_repeated_option_refused,
               case_values_checked_alike,
               case_oversized_line_in_a_file_refused,
               case_replay_mismatch,
               case_full_spool_disk,
               case_spool_owner_and_mode,
               case_one_lost_record_narrowed_down,
               case_refused_movein_is_a_double_registration,
               case_double_registration_cleared_by_the_former_tenshutsu,
               case_normal_movein_is_no_conflict_for_long,
               case_tennyu_refusals_tell_the_sender_no_match,
               case_refusal_burst_alerts_once])
