"""Watching the network (第2-1(3), 第4-7(3), 第4-9(4)): heartbeats, the boards of the
prefecture and the national server, down detection and forwarded alerts.

One network for every case (a CS, its prefecture, the national server, one gateway),
with heartbeats every second and nodes called down after 4 s of silence.  Each case
checks what an operator would: `juki-ctl board` at the prefecture and at the
national server (text and JSON), `status` and `alerts` of the nodes, the answers a
hand-driven peer gets for what it sends.
"""

import signal
import sys
import time

from jukitest import (Network, board_entry, run_cases, run_ctl, store_rows, urn, wait_board,
                      wait_until)
from jukitest.peer import Peer, now, plain_exchange

GW, CS, PREF, JLIS = "fwgate:east", "cs:131016", "pref:13", "jlis:0"
# Certificates without daemons: a CS of Tokyo and one of Osaka, played by the tests.
PEER13, PEER27 = "cs:131024", "cs:271004"

NET = None


def board(name, *args):
    return NET[name].ctl("board", *args)


def entry(name, node):
    """The board entry of node at name, or None."""
    return board_entry(NET[name], node)


def state_is(name, node, state):
    e = entry(name, node)
    return e is not None and e["state"] == state


def forwarded(name, node, code):
    """The alerts from node with code on the board of name."""
    return [a for a in board(name)["alerts"] if a["node"] == urn(node) and a["code"] == code]


def heartbeat(seq=1, **over):
    body = {"seq": seq, "interval_ms": 1000, "started": now(), "daemon": "juki-csd",
            "version": "0.1.0", "state": "ok",
            "queues": {"outbox": 0, "oldest_ms": 0, "rejected": 0, "inbox": 0},
            "reconcile": None, "disk": {"store_free_bytes": 1, "store_bytes": 1},
            "certs": {"node_not_after": None, "crl_next_update": None},
            "alerts": {"total": 0}, "skew_ms": None}
    body.update(over)
    return body


def peer(name):
    cert, key = NET.cert(name)
    return Peer(NET[GW].address, cert, key, NET.ca())


def case_heartbeats_on_both_boards():
    """A CS beats to its prefecture and the nation, the prefecture to the nation: each is
    up on the boards it should be on, with what its heartbeat said; its status shows the
    watchers answering and its clock skew."""
    wait_until("the CS and the prefecture on the national board",
               lambda: state_is(JLIS, CS, "up") and state_is(JLIS, PREF, "up"), timeout=15)
    wait_board(NET[PREF], CS, "up")
    cs = entry(JLIS, CS)
    assert cs["kind"] == "cs" and cs["pref"] == "13" and cs["daemon"] == "juki-csd", cs
    assert cs["version"] == NET[CS].status()["version"], cs
    assert cs["heartbeat"]["interval_ms"] == 1000 and cs["heartbeat"]["state"] == "ok", cs
    assert cs["heartbeat"]["certs"]["node_not_after"] is not None, cs
    assert cs["heartbeat"]["disk"]["store_free_bytes"] > 0, cs
    assert set(cs["queues"]) >= {"outbox", "oldest_ms", "rejected", "inbox"}, cs
    pref = entry(JLIS, PREF)
    assert pref["kind"] == "pref" and pref["daemon"] == "juki-prefd", pref
    # The prefecture's board has its own municipalities only; the nation is nobody's.
    assert [n["node"] for n in board(PREF)["nodes"]] == [urn(CS)], board(PREF)
    assert entry(JLIS, JLIS) is None
    # The sender learns that its watchers answer, and its skew from their clocks.
    wait_until("the CS knows its skew to both watchers", lambda: all(
        w["skew_ms"] is not None and w["last_ok"] is not None
        for w in NET[CS].status()["monitor"]["watchers"]), timeout=10)
    mon = NET[CS].status()["monitor"]
    assert [w["node"] for w in mon["watchers"]] == [urn(PREF), urn(JLIS)], mon
    assert all(abs(w["skew_ms"]) < 2000 and w["pending"] <= 2 for w in mon["watchers"]), mon
    assert mon["board"] is None, mon
    jm = NET[JLIS].status()["monitor"]
    assert jm["watchers"] == [] and jm["board"]["nodes"] >= 2 and jm["board"]["down"] == 0, jm
    # Heartbeats keep coming: the sequence grows.
    seq = entry(PREF, CS)["heartbeat"]["seq"]
    wait_until("a later heartbeat", lambda: entry(PREF, CS)["heartbeat"]["seq"] > seq,
               timeout=10)


