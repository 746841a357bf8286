"""The attack suite at the gateway (第4-3(6) 模擬攻撃, 第4-9(3)): every refusal is
answered or cut off, logged, counted, raised as an alert, and leaves nothing
behind.

Each case attacks a real juki-fwgated with the real nodes behind it, then
checks what an operator would: the caller's answer, the gateway's counters
and alerts (`juki-ctl status` / `juki-ctl alerts`), and that the destination
never saw a connection (its inbound status and alerts are unchanged).
"""

import json
import os
import signal
import subprocess
import time

from jukitest import BINARIES, BUILD, Network, run_cases, run_ctl, urn, wait_until
from jukitest.peer import Peer, plain_exchange
from jukitest.synth import Synth, lgcode_check_digit

A, B, C = "cs:131016", "cs:271004", "cs:131024"
GW = "fwgate:east"


def peer(net, name, gateway=GW, **kw):
    """A hand-driven peer holding the certificate of name, calling gateway."""
    cert, key = net.cert(name)
    return Peer(net[gateway].address, cert, key, net.ca(), **kw)


def counters(net, gw=GW):
    return net[gw].status()["counters"]


def inbound(net, name):
    """What a node saw arrive: its inbound status and its alert counts."""
    st = net[name].status()
    return st["inbound"], st["alerts"]["counts"]


def recent(net, name, code):
    return [r for r in net[name].alerts()["recent"] if r["code"] == code]


def tunnel_works(net, src, dst, service="muni"):
    """The gateway still serves a lawful caller: OK and the inner handshake with dst."""
    with peer(net, src) as p:
        assert p.connect(urn(dst), service) == "OK"
        assert p.inner is not None


def case_plain_tcp_refused():
    """A client that speaks in clear is cut off in the handshake and never answered."""
    with Network([GW, A, B]) as net:
        gw = net[GW]
        before_b = inbound(net, B)
        attempts = [b"CONNECT urn:juki:cs:271004 muni\n",
                    b"GET / HTTP/1.1\r\nHost: juki\r\nConnection: close\r\n\r\n"]
        sources = []
        # From two addresses: a second refusal from the same one would be summarised.
        for i, data in enumerate(attempts):
            reply, local = plain_exchange(gw.address, data, source="127.0.0.%d" % (11 + i))
            # The gateway says nothing in clear: no OK, no DENY, no HTTP.
            for word in (b"OK", b"DENY", b"HTTP"):
                assert word not in reply, reply
            sources.append(local)
        wait_until("two not-tls alerts", lambda: gw.alert_counts().get("not-tls") == 2)
        records = recent(net, GW, "not-tls")
        assert [r["addr"] for r in records] == sources, (records, sources)
        assert all(r["peer"] is None and "caller handshake: not-tls" in r["detail"]
                   for r in records), records
        assert "http request" in records[1]["detail"], records[1]
        # Logged as alerts too.
        log = gw.log_text()
        for s in sources:
            assert "alert: not-tls peer=- addr=%s" % s in log
        c = counters(net)
        assert c["accepted"] == 2 and c["tunnels"] == 0 and c["active"] == 0, c
        assert gw.alert_counts() == {"not-tls": 2}
        assert inbound(net, B) == before_b
        # Nothing left behind: a lawful caller is served as before.
        tunnel_works(net, A, B)
        assert counters(net)["tunnels"] == 1


def case_foreign_ca_refused():
    """A certificate from another CA, even one named like ours, fails the handshake."""
    with Network([GW, A, B]) as net:
        gw = net[GW]
        before_b = inbound(net, B)
        topo = os.path.join(net.dir, "topology.yaml")
        lookalike = os.path.join(net.dir, "pki-lookalike")  # the same CA name, another key
        run_ctl("pki", "init", "--out", lookalike, topo)
        other_topo = os.path.join(net.dir, "other.yaml")
        with open(other_topo, "w") as f:
            f.write("ca: another CA\nnodes:\n  - urn:juki:cs:131016\n")
        other = os.path.join(net.dir, "pki-other")
        run_ctl("pki", "init", "--out", other, other_topo)
        sources = []
        for d in (lookalike, other):
            p = Peer(gw.address, os.path.join(d, "cs-131016.crt"),
                     os.path.join(d, "cs-131016.key"), net.ca())
            p.refused_in_handshake("CONNECT urn:juki:cs:271004 muni")
            sources.append(p.local)
        wait_until("two unknown-certificate alerts",
                   lambda: gw.alert_counts().get("unknown-certificate") == 2)
        records = recent(net, GW, "unknown-certificate")
        assert [r["addr"] for r in records] == sources, (records, sources)
        assert all("unknown-ca" in r["detail"] for r in records), records
        c = counters(net)
        assert c["tunnels"] == 0 and c["active"] == 0, c
        assert inbound(net, B) == before_b
        tunnel_works(net, A, B)


