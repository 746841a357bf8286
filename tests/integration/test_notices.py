"""Notices (第4-7(3)) and the witnessed operation history (第4-4(6), 第4-9(4)).

One network for every case: the national server, prefecture 13 and two of its CSs, heartbeats
every second. cs:131016 is watched by pref:13 and jlis:0; cs:132012 only by jlis:0
(monitor.watchers), so that a notice from pref:13 to it is one from a node that does not
watch it.
"""

import json
import os
import shutil

from jukitest import (CtlError, Network, fails, history, run_cases, run_ctl, wait_until)

JLIS, PREF, CS, CS2 = "jlis:0", "pref:13", "cs:131016", "cs:132012"
U = {n: "urn:juki:" + n for n in (JLIS, PREF, CS, CS2)}
TEXT = "定期保守のため 12月8日 22:00 から 2 時間 ゲートウェイを停止します"

NET = None


def configure(net):
    net[CS2].monitor["watchers"] = "[%s]" % U[JLIS]


def board_nodes(d):
    return {n["node"] for n in d.admin("board")["nodes"]}


def received(d, nid):
    """The notice nid as d's status shows it, or None."""
    for n in d.status()["notices"]["recent"]:
        if n["id"] == nid:
            return n
    return None


def dests(d, nid):
    """{recipient: its row} of the notice nid sent from d."""
    for n in d.admin("notice", "list")["sent"]:
        if n["id"] == nid:
            return {t["node"]: t for t in n["to"]}
    return {}


def case_notice_sent_shown_acked():
    jlis, pref, cs = NET[JLIS], NET[PREF], NET[CS]
    r = jlis.admin("notice", "send", "--to", "%s,%s" % (U[CS], U[PREF]), "--severity",
                   "warning", "--text", TEXT)
    nid = r["id"]
    assert sorted(r["to"]) == sorted([U[CS], U[PREF]]), r
    for d in (cs, pref):
        wait_until("the notice at %s" % d.name, lambda d=d: received(d, nid) is not None, 15)
    n = received(cs, nid)
    assert n["from"] == U[JLIS] and n["severity"] == "warning" and n["text"] == TEXT, n
    assert n["acked"] is None
    assert cs.status()["notices"]["unacked"] >= 1
    wait_until("delivered", lambda: dests(jlis, nid)[U[CS]]["state"] == "delivered", 15)

    a = cs.admin("notice", "ack", nid)
    assert a["to"] == U[JLIS] and a["by"].startswith("admin:uid="), a
    assert received(cs, nid)["acked"] is not None
    wait_until("the ack at jlis", lambda: dests(jlis, nid)[U[CS]]["acked"] is not None, 15)
    row = dests(jlis, nid)
    assert row[U[CS]]["by"] == a["by"], row
    assert row[U[PREF]]["acked"] is None, row  # pref:13 has not read it
    # Acknowledged once.
    code, err, _ = fails(cs.admin, "notice", "ack", nid)
    assert code == 1 and err == "already-acked", err
    # Every send and ack in the operation history, by id, never the text.
    sent = [e for e in history(jlis) if e["action"] == "notice.send"]
    assert sent and sent[-1]["target"] == nid and sent[-1]["outcome"] == "ok", sent[-1:]
    acked = [e for e in history(jlis) if e["action"] == "notice.acked"]
    assert acked and acked[-1]["target"] == nid and acked[-1]["operator"] == U[CS], acked
    acks = [e for e in history(cs) if e["action"] == "notice.ack"]
    assert acks and acks[-1]["target"] == nid, acks
    for d in (jlis, cs):
        assert "定期保守" not in json.dumps(history(d), ensure_ascii=False)
        assert "定期保守" not in d.log_text()


def case_notice_to_pref_and_all():
    jlis, pref, cs, cs2 = NET[JLIS], NET[PREF], NET[CS], NET[CS2]
    # pref:13 at jlis: every node of prefecture 13 on the national board.
    r = jlis.admin("notice", "send", "--to", "pref:13", "--text", "pref 13 drill at 10:00")
    assert sorted(r["to"]) == sorted([U[PREF], U[CS], U[CS2]]), r
    assert r["severity"] == "info"
    for d in (pref, cs, cs2):
        wait_until("pref:13 notice at %s" % d.name,
                   lambda d=d: received(d, r["id"]) is not None, 15)
    # all at the prefecture: the nodes on its board (cs:132012 does not report to it).
    r = pref.admin("notice", "send", "--to", "all", "--severity", "critical", "--text",
                   "certificate renewal today")
    assert r["to"] == [U[CS]], r
    wait_until("all notice at cs", lambda: received(cs, r["id"]) is not None, 15)
    assert received(cs, r["id"])["from"] == U[PREF]
    text = cs.admin("notice", "list", json_out=False)
    assert "received %s" % r["id"] in text and "from %s  NOT ACKED" % U[PREF] in text, text
    assert "certificate renewal today" in text, text
    # A CS keeps no board: "all" means nothing there.
    code, err, _ = fails(cs.admin, "notice", "send", "--to", "all", "--text", "x")
    assert code == 1 and err == "no-board", err


