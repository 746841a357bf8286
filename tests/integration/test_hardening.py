"""Hardening: defects found by a review, each proved fixed with the real daemons.

Each topic is a block of cases under a comment header naming it; run_cases() at the end
runs them all."""

import glob
import json
import os
import signal
import time

from jukitest import Network, run_cases, run_ctl, wait_until, CtlError
from jukitest.synth import Synth, import_csv, change_row

GW, A, PREF = "fwgate:east", "cs:131016", "pref:13"
NET = [GW, A, PREF]
DAY_MS = 86400_000


def fails(fn, *args, **kw):
    """Run a juki-ctl call that must fail; returns (exit code, error code, message)."""
    try:
        fn(*args, **kw)
    except CtlError as e:
        try:
            body = json.loads(e.out)
        except ValueError:
            body = {}
        return e.code, body.get("error"), e.err
    raise AssertionError("%s %s succeeded" % (fn, args))


def register(net, people):
    net[A].ctl("resident", "add", "--file", "-",
               input="\n".join(json.dumps(p, ensure_ascii=False) for p in people))


def history(daemon, **filters):
    args = ["audit", "show", "--limit", "100000"]
    for k, v in filters.items():
        args += ["--" + k, v]
    return daemon.admin(*args)["entries"]


def set_clock(d, offset_ms):
    """Move a daemon's clock by clock_offset and a reload; returns when it reloaded."""
    d.extra["clock_offset"] = "%dms" % offset_ms
    d.write_config()
    before = d.log_text().count(": reloaded")
    d.signal(signal.SIGHUP)
    wait_until("%s reloaded" % d.name, lambda: d.log_text().count(": reloaded") > before)


def restart(d):
    """Stop a daemon gracefully and start it again; returns when it answers ready."""
    assert d.stop() == 0
    d.start()


# ---- alerts and state that survive a restart: rate-limited, lookup limits, deadline ----

def case_rate_limit_raises_one_alert_per_operator():
    """A burst over the lookup limit raises the alert rate-limited once per operator and
    window, naming the operator and not what was looked up; every refusal is still in
    the history."""
    s = Synth(seed=901)

    def configure(net):
        net[A].operator["lookups_per_minute"] = 3

    with Network(NET, configure=configure) as net:
        p = s.person("131016")
        register(net, [p])
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
        register(net, [p])
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
        register(net, [s.person("131016") for _ in range(2)])
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


# ---- retention of files with personal data: the import spool and old backups ----

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


if __name__ == "__main__":
    run_cases([
        # alerts and state that survive a restart
        case_rate_limit_raises_one_alert_per_operator,
        case_rate_limit_holds_across_a_restart,
        case_deadline_alert_not_repeated_after_restart,
        # retention of files with personal data
        case_purge_erases_old_spool_files,
        case_purge_erases_backups_past_keep,
    ])