def case_board_text_and_json():
    """juki-ctl board in words (a line a node, the totals) and as JSON, and --pref."""
    text = run_ctl("board", socket_path=NET[JLIS].socket, json_out=False)
    lines = text.splitlines()
    assert lines[0].startswith("board of urn:juki:jlis:0 at "), text
    assert lines[1].split()[:3] == ["NODE", "STATE", "DAEMON"], text
    row = [ln for ln in lines if ln.startswith(urn(CS) + " ")]
    assert len(row) == 1 and row[0].split()[1:4] == ["up", "juki-csd", "0.1.0"], text
    assert any(ln.startswith(urn(PREF) + " ") for ln in lines), text
    assert any(ln.endswith(" down") and " nodes: " in ln for ln in lines), text
    doc = board(JLIS)
    assert doc["self"] == urn(JLIS) and doc["time"].endswith("Z"), doc
    assert {"node", "kind", "pref", "daemon", "version", "state", "last_seen", "skew_ms",
            "queues", "alerts_open", "heartbeat"} <= set(doc["nodes"][0]), doc
    only13 = board(JLIS, "--pref", "13")
    assert {n["node"] for n in only13["nodes"]} == {urn(CS), urn(PREF)}, only13
    assert board(JLIS, "--pref", "27")["nodes"] == []
    code, _, err = run_ctl("board", "--pref", "99", socket_path=NET[JLIS].socket, check=False)
    assert code == 2 and "pref: a prefecture code 01..47" in err, (code, err)
    # A CS keeps no board.
    code, _, err = run_ctl("board", socket_path=NET[CS].socket, check=False)
    assert code == 1 and "keeps no board" in err, (code, err)


def case_alert_reaches_both_within_5s():
    """An alert raised at the CS (a caller that does not speak TLS at its node port) is on
    the boards of the prefecture and the nation within 5 s; refused handshakes in numbers
    raise intrusion-suspected, forwarded as an intrusion that marks the CS."""
    t0 = time.monotonic()
    plain_exchange(NET[CS].address, b"GET / HTTP/1.0\r\n\r\n")
    wait_until("the CS's alert at the prefecture and the nation",
               lambda: forwarded(PREF, CS, "not-tls") and forwarded(JLIS, CS, "not-tls"),
               timeout=5, interval=0.05)
    assert time.monotonic() - t0 < 5
    a = forwarded(JLIS, CS, "not-tls")[0]
    assert a["class"] == "fault" and a["seq"] >= 1 and a["time"].endswith("Z"), a
    assert entry(JLIS, CS)["alerts_open"] >= 1
    # Nine more: ten within a minute is an intrusion suspected (monitor.intrusion_refusals).
    for _ in range(9):
        plain_exchange(NET[CS].address, b"\x16\x03\x01junk")
    wait_until("intrusion-suspected at the CS",
               lambda: NET[CS].alert_counts().get("intrusion-suspected") == 1, timeout=10)
    wait_until("the intrusion on both boards",
               lambda: state_is(PREF, CS, "intrusion") and state_is(JLIS, CS, "intrusion"),
               timeout=5, interval=0.05)
    a = forwarded(PREF, CS, "intrusion-suspected")[0]
    assert a["class"] == "intrusion" and "refused handshakes" in a["detail"], a
    # The CS's heartbeat says how many alerts it raised.
    wait_until("the alert total in the heartbeat",
               lambda: entry(JLIS, CS)["heartbeat"]["alerts"]["total"] >= 11, timeout=10)


