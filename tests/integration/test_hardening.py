"""Hardening: what the network does against an attacker, a careless operator and a full disk.

Each topic is a block of cases with a comment header; all of them run from run_cases()."""

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import struct
import time

from jukitest import Network, run_cases, run_ctl, CtlError, CTL_FAILED
from jukitest.synth import Synth

GW, A, PREF = "fwgate:east", "cs:131016", "pref:13"
NET = [GW, A, PREF]


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


# ---------------------------------------------------------------------------------------------
# The operation history cannot be cut, rewritten or replaced without trace (docs/audit.md §5):
# the node's store remembers the head, a history that does not hold it stops clerical work
# until an administrator adopts it (recorded), and audit verify runs off the event loop.
# ---------------------------------------------------------------------------------------------

def audit_files(daemon):
    return [daemon.store + ".audit" + s for s in ("", "-wal", "-shm")]


def lookup(net, code):
    """A clerk's lookup: the clerical work a suspended history refuses."""
    return net[A].clerk().ctl("lookup", "--purpose", "tax", code)


def history(daemon):
    return daemon.admin("audit", "show", "--limit", "100000")["entries"]


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


if __name__ == "__main__":
    run_cases([
        # the operation history
        case_history_deleted_while_running,
        case_history_rolled_back_at_restart,
        case_verify_keeps_serving,
    ])
