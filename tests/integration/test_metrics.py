"""Metrics (docs/operations.md, "Metrics"): every daemon kind, the gateway too, serves its
counters in the Prometheus text format on metrics.listen; the values are those of `status`;
promtool accepts the output, the scrape configuration and the alert rules; anything but
GET /metrics is refused; a non-loopback address is refused at the configuration check."""

import os
import re
import socket
import subprocess
import time
import urllib.request

from jukitest import SOURCE, Network, add_residents, free_port, run_cases, wait_until
from jukitest.synth import Synth

GW, CS, PREF, JLIS, AUTH = "fwgate:east", "cs:131016", "pref:13", "jlis:0", "authlink:0"
DAEMONS = {GW: "juki-fwgated", CS: "juki-csd", PREF: "juki-prefd", JLIS: "juki-jlisd",
           AUTH: "juki-authlinkd"}
PROM = os.path.join(SOURCE, "conf", "prometheus")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

ports = {}


def configure(net):
    for d in net.daemons.values():
        ports[d.name] = free_port()
        d.extra["metrics"] = "{listen: '127.0.0.1:%d', timeout: 1s}" % ports[d.name]


def scrape(name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ports[name], timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
        return r.read().decode()


def parse(text):
    """{(name, frozenset of labels): value}, and every name has HELP and TYPE before it."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, line
        assert m.group(1) in typed, "no TYPE before %s" % line
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def promtool_metrics(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, (p.stdout, p.stderr, text)


def http(name, raw):
    """Send raw bytes; the status code of the answer (0: closed without one)."""
    with socket.create_connection(("127.0.0.1", ports[name]), timeout=10) as s:
        s.sendall(raw)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else 0


def case_every_daemon_after_traffic():
    """After residents went CS -> pref -> jlis, each of the five daemons answers with its
    build info and counters equal to its status; the pref's queue to a stopped jlis is
    the same in metrics as in `outbox`; promtool check metrics accepts every answer."""
    net = shared_net()
    s = Synth(seed=5)
    add_residents(net[CS], [s.person("131016") for _ in range(20)])
    wait_until("20 records at jlis", lambda: net[JLIS].status()["records"]["current"] == 20)
    for name, daemon in DAEMONS.items():
        text = scrape(name)
        promtool_metrics(text)
        m = parse(text)
        assert value(m, "juki_build_info", daemon=daemon, version="0.1.0") == 1, name
        assert value(m, "juki_peak_resident_memory_bytes") > 0, name
        assert value(m, "juki_certificate_expiry_timestamp_seconds", file="node") > time.time()
        st = net[name].status()
        assert value(m, "juki_alerts_total", code="none") == 0 or any(
            k[0] == "juki_alerts_total" for k in m), name
        for code, n in st["alerts"]["counts"].items():
            assert value(m, "juki_alerts_total", code=code) >= n, (name, code)
        if name == GW:
            c = st["counters"]
            assert value(m, "juki_gateway_connects_allowed_total") == c["tunnels"] > 0, c
            assert value(m, "juki_gateway_connects_denied_total") == c["denied"], c
            assert (value(m, "juki_gateway_bytes_total", direction="up") +
                    value(m, "juki_gateway_bytes_total", direction="down")
                    >= c["bytes_relayed"] > 0), c
            continue
        assert value(m, "juki_store_bytes") > 0 and value(m, "juki_store_free_bytes") > 0
        ib, ob = st["inbound"], st["outbound"]
        assert value(m, "juki_messages_received_total", type="all") >= ib["received"]
        assert value(m, "juki_messages_sent_total") >= ob["sent"]
        for t, c in ib["types"].items():
            assert value(m, "juki_messages_accepted_total", type=t) >= c["accepted"], (name, t)
    # Reconciliation: the days by status, as `reconcile` lists them.
    days = net[CS].ctl("reconcile")["days"]
    m = parse(scrape(CS))
    for status in {d["status"] for d in days}:
        assert value(m, "juki_reconcile_days", status=status) == len(
            [d for d in days if d["status"] == status]), (days, m)
    assert days, days
    # The pref received honnin batches from the CS and committed them.
    m = parse(scrape(PREF))
    assert value(m, "juki_messages_accepted_total", type="honnin.batch") >= 1, m
    assert value(m, "juki_store_commits_total") >= 1
    assert value(m, "juki_outbox_messages") == 0
    # jlis stopped: the pref's queue to it, as outbox says.
    net[JLIS].stop()
    try:
        add_residents(net[CS], [s.person("131016") for _ in range(3)])

        def queued():
            q = [q for q in net[PREF].ctl("outbox")["queues"]
                 if q["dest"] == "urn:juki:jlis:0" and q["service"] == "honnin"]
            return q[0] if q else None
        wait_until("a queue at the pref", queued)
        q = queued()
        m = parse(scrape(PREF))
        assert value(m, "juki_outbox_messages", dest="urn:juki:jlis:0",
                     service="honnin") == q["count"], (q, m)
        assert value(m, "juki_outbox_oldest_age_seconds", dest="urn:juki:jlis:0",
                     service="honnin") >= 0
    finally:
        net[JLIS].start()
    wait_until("the queue delivered", lambda: not net[PREF].ctl("outbox")["queues"])


def case_refused_handshake_counted():
    """A caller without a certificate at the gateway: a handshake failure by its code, and
    the alert count, both as status says."""
    net = shared_net()
    with socket.create_connection(("127.0.0.1", net[GW].port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            s.recv(100)
        except OSError:
            pass
    wait_until("not-tls alert", lambda: net[GW].alert_counts().get("not-tls", 0) >= 1)
    n = net[GW].alert_counts()["not-tls"]
    m = parse(scrape(GW))
    assert value(m, "juki_alerts_total", code="not-tls") == n, m
    assert value(m, "juki_handshake_failures_total", code="not-tls") == n, m


def case_bad_requests_refused():
    """Only GET /metrics: other paths 404, other methods 405, a malformed request 400,
    headers past the bound refused, and a silent caller dropped by the deadline."""
    net = shared_net()
    for name in (GW, CS):
        assert http(name, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 404
        assert http(name, b"GET /metrics/../x HTTP/1.1\r\nHost: x\r\n\r\n") == 404
        assert http(name, b"GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n") == 404
        for method in (b"POST", b"PUT", b"DELETE", b"HEAD"):
            assert http(name, method + b" /metrics HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 0\r\n\r\n") == 405, method
        assert http(name, b"BREW /metrics HTTP/1.1\r\n\r\n") in (400, 405, 501, 0)
        assert http(name, b"\x16\x03\x01\x00\x05hello\r\n\r\n") in (400, 0)
        big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n"
        assert http(name, big) in (400, 413, 431, 0)
        # A caller that says nothing is closed within the 1 s deadline.
        with socket.create_connection(("127.0.0.1", ports[name]), timeout=10) as s:
            start = time.monotonic()
            s.sendall(b"GET /metr")
            got = s.recv(100)
            assert got == b"" or got.startswith(b"HTTP/1.1 408"), got
            assert 0.5 < time.monotonic() - start < 4, time.monotonic() - start
        # Still serving afterwards.
        assert "juki_build_info" in scrape(name)


def check_conf(d, metrics):
    """-n of daemon d with the given metrics section."""
    path = d.config + ".metrics"
    with open(d.config) as f:
        text = re.sub(r"^metrics:.*$", "", f.read(), flags=re.M)
    with open(path, "w") as f:
        f.write(text + "metrics: %s\n" % metrics)
    return subprocess.run([d.binary, "-n", "-f", path], capture_output=True, text=True,
                          timeout=30)


def case_non_loopback_refused():
    """metrics.listen elsewhere than loopback is refused by -n, unless allow_remote says so."""
    net = shared_net()
    for name in (GW, CS):
        d = net[name]
        for addr in ("0.0.0.0", "192.0.2.1", "[::]"):
            p = check_conf(d, "{listen: '%s:9100'}" % addr)
            assert p.returncode == 1 and "not a loopback address" in p.stderr, p
            assert "metrics.listen" in p.stderr, p.stderr
        for addr in ("127.0.0.2", "[::1]", "localhost"):
            p = check_conf(d, "{listen: '%s:9100'}" % addr)
            assert p.returncode == 0, p
        p = check_conf(d, "{listen: '0.0.0.0:9100', allow_remote: true}")
        assert p.returncode == 0, p


def case_reload_moves_the_port():
    """A reload with another metrics.listen serves there and no longer at the old port."""
    net = shared_net()
    d = net[CS]
    old = ports[CS]
    ports[CS] = free_port()
    d.extra["metrics"] = "{listen: '127.0.0.1:%d', timeout: 1s}" % ports[CS]
    d.write_config()
    d.signal(1)  # SIGHUP

    def moved():
        try:
            return "juki_build_info" in scrape(CS)
        except OSError:
            return False
    wait_until("metrics on the new port", moved)
    try:
        socket.create_connection(("127.0.0.1", old), timeout=2).close()
        raise AssertionError("old metrics port still open")
    except ConnectionRefusedError:
        pass


def case_prometheus_config_and_rules():
    """conf/prometheus: the scrape configuration and the alert rules are valid, and the
    rules fire in their unit tests (node down, queue old, alerts rising, certificate
    expiring, store nearly full)."""
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "juki-rules.yml"],
                 ["test", "rules", "juki-rules.test.yml"]):
        p = subprocess.run(["promtool"] + args, cwd=PROM, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, (args, p.stdout, p.stderr)


_shared = {}


def shared_net():
    """The network the cases share (started by the first): the five daemon kinds, each
    with metrics on a port of its own."""
    if "net" not in _shared:
        _shared["cm"] = Network([GW, CS, PREF, JLIS, AUTH], configure=configure)
        _shared["net"] = _shared["cm"].__enter__()
    return _shared["net"]


if __name__ == "__main__":
    try:
        run_cases([case_every_daemon_after_traffic, case_refused_handshake_counted,
                   case_bad_requests_refused, case_non_loopback_refused,
                   case_reload_moves_the_port, case_prometheus_config_and_rules])
    finally:
        if "cm" in _shared:
            _shared["cm"].__exit__(None, None, None)