def case_malformed_heartbeat_refused():
    """A CS played by the test: a malformed heartbeat and an oversized one are refused with
    their reason; a valid one is answered with the watcher's clock and shown."""
    with peer(PEER13) as p:
        assert p.connect(urn(PREF), "monitor") == "OK"
        bad = p.exchange(p.message("monitor.heartbeat", urn(PEER13), urn(PREF),
                                   heartbeat(state="fine")))
        assert bad["body"] == {"status": "rejected", "reason": "invalid-field",
                               "detail": "state: \"ok\" or \"degraded\""}, bad
        bad = p.exchange(p.message("monitor.heartbeat", urn(PEER13), urn(PREF),
                                   heartbeat(seq=-1)))
        assert bad["body"]["reason"] == "invalid-field" and \
            bad["body"]["detail"] == "seq: a count", bad
        big = p.exchange(p.message("monitor.heartbeat", urn(PEER13), urn(PREF),
                                   heartbeat(padding="x" * 70000)))
        assert big["body"]["reason"] == "invalid-field" and \
            big["body"]["detail"].startswith("body: ") and "at most 65536" in \
            big["body"]["detail"], big
        bad = p.exchange(p.message("monitor.alert", urn(PEER13), urn(PREF),
                                   {"seq": 1, "time": now(), "code": "x\ny", "detail": "",
                                    "class": "fault"}))
        assert bad["body"]["reason"] == "invalid-field" and \
            bad["body"]["detail"].startswith("code: "), bad
        assert entry(PREF, PEER13) is None
        ok = p.exchange(p.message("monitor.heartbeat", urn(PEER13), urn(PREF),
                                  heartbeat(seq=5, future={"member": 1})))
        assert ok["body"]["status"] == "accepted", ok
        assert ok["body"]["result"]["time"].endswith("Z"), ok
    e = entry(PREF, PEER13)
    assert e["state"] == "up" and e["heartbeat"]["seq"] == 5, e
    assert NET[PREF].status()["inbound"]["rejected"].get("invalid-field") == 4


def case_heartbeat_policy_refused():
    """A CS of Osaka may not beat to Tokyo's prefecture (the gateway refuses the tunnel,
    and the prefecture's board never sees it); a node that keeps no board refuses."""
    with peer(PEER27) as p:
        answer = p.connect(urn(PREF), "monitor")
        assert answer.startswith("DENY policy "), answer
        assert "not in the same prefecture" in answer, answer
    assert entry(PREF, PEER27) is None and entry(JLIS, PEER27) is None
    # The nation may open monitor toward a CS (for notices): a CS keeps no board.
    with peer(JLIS) as p:
        assert p.connect(urn(CS), "monitor") == "OK"
        ack = p.exchange(p.message("monitor.heartbeat", urn(JLIS), urn(CS), heartbeat()))
        assert ack["body"]["status"] == "rejected" and \
            ack["body"]["reason"] == "not-watching", ack


def case_reload_takes_monitor_keys():
    """The monitor section changes at a reload (SIGHUP): the prefecture's interval, seen in
    its status and in the heartbeat on the national board, and back again."""
    pref = NET[PREF]
    pref.monitor["interval"] = "2s"
    pref.write_config()
    before = pref.log_text().count(": reloaded")
    pref.signal(signal.SIGHUP)
    wait_until("the prefecture reloaded",
               lambda: pref.log_text().count(": reloaded") > before, timeout=10)
    assert pref.status()["monitor"]["interval_ms"] == 2000
    wait_until("the prefecture's heartbeat says 2 s",
               lambda: entry(JLIS, PREF)["heartbeat"]["interval_ms"] == 2000, timeout=10)
    pref.monitor.pop("interval")
    pref.write_config()
    before = pref.log_text().count(": reloaded")
    pref.signal(signal.SIGHUP)
    wait_until("the prefecture reloaded again",
               lambda: pref.log_text().count(": reloaded") > before, timeout=10)
    assert pref.status()["monitor"]["interval_ms"] == 1000