def case_revoked_certificate():
    """Revoke A's certificate, SIGHUP the gateway: A is refused, C still delivers."""
    s = Synth(seed=21)
    with Network([GW, A, B, C, "pref:13", "pref:27", "jlis:0"]) as net:
        gw = net[GW]
        # Two residents of B: one moves to A, one to C.
        p1, p2 = s.person("271004"), s.person("271004")
        net[B].ctl("resident", "add", "--file", "-", input=json.dumps(p1) + "\n" +
                   json.dumps(p2))
        # Before revocation A is served.
        tunnel_works(net, A, B)

        out = run_ctl("pki", "revoke", net.pki, "cs-131016")
        assert out["revoked"] == "cs-131016"
        gw.signal(signal.SIGHUP)
        wait_until("the gateway reloaded", lambda: "juki-fwgated: reloaded" in gw.log_text())
        assert gw.running() and gw.status()["ready"]
        assert "reload failed" not in gw.log_text() and "reload refused" not in gw.log_text()

        # A peer holding A's certificate is refused in the handshake.
        p = peer(net, A)
        p.refused_in_handshake("CONNECT urn:juki:cs:271004 muni")
        rec = wait_until("a revoked-certificate alert",
                         lambda: recent(net, GW, "revoked-certificate"))
        assert rec[0]["addr"] == p.local and "revoked" in rec[0]["detail"], rec

        # The real A cannot deliver its 転入通知... (its clerk's terminal has not been given
        # the new CRL: only the gateway has, so the clerk can still record the move-in)
        net[A].clerk().use_crl = False
        m1 = s.moved(p1, "131016")
        n1 = net[A].ctl("movein", "--file", "-", input=json.dumps(m1))["notices"][0]
        # ... while C, whose certificate stands, still can.
        m2 = s.moved(p2, "131024")
        net[C].ctl("movein", "--file", "-", input=json.dumps(m2))
        wait_until("C's notice accepted by B", lambda: net[C].ctl("movein", "list")
                   ["moveins"][0]["status"] == "accepted")
        assert net[B].ctl("resident", "show", p2["code"])["status"] == "removed"
        # B's 転出確定通知 reaches its prefecture through the same gateway.
        wait_until("B's confirmation accepted", lambda: net[B].ctl(
            "resident", "show", p2["code"])["moveouts"][0]["confirm_status"] == "accepted")

        def a_failing():
            links = [lk for lk in net[A].status()["outbound"]["links"]
                     if lk["dest"] == urn(B)]
            return links and links[0]["failures"] >= 2 and links[0]
        link = wait_until("A's link to B failing", a_failing)
        assert link["state"] != "up" and link["last_error"], link
        st_a = net[A].status()["outbound"]
        # The notice, and A's record of the move-in for its prefecture.
        assert st_a["queued"] == 2 and st_a["acked"] == 0, st_a
        row = net[A].ctl("movein", "list")["moveins"][0]
        assert row["notice_id"] == n1["notice_id"] and row["status"] == "queued", row
        # B holds p1 untouched, and the gateway alerted on every attempt of A.
        r1 = net[B].ctl("resident", "show", p1["code"])
        assert r1["status"] == "resident" and r1["version"] == 1, r1
        assert gw.alert_counts()["revoked-certificate"] >= 3
        assert gw.alert_counts().get("unknown-certificate") is None
        # Not one tunnel from A since the revocation.
        after = gw.log_text().split("juki-fwgated: reloaded")[-1]
        assert "tunnel urn:juki:cs:131016 ->" not in after


