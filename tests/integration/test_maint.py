"""Backups, restores and purges of a real prefectural server (docs/architecture.md §11, §12;
第4-9(2), 第6-7).

A hand-driven peer with the certificate of a CS of Tokyo (cs:131016) sends
転出確定通知 to juki-prefd of Tokyo (pref:13) through a real gateway, so that its
store holds something to tell one backup from another.  `juki-ctl backup`
asks the running daemon for an online copy; `juki-ctl backup verify` and
`juki-ctl restore` work offline, on the files.  Purges run on the idle node,
and once more with its clock moved past the inbox's horizon.

A purge with records five years old, and a restored node catching up, are in
test_retention.py.
"""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess

from jukitest import CTL_FAILED, Network, run_cases, run_ctl, urn, wait_until
from jukitest.peer import Peer, uuid7

CS = "cs:131016"
PREF = "pref:13"
GW = "fwgate:east"
NET = [GW, PREF]
CODES = ["24727059608", "17075364555"]


def confirm(net, code):
    """One 転出確定通知 from CS to the prefecture, accepted; returns its message id."""
    cert, key = net.cert(CS)
    with Peer(net[GW].address, cert, key, net.ca()) as p:
        assert p.connect(urn(PREF), "honnin") == "OK"
        m = p.message("tenshutsu.confirm", urn(CS), urn(PREF),
                      {"code": code, "old_lgcode": "131016", "new_lgcode": "271004",
                       "move_date": "2026-11-25", "tennyu_id": uuid7()})
        ack = p.exchange(m)
        assert ack["body"] == {"status": "accepted"}, ack
    return m["id"]


