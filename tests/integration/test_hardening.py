"""Hardening: what the network does when an attacker, a careless operator or a
full disk tries it.  Each topic is a block of cases with its own header."""

import errno
import json
import os
import signal
import subprocess

from jukitest import Network, run_cases, wait_until, CTL_FAILED
from jukitest.synth import Synth, change_row, import_csv

GW, A, PREF = "fwgate:east", "cs:131016", "pref:13"


def run(binary, *args):
    return subprocess.run([binary] + list(args), capture_output=True, text=True, timeout=30)


# ---------------------------------------------------------------------------
# Folder modes: the folders a daemon keeps its store, operation history,
# import spool, backups and control socket in are owned by its user or root
# and writable by nobody else, checked at -n, start and reload
# (libjuki/include/juki/base/dir.h).
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# A full store disk: a write the store refuses for want of room is said as
# it is ("store: database or disk is full"), raises disk-full once per
# occurrence, acknowledges nothing, and delivery resumes when there is room.
# ---------------------------------------------------------------------------

def _fill(folder):
    """A filler file taking every free byte of folder's file system; its path."""
    path = os.path.join(folder, "filler")
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        for _ in range(1 << 16):  # bounded: 4 GiB at most
            try:
                f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
        else:
            raise AssertionError("%s never filled up" % folder)
        for size in (4096, 512, 1):  # the last partial blocks too
            for _ in range(1 << 10):
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break
    return path


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
        os.makedirs(folder, mode=0o700)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs",
                            folder], capture_output=True)
        if r.returncode == 0:
            mounted.append(folder)
        net[PREF].store = os.path.join(folder, "pref.db")
        # the operation history elsewhere: the case is about the store
        net[PREF].extra["audit"] = "{path: %s}" % os.path.join(net.dir, "pref.audit")

    try:
        with Network([GW, A, PREF], configure=configure) as net:
            if not mounted:
                print("skip case_full_store_disk: cannot mount a tmpfs (not root?)")
                return
            pref = net[PREF]
            filler = _fill(mounted[0])
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
    finally:
        for path in mounted:
            subprocess.run(["umount", "-l", path], check=False)


def case_full_store_disk_import():
    """An import file dropped while the CS's store is full is refused for that reason
    (its report and the log say "store: database or disk is full", not "0 errors"),
    with one disk-full alert; dropped again when there is room, it is applied."""
    s = Synth(seed=72)
    mounted = []

    def configure(net):
        folder = os.path.join(net.dir, "csstore")
        os.makedirs(folder, mode=0o700)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs",
                            folder], capture_output=True)
        if r.returncode == 0:
            mounted.append(folder)
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
            filler = _fill(mounted[0])
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
        for path in mounted:
            subprocess.run(["umount", "-l", path], check=False)


if __name__ == "__main__":
    run_cases([
        # folder modes
        case_folder_modes_refused_at_start, case_folder_owner_refused_at_start,
        case_folder_modes_refused_at_reload, case_backup_folder_writable_by_others_refused,
        # a full store disk
        case_full_store_disk, case_full_store_disk_import,
    ])