def case_revoked_while_connected():
    """A certificate revoked while its node is connected: the reload that brings the CRL
    ends what is open — at the receiver its channel, at the gateway its tunnel, at the
    sender its link to a revoked receiver — and every new attempt is refused in the
    handshake."""
    s = Synth(seed=22)
    # (who reloads, whose certificate is revoked, the alert's peer, what its detail says)
    for first, revoked, peer_urn, says in (
            ("pref:13", "cs-131016", urn(A), "open channel ended"),
            (GW, "cs-131016", urn(A), "tunnel to urn:juki:pref:13 ended"),
            (A, "pref-13", urn("pref:13"), "open link over honnin ended")):
        with Network([GW, A, "pref:13"]) as net:
            pref = net["pref:13"]
            net[A].ctl("resident", "add", "--file", "-", input=json.dumps(s.person("131016")))
            wait_until("the record at pref", lambda: pref.status()["records"]["current"] == 1)
            assert pref.status()["inbound"]["channels"] >= 1 and counters(net)["active"] >= 1
            run_ctl("pki", "revoke", net.pki, revoked)
            run_ctl("pki", "crl", net.pki)
            net[first].signal(signal.SIGHUP)
            wait_until("the channel and the tunnel ended", lambda: (
                pref.status()["inbound"]["channels"], counters(net)["active"]) == (0, 0))
            rec = recent(net, first, "revoked-certificate")
            assert rec and rec[0]["peer"] == peer_urn and "revoked" in rec[0]["detail"] and \
                says in rec[0]["detail"], (first, rec)
            # The next record stays at A: the reloaded side refuses every new attempt.
            net[A].clerk().use_crl = False
            net[A].ctl("resident", "add", "--file", "-", input=json.dumps(s.person("131016")))
            wait_until("refused again",
                       lambda: len(recent(net, first, "revoked-certificate")) >= 2)
            assert pref.status()["records"]["current"] == 1


def case_policy_denied():
    """Flows the policy does not allow: DENY policy with the reason; nothing reaches the node."""
    with Network([GW, A, B, "pref:13", "pref:27", "jlis:0"]) as net:
        gw = net[GW]
        attempts = [
            (A, "urn:juki:pref:13", "muni", "no rule allows cs -> pref over muni"),
            (A, "urn:juki:cs:271004", "honnin", "no rule allows cs -> cs over honnin"),
            (A, "urn:juki:pref:27", "honnin",
             "cs:131016 and pref:27 are not in the same prefecture"),
            ("pref:13", "urn:juki:cs:131016", "muni", "no rule allows pref -> cs over muni"),
        ]
        dests = [A, B, "pref:13", "pref:27"]
        before = {d: inbound(net, d) for d in dests}
        denied0 = counters(net)["denied"]
        # Each from an address of its own: repeated refusals from one are summarised.
        for i, (src, dst, svc, reason) in enumerate(attempts):
            with peer(net, src, source="127.0.0.%d" % (21 + i)) as p:
                answer = p.connect(dst, svc)
                assert answer == "DENY policy " + reason, answer
                assert p.outer_closed()
        c = counters(net)
        assert c["denied"] - denied0 == len(attempts), c
        assert c["tunnels"] == 0 and c["active"] == 0, c
        assert gw.alert_counts() == {"policy-denied": len(attempts)}
        records = recent(net, GW, "policy-denied")
        assert [(r["peer"], r["detail"]) for r in records] == [
            (urn(src), "deny policy: " + reason) for src, _, _, reason in attempts]
        log = gw.log_text()
        for src, _, _, reason in attempts:
            assert "alert: policy-denied peer=%s" % urn(src) in log and reason in log
        for d in dests:
            assert inbound(net, d) == before[d], d
        # The same caller on a flow the policy allows is served.
        tunnel_works(net, A, "pref:13", "honnin")
        assert counters(net)["denied"] - denied0 == len(attempts)


PERMISSIVE = """version: 1
rules:
  - { service: muni,   from: cs, to: cs }
  # Too wide on purpose: any prefecture.
  - { service: honnin, from: cs, to: pref }
"""