def confirmation_ids(pref):
    return [c["notice_id"] for c in pref.ctl("confirmations")["confirmations"]]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def rows(path, sql):
    """A count read from a store file without changing it."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def wal_bytes(pref):
    try:
        return os.path.getsize(pref.store + "-wal")
    except FileNotFoundError:
        return 0


def wal_after_purge(pref):
    """The purge leaves the WAL empty; the one write that follows the request (the head of the
    operation history, docs/audit.md §5.3) starts it again with a frame or two of its own."""
    return wal_bytes(pref) <= 32 + 2 * (24 + 4096)


def case_backup_verify_restore():
    with Network(NET, extra_identities=[CS]) as net:
        pref = net[PREF]
        pref.clerk()  # operators are in the store: the backup keeps them
        first = confirm(net, CODES[0])

        # An online backup of the running daemon, into a directory it creates.
        bdir = os.path.join(net.dir, "backups", "b1")
        man = pref.ctl("backup", bdir)
        copy = os.path.join(bdir, man["file"])
        assert man["node"] == urn(PREF) and man["manifest_version"] == 1, man
        assert man["source"] == pref.store and man["file"] == os.path.basename(pref.store)
        assert man["size"] == os.path.getsize(copy) and man["sha256"] == sha256(copy), man
        assert man["schemas"]["juki"] >= 1 and man["schemas"]["prefd"] >= 1, man
        assert sorted(os.listdir(bdir)) == sorted([man["file"], "manifest.json"])
        assert mode(bdir) == 0o700 and mode(copy) == 0o600
        assert mode(os.path.join(bdir, "manifest.json")) == 0o600
        with open(os.path.join(bdir, "manifest.json")) as f:
            assert json.load(f) == man
        # The copy is a database of its own holding what the daemon held.
        assert rows(copy, "SELECT count(*) FROM tenshutsu_kakutei") == 1

        # Verified offline, without the daemon; JSON and text.
        v = run_ctl("backup", "verify", bdir)
        assert v["verified"] is True and v["manifest"] == man, v
        assert "checksum and integrity check pass" in run_ctl("backup", "verify", bdir,
                                                              json_out=False)
        # A second backup never overwrites the first.
        code, out, err = pref.ctl("backup", bdir, check=False)
        assert code == CTL_FAILED and "holds a backup already" in err, (code, err)
        assert sha256(copy) == man["sha256"]

        # A damaged copy fails verification, and cannot be restored.
        bad = os.path.join(net.dir, "backups", "bad")
        shutil.copytree(bdir, bad)
        with open(os.path.join(bad, man["file"]), "r+b") as f:
            f.seek(man["size"] // 2)
            byte = f.read(1)
            f.seek(man["size"] // 2)
            f.write(bytes([byte[0] ^ 0xff]))
        code, out, err = run_ctl("backup", "verify", bad, check=False)
        assert code == CTL_FAILED and "SHA-256" in err, (code, err)
        assert json.loads(out)["verified"] is False

        # More happens after the backup.
        second = confirm(net, CODES[1])
        assert confirmation_ids(pref) == [first, second]

        # While the daemon runs, restore is refused and changes nothing.
        for d in (bdir, bad):
            code, out, err = run_ctl("restore", "--store", pref.store, d, check=False)
            assert code == CTL_FAILED, (code, out, err)
        code, out, err = run_ctl("restore", "--store", pref.store, bdir, check=False)
        assert "in use" in err and json.loads(out)["error"] == "conflict", (out, err)
        assert not os.path.exists(pref.store + ".before-restore")
        assert not os.path.exists(pref.store + ".restore-tmp")
        assert confirmation_ids(pref) == [first, second]

        # Stopped, it is restored: the store is the backup, the old one kept.
        assert pref.stop() == 0
        code, out, err = run_ctl("restore", "--store", pref.store, bad, check=False)
        assert code == CTL_FAILED and "SHA-256" in err, err
        res = run_ctl("restore", "--store", pref.store, bdir)
        kept = pref.store + ".before-restore"
        assert res["store"] == pref.store and res["kept"] == kept and res["manifest"] == man
        assert sha256(pref.store) == man["sha256"]
        assert not os.path.exists(pref.store + "-wal")
        assert mode(pref.store) == 0o600 and mode(kept) == 0o600
        assert rows(kept, "SELECT count(*) FROM tenshutsu_kakutei") == 2

        # The daemon starts on the restored store: what the backup held, no more.
        pref.start()
        assert confirmation_ids(pref) == [first]
        # and goes on from there
        third = confirm(net, CODES[1])
        assert confirmation_ids(pref) == [first, third]
        again = pref.ctl("backup", os.path.join(net.dir, "backups", "b3"))
        assert again["sha256"] != man["sha256"]
        assert run_ctl("backup", "verify", os.path.join(net.dir, "backups", "b3"))["verified"]


def case_store_of_another_node():
    """A store belongs to the node that first opened it: a daemon refuses another node's
    store, and a restore does not replace one with a backup of another node."""
    with Network(NET) as net:
        pref = net[PREF]
        assert rows(pref.store, "SELECT urn FROM node_identity") == urn(PREF)
        bdir = os.path.join(net.dir, "b")
        pref.ctl("backup", bdir)
        assert pref.stop() == 0
        # Another prefecture's store where this node's should be: refused at the start.
        con = sqlite3.connect(pref.store)
        con.execute("UPDATE node_identity SET urn = 'urn:juki:pref:27'")
        con.commit()
        con.close()
        altered = sha256(pref.store)
        pref.start(wait=False)
        assert pref.proc.wait(20) != 0
        with open(pref.log) as f:
            log = f.read()
        assert "belongs to urn:juki:pref:27, not to this node (urn:juki:pref:13)" in log, log
        assert sha256(pref.store) == altered  # nothing taken over
        # Nor does this node's backup replace it.
        code, out, err = run_ctl("restore", "--store", pref.store, bdir, check=False)
        assert code == CTL_FAILED and json.loads(out)["error"] == "conflict", (code, out, err)
        assert "belongs to urn:juki:pref:27" in err, err
        assert sha256(pref.store) == altered
        assert not os.path.exists(pref.store + ".before-restore")
        # Moved away, the backup is restored and the daemon starts on it.
        os.rename(pref.store, pref.store + ".other")
        run_ctl("restore", "--store", pref.store, bdir)
        pref.start()
        assert pref.status()["node"] == urn(PREF)


def case_relative_backup_dir():
    """juki-ctl hands the daemon an absolute path: a relative DIR is where juki-ctl runs."""
    with Network(NET) as net:
        pref = net[PREF]
        cwd = os.getcwd()
        os.chdir(net.dir)
        try:
            man = pref.ctl("backup", "rel/b")
        finally:
            os.chdir(cwd)
        assert os.path.isfile(os.path.join(net.dir, "rel", "b", man["file"]))
        code, out, err = pref.ctl("backup", check=False)
        assert code == 2 and "usage" in err, (code, err)


def case_purge_idle():
    """An idle node: nothing due, nothing removed, the WAL empty, and the same again."""
    with Network(NET) as net:
        pref = net[PREF]
        dry = pref.ctl("purge", "--dry-run")
        assert dry["dry_run"] is True and dry["due"] == 0 and dry["removed"] == 0, dry
        names = [r["name"] for r in dry["rules"]]
        assert "outbox_rejected" in names and "inbox" in names, names
        assert all(r["due"] == 0 and r["removed"] == 0 for r in dry["rules"]), dry
        assert "checkpoint" not in dry and "verified" not in dry
        for _ in range(2):
            rep = pref.ctl("purge")
            assert rep["dry_run"] is False and rep["removed"] == 0, rep
            assert rep["checkpoint"] == {"complete": True, "wal_bytes": 0}, rep
            assert rep["verified"] is True
            assert all(r["remaining"] == 0 for r in rep["rules"]), rep
            assert wal_after_purge(pref)
        text = pref.ctl("purge", json_out=False)
        assert "verified: yes" in text and "checkpoint: complete, WAL 0 bytes" in text, text
        text = pref.ctl("purge", "--dry-run", json_out=False)
        assert "dry run" in text and "verified" not in text, text
        # the daemon says what it did, in counts
        assert "purge: removed 0 (" in pref.log_text()
        assert "purge: dry run: 0 due (" in pref.log_text()
        # and still serves
        assert pref.status()["ready"]
        # Periods out of bounds are refused with their place in the file.
        bad = os.path.join(net.dir, "bad.yaml")
        with open(pref.config) as f, open(bad, "w") as out:
            out.write(f.read() + "purge:\n  years: 101\n")
        p = subprocess.run([pref.binary, "-n", "-f", bad], capture_output=True, text=True)
        assert p.returncode == 1 and "purge.years" in p.stderr, p.stderr


def case_purge_inbox_horizon():
    """Message ids are kept purge.inbox_days (400) days, then erased, once."""
    with Network(NET, extra_identities=[CS]) as net:
        pref = net[PREF]
        ids = [confirm(net, CODES[0]), confirm(net, CODES[1])]
        dry = pref.ctl("purge", "--dry-run")
        assert [r["due"] for r in dry["rules"] if r["name"] == "inbox"] == [0], dry
        # 401 days on (the drill clock; reloaded on SIGHUP)
        pref.extra["clock_offset"] = "401d"
        pref.write_config()
        pref.signal(signal.SIGHUP)
        wait_until("the clock moved", lambda: [r["due"] for r in pref.ctl(
            "purge", "--dry-run")["rules"] if r["name"] == "inbox"] == [2])
        rep = pref.ctl("purge")
        inbox = [r for r in rep["rules"] if r["name"] == "inbox"][0]
        assert inbox["removed"] == 2 and inbox["remaining"] == 0, rep
        assert rep["verified"] is True and wal_after_purge(pref), rep
        assert rows(pref.store, "SELECT count(*) FROM inbox") == 0
        # the confirmations themselves are the prefecture's records: untouched
        assert confirmation_ids(pref) == ids
        assert pref.ctl("purge")["removed"] == 0
        # A period of 0 keeps ids forever.
        pref.extra["purge"] = "{inbox_days: 0}"
        pref.write_config()
        pref.signal(signal.SIGHUP)
        wait_until("inbox_days 0", lambda: [r["cutoff"] for r in pref.ctl(
            "purge", "--dry-run")["rules"] if r["name"] == "inbox"] == [None])


if __name__ == "__main__":
    run_cases([case_backup_verify_restore, case_store_of_another_node, case_relative_backup_dir,
               case_purge_idle,
               case_purge_inbox_horizon])
