"""Callers that try to hold the gateway or a node port without ever becoming
trusted (第4-3(6) 模擬攻撃, 第4-9(3)), and the gateway's log under a burst of
refusals.

Everything a peer must do before it is trusted (handshake, CONNECT or FROM
line, inner handshake) is bounded by one deadline from accept
(docs/protocol.md §3, "Time before trust"): a peer that sends one byte every 0.3 s is cut off as
soon as a silent one would be, raised as a `slow-caller` alert, counted, and
holds one of its address's `limits.per_address` connections until then.
"""

import select
import socket
import ssl
import time

from jukitest import Network, run_cases, urn, wait_until
from jukitest.peer import Peer, tcp_connect
from jukitest.synth import lgcode_check_digit

A, B = "cs:131016", "cs:271004"
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


if __name__ == "__main__":
    run_cases([case_slow_callers_at_the_gateway, case_slow_from_line_at_a_node_port,
               case_refusal_burst_summarised])