def case_refusals():
    jlis, pref, cs2 = NET[JLIS], NET[PREF], NET[CS2]
    for args, want in [
        (["--to", U[CS], "--text", "x" * 1001], "invalid-text"),  # oversized
        (["--to", U[CS], "--text", "two\nlines"], "invalid-text"),  # a control character
        (["--to", U[CS], "--text", "esc \x1b[2J"], "invalid-text"),
        (["--to", U[CS], "--text", "x", "--severity", "fatal"], "usage"),
        (["--to", "pref:99", "--text", "x"], "usage"),
        (["--to", "urn:juki:op:cs:131016:tanaka", "--text", "x"], "usage"),
        (["--to", U[JLIS], "--text", "x"], "usage"),  # itself
    ]:
        code, err, _ = fails(jlis.admin, "notice", "send", *args)
        assert err == want and code == (2 if want == "usage" else 1), (args, code, err)
    assert len(jlis.admin("notice", "send", "--to", U[CS], "--text", "x" * 1000)["to"]) == 1
    code, err, _ = fails(jlis.admin, "notice", "ack", "01890a5d-ac96-774b-bcce-b302099a8057")
    assert code == 1 and err == "unknown-notice", err
    code, err, _ = fails(jlis.admin, "notice", "ack", "not-an-id")
    assert code == 2 and err == "usage", (code, err)

    # A notice from a node that does not watch the recipient: refused there, and the
    # sender sees why.
    before = cs2.alert_counts().get("notice-refused", 0)
    r = pref.admin("notice", "send", "--to", U[CS2], "--text", "from a non-watcher")
    wait_until("refused", lambda: dests(pref, r["id"])[U[CS2]]["state"] == "refused", 15)
    assert dests(pref, r["id"])[U[CS2]]["reason"] == "not-watcher"
    assert received(cs2, r["id"]) is None
    assert cs2.alert_counts().get("notice-refused", 0) == before + 1


def witnessed(w, node):
    """The checkpoints of node that witness w accepted."""
    return [c for c in w.admin("witness", "show", "--node", U[node])["checkpoints"]
            if c["verdict"] == "ok"]


def audit_file(d):
    return d.store + ".audit"


def rollback_alerts(w, node):
    return [a for a in w.alerts()["recent"]
            if a["code"] == "audit-rollback" and a["peer"] == U[node]]


def case_history_rolled_back():
    jlis, pref, cs = NET[JLIS], NET[PREF], NET[CS]
    wait_until("witnessed at both", lambda: witnessed(pref, CS) and witnessed(jlis, CS), 15)

    # An earlier copy of the CS's history, taken while it is stopped.
    assert cs.stop() == 0
    copy = os.path.join(NET.dir, "cs-131016.audit.copy")
    shutil.copy2(audit_file(cs), copy)
    head = max(c["seq"] for c in witnessed(jlis, CS))
    cs.start()
    for _ in range(3):
        cs.admin("notice", "list")  # entries after the copy
    wait_until("newer checkpoints witnessed",
               lambda: max(c["seq"] for c in witnessed(pref, CS)) > head + 3 and
               max(c["seq"] for c in witnessed(jlis, CS)) > head + 3, 15)

    wfile = os.path.join(NET.dir, "w-jlis.json")
    with open(wfile, "w") as f:
        json.dump(jlis.admin("witness", "show", "--node", U[CS]), f)
    cert = os.path.join(NET.pki, "cs-131016.crt")
    ok = run_ctl("audit", "verify", "--file", audit_file(cs), "--cert", cert, "--witness",
                 wfile)
    assert ok["ok"] and ok["witness"]["ok"], ok
    assert ok["witness"]["checkpoints"] >= 1, ok

    # Rolled back: the daemon stopped, the earlier copy put back, started again.
    assert not rollback_alerts(pref, CS) and not rollback_alerts(jlis, CS)
    assert cs.stop() == 0
    for p in (audit_file(cs) + "-wal", audit_file(cs) + "-shm"):
        if os.path.exists(p):
            os.unlink(p)
    shutil.copy2(copy, audit_file(cs))
    cs.start()
    for w in (pref, jlis):
        wait_until("audit-rollback at %s" % w.name, lambda w=w: rollback_alerts(w, CS), 15)
        a = rollback_alerts(w, CS)[0]
        assert "backwards" in a["detail"], a
    # What the witness holds proves it off the node.
    code, out, err = run_ctl("audit", "verify", "--file", audit_file(cs), "--cert", cert,
                             "--witness", wfile, check=False)
    assert code == 1, (code, out, err)
    rep = json.loads(out)
    assert not rep["ok"] and rep["reason"] == "witness-rollback", rep
    assert rep["witness"]["through"] > rep["witness"]["entries"], rep
    text = run_ctl("audit", "verify", "--file", audit_file(cs), "--cert", cert, "--witness",
                   wfile, json_out=False, check=False)[1]
    assert "not on the file (rollback)" in text, text
    text = jlis.admin("witness", "show", "--node", U[CS], json_out=False)
    assert "%s witnessed by %s" % (U[CS], U[JLIS]) in text and "backwards" in text, text
    summary = jlis.admin("witness", "show")["nodes"]
    row = [n for n in summary if n["node"] == U[CS]][0]
    assert row["problems"] >= 1, row
    try:
        run_ctl("audit", "verify", "--file", audit_file(cs), "--cert", cert, "--witness",
                cert)
        raise AssertionError("a witness file that is not JSON was taken")
    except CtlError as e:
        assert e.code == 1, e


def main():
    global NET
    with Network(["fwgate:east", JLIS, PREF, CS, CS2], monitor=True,
                 configure=configure) as net:
        NET = net
        wait_until("the boards", lambda: {U[PREF], U[CS], U[CS2]} <= board_nodes(net[JLIS])
                   and U[CS] in board_nodes(net[PREF]), 20)
        run_cases([case_notice_sent_shown_acked, case_notice_to_pref_and_all, case_refusals,
                   case_history_rolled_back])


if __name__ == "__main__":
    main()