def case_watcher_down_one_heartbeat_waits():
    """The national server stopped: the CS keeps one heartbeat to it waiting, never more,
    goes on beating to its prefecture and says it is degraded once the one waiting is older
    than down_after; the nation back, the one waiting is delivered and the queue empties."""
    NET[JLIS].stop()
    waiting = "SELECT count(*) FROM outbox WHERE dest = 'urn:juki:jlis:0' AND " \
        "type = 'monitor.heartbeat'"
    wait_until("the CS degraded on the prefecture's board",
               lambda: entry(PREF, CS)["heartbeat"]["state"] == "degraded", timeout=15)
    seq = entry(PREF, CS)["heartbeat"]["seq"]
    wait_until("two more heartbeats to the prefecture",
               lambda: entry(PREF, CS)["heartbeat"]["seq"] >= seq + 2, timeout=10)
    assert store_rows(NET[CS].store, waiting) == [(1,)]
    w = {x["node"]: x for x in NET[CS].status()["monitor"]["watchers"]}
    assert w[urn(JLIS)]["pending"] >= 1 and w[urn(PREF)]["pending"] <= 2, w
    NET[JLIS].start()
    wait_until("the waiting heartbeat delivered",
               lambda: store_rows(NET[CS].store, waiting) == [(0,)] and
               entry(JLIS, CS) is not None, timeout=15)
    wait_until("the CS ok again", lambda: entry(PREF, CS)["heartbeat"]["state"] == "ok",
               timeout=10)


def case_stopped_daemon_marked_down():
    """A CS stopped: after monitor.down_after it is down on both boards, node-down is raised
    at the prefecture and the nation (and the prefecture's reaches the nation too); started
    again it is up again and the boards say it came back."""
    NET[CS].stop()
    t0 = time.monotonic()
    wait_until("the CS down on both boards",
               lambda: state_is(PREF, CS, "down") and state_is(JLIS, CS, "down"),
               timeout=15)
    assert time.monotonic() - t0 < 12
    for name in (PREF, JLIS):
        recs = [r for r in NET[name].alerts()["recent"]
                if r["code"] == "node-down" and r["peer"] == urn(CS)]
        assert len(recs) == 1 and "no heartbeat for" in recs[0]["detail"], recs
        assert NET[name].status()["monitor"]["board"]["down"] >= 1
    wait_until("the prefecture's node-down on the national board",
               lambda: any(a["peer"] == urn(CS) for a in forwarded(JLIS, PREF, "node-down")),
               timeout=5)
    NET[CS].start()
    wait_until("the CS up again on both boards",
               lambda: state_is(PREF, CS, "intrusion") and state_is(JLIS, CS, "intrusion"),
               timeout=15)
    for name in (PREF, JLIS):
        assert "monitor: %s is back" % urn(CS) in NET[name].log_text()
        # down once: the alert is not raised again while it beats
        assert NET[name].alert_counts().get("node-down", 0) >= 1


def main():
    global NET
    code = 0
    with Network([GW, CS, PREF, JLIS], extra_identities=[PEER13, PEER27],
                 monitor=True) as net:
        NET = net
        try:
            run_cases([case_heartbeats_on_both_boards, case_board_text_and_json,
                       case_alert_reaches_both_within_5s, case_malformed_heartbeat_refused,
                       case_heartbeat_policy_refused, case_reload_takes_monitor_keys,
                       case_watcher_down_one_heartbeat_waits, case_stopped_daemon_marked_down])
        except SystemExit as e:
            code = e.code
        if code:
            net.dump_logs()
    sys.exit(code)


if __name__ == "__main__":
    main()