def case_receiver_enforces_policy():
    """A gateway with a too permissive policy: the prefecture refuses the flow itself."""
    def configure(net):
        path = os.path.join(net.dir, "permissive.yaml")
        with open(path, "w") as f:
            f.write(PERMISSIVE)
        net["fwgate:west"].policy = path

    with Network(["fwgate:east", "fwgate:west", A, "pref:27"], configure=configure) as net:
        west, pref = net["fwgate:west"], net["pref:27"]
        in0 = pref.status()["inbound"]
        reason = "cs:131016 and pref:27 are not in the same prefecture"
        with peer(net, A, gateway="fwgate:west") as p:
            answer = p.connect("urn:juki:pref:27", "honnin")
            assert answer == "DENY refused urn:juki:pref:27 refused: policy " + reason, answer
            assert p.outer_closed()
        # The prefecture raised its own alert, naming the caller the gateway announced.
        rec = wait_until("pref:27's alert", lambda: recent(net, "pref:27", "policy-denied"))
        assert len(rec) == 1 and rec[0]["peer"] == urn(A) and rec[0]["detail"] == reason, rec
        assert pref.alert_counts() == {"policy-denied": 1}
        assert pref.status()["inbound"] == in0  # no channel, nothing received
        assert pref.ctl("confirmations")["total"] == 0
        c = west.status()["counters"]
        assert c["denied"] == 1 and c["tunnels"] == 0 and c["active"] == 0, c
        assert west.alert_counts() == {"destination-refused": 1}
        # The strict gateway refuses the same request itself: the prefecture hears nothing.
        with peer(net, A, gateway="fwgate:east") as p:
            assert p.connect("urn:juki:pref:27", "honnin") == "DENY policy " + reason
        assert pref.alert_counts() == {"policy-denied": 1}

        # A policy that lets muni reach a prefecture cannot even be loaded (第3-3(3)),
        # which is why the permissive rule above is a cross-prefecture honnin one.
        bad = os.path.join(net.dir, "muni-to-pref.yaml")
        with open(bad, "w") as f:
            f.write(PERMISSIVE + "  - { service: muni, from: cs, to: pref }\n")
        conf = os.path.join(net.dir, "west-bad.yaml")
        with open(west.config) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace(west.policy, bad))
        p = subprocess.run([os.path.join(BUILD, BINARIES["fwgate"]), "-n", "-f", conf],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert "muni must not reach pref" in p.stderr and "第3-3(3)" in p.stderr, p.stderr


# The gateway of the next cases answers the CONNECT line within 1 s.
def short_line_timeout(net):
    net[GW].limits["line_timeout"] = "1s"


MALFORMED = [
    # (what is sent, the text after "DENY malformed ")
    (b"GET urn:juki:cs:271004 muni\n", "CONNECT line: expected <verb> <urn> <service>"),
    (b"connect urn:juki:cs:271004 muni\n", "CONNECT line: expected <verb> <urn> <service>"),
    (b"CONNECT urn:juki:cs:271004\n", "CONNECT line: expected <verb> <urn> <service>"),
    (b"CONNECT  urn:juki:cs:271004 muni\n", "CONNECT line: expected <verb> <urn> <service>"),
    (b"\n", "CONNECT line: expected <verb> <urn> <service>"),
    (b"CONNECT urn:juki:cs:271004 telnet\n", "CONNECT line: unknown service"),
    (b"CONNECT urn:juki:cs:271004 \n", "CONNECT line: unknown service"),
    (b"CONNECT urn:juki:cs:271004 muni extra\n", "CONNECT line: unknown service"),
    (b"CONNECT urn:juki:cs:271005 muni\n", "CONNECT line: not a node identity"),
    (b"CONNECT cs:271004 muni\n", "CONNECT line: not a node identity"),
    (b"CONNECT urn:juki:cs:271004:x muni\n", "CONNECT line: not a node identity"),
    (b"CONNECT urn:juki:op:cs:271004:alice muni\n", "CONNECT line: not a node identity"),
    # A line of exactly 256 bytes is read and judged by its content...
    (b"CONNECT urn:juki:cs:271004 muni" + b"x" * 225 + b"\n", "CONNECT line: unknown service"),
    # ... one byte more is too long, with or without its newline.
    (b"CONNECT urn:juki:cs:271004 muni" + b"x" * 226 + b"\n",
     "CONNECT line: longer than 256 bytes"),
    (b"CONNECT urn:juki:cs:271004 muni" + b" " * 300, "CONNECT line: longer than 256 bytes"),
    (b"CONNECT urn:juki:cs:271004\x00 muni\n", "CONNECT line: a NUL or control byte"),
    (b"CONNECT urn:juki:cs:271004\x1b[2J muni\n", "CONNECT line: a NUL or control byte"),
    (b"CONNECT urn:juki:cs:271004 muni\x7f\n", "CONNECT line: a NUL or control byte"),
]


def case_malformed_requests():
    """Every malformed CONNECT line: DENY malformed, alert, the connection closed."""
    with Network([GW, A, B], configure=short_line_timeout) as net:
        gw = net[GW]
        before_b = inbound(net, B)
        assert len(b"CONNECT urn:juki:cs:271004 muni" + b"x" * 225) == 256
        for data, text in MALFORMED:
            with peer(net, A) as p:
                p.open_outer()
                answer = p.request(data, newline=False)
                assert answer == "DENY malformed " + text, (data, answer)
                assert p.outer_closed(), data
        n = len(MALFORMED)
        c = counters(net)
        assert c["denied"] == n and c["tunnels"] == 0 and c["active"] == 0, c
        assert gw.alert_counts() == {"malformed-request": n}
        records = recent(net, GW, "malformed-request")
        assert [r["detail"] for r in records] == ["deny malformed: " + t for _, t in MALFORMED]
        assert all(r["peer"] == urn(A) for r in records)

        # A caller that says nothing gets DENY timeout once the line timeout passes.
        with peer(net, A) as p:
            p.open_outer()
            start = time.monotonic()
            answer = p.readline()
            waited = time.monotonic() - start
            assert answer == "DENY timeout CONNECT line: no request within 1000 ms", answer
            assert 0.9 <= waited < 5, waited
            assert p.outer_closed()
        # A line that never ends is cut off the same way.
        with peer(net, A) as p:
            p.open_outer()
            answer = p.request(b"CONNECT urn:juki:cs:271004 mu", newline=False)
            assert answer == "DENY timeout CONNECT line: no request within 1000 ms", answer
        # Both ran out of the time before trust: slow callers, not malformed requests.
        assert gw.alert_counts() == {"malformed-request": n, "slow-caller": 2}
        assert counters(net)["denied"] == n + 2
        assert counters(net)["slow_callers"] == 2
        assert inbound(net, B) == before_b
        tunnel_works(net, A, B)


def case_unknown_node():
    """A destination the policy would allow but the directory does not know."""
    sapporo = "01100" + lgcode_check_digit("01100")
    with Network([GW, A, B]) as net:
        gw = net[GW]
        with peer(net, A) as p:
            answer = p.connect("urn:juki:cs:" + sapporo, "muni")
            assert answer == "DENY unknown-node urn:juki:cs:%s is not in the directory" % \
                sapporo, answer
            assert p.outer_closed()
        assert gw.alert_counts() == {"unknown-node": 1}
        rec = recent(net, GW, "unknown-node")[0]
        assert rec["peer"] == urn(A) and sapporo in rec["detail"], rec
        c = counters(net)
        assert c["denied"] == 1 and c["tunnels"] == 0 and c["active"] == 0, c
        tunnel_works(net, A, B)


def case_flood():
    """More connections from one address than limits.per_address: the extra ones are cut."""
    def configure(net):
        net[GW].limits["per_address"] = 4

    with Network([GW, A, B], configure=configure) as net:
        gw = net[GW]
        attacker = "127.0.0.2"
        held = []
        try:
            for _ in range(4):
                p = peer(net, A, source=attacker)
                p.open_outer()
                held.append(p)
            wait_until("four callers from the attacker",
                       lambda: counters(net)["accepted"] == 4)
            cut = []
            for _ in range(2):
                p = peer(net, A, source=attacker)
                p.refused_in_handshake("CONNECT urn:juki:cs:271004 muni")
                cut.append(p.local)
            assert gw.alert_counts() == {"flood": 2}
            records = recent(net, GW, "flood")
            assert [r["addr"] for r in records] == cut, (records, cut)
            assert all(r["detail"] == "more than 4 connections from %s" % attacker
                       for r in records), records
            assert counters(net)["denied"] == 2
            # Another address is not held back by the flood.
            tunnel_works(net, A, B)
            # The held callers are still served.
            assert held[0].request("CONNECT urn:juki:cs:271004 muni") == "OK"
        finally:
            for p in held:
                p.close()

        # Once they are gone, the address is welcome again: no count is left behind.
        def served():
            with peer(net, A, source=attacker) as p:
                return p.connect(urn(B), "muni") == "OK"
        wait_until("the attacker's address served again", served)
        assert gw.alert_counts() == {"flood": 2}
        assert counters(net)["denied"] == 2


if __name__ == "__main__":
    run_cases([case_plain_tcp_refused, case_foreign_ca_refused, case_revoked_certificate,
               case_revoked_while_connected,
               case_policy_denied, case_receiver_enforces_policy, case_malformed_requests,
               case_unknown_node, case_flood])
