"""juki-ctl doctor (第4-9(1); docs/operations.md "juki-ctl doctor"): clean on a healthy node
(exit 0), and each fault it is there to find with its severity and exit status: a
certificate or CRL about to expire (warning, 1), a corrupted store (error, 2), a key or a
store folder others can reach (error, 2), a destination the gateway cannot reach (error, 2),
clock skew against a watcher, a configuration the daemon refuses; --json and text."""

import json
import os
import re
import signal
import subprocess

from jukitest import CTL, Network, add_residents, run_cases, run_ctl, wait_until
from jukitest.synth import Synth

GW, CS, PREF = "fwgate:east", "cs:131016", "pref:13"


def doctor(*args, socket=None):
    """(exit status, {"worst", "exit", "checks"}) of juki-ctl doctor --json."""
    argv = [CTL] + (["-s", socket] if socket else []) + ["doctor", "--json"] + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    out = json.loads(p.stdout)
    assert out["exit"] == p.returncode, (out, p.returncode)
    return p.returncode, out


def rows(out, check, severity=None):
    return [r for r in out["checks"] if r["check"] == check
            and (severity is None or r["severity"] == severity)]


def not_ok(out):
    return [r for r in out["checks"] if r["severity"] not in ("ok", "unknown")]


def copy_config(d, suffix, **replace):
    """A copy of d's configuration with top-level keys replaced (key: YAML text)."""
    with open(d.config) as f:
        text = f.read()
    for k, v in replace.items():
        text, n = re.subn(r"^%s:.*$" % k, "%s: %s" % (k, v), text, flags=re.M)
        if n == 0:
            text += "%s: %s\n" % (k, v)
    path = d.config + suffix
    with open(path, "w") as f:
        f.write(text)
    return path


def case_healthy_node():
    """A healthy CS after traffic: every check ok (the skew measured by its watcher), exit 0,
    the gateway and the prefecture reached with real handshakes, and nobody alerted by them."""
    net = shared_net()
    cs = net[CS]
    s = Synth(seed=11)
    add_residents(cs, [s.person("131016") for _ in range(3)])
    wait_until("3 records at the pref", lambda: net[PREF].status()["records"]["current"] == 3)
    wait_until("skew measured", lambda: any(
        isinstance(w.get("skew_ms"), int) for w in cs.status()["monitor"]["watchers"]))
    before = {d: net[d].alerts()["total"] for d in (GW, PREF)}
    code, out = doctor(socket=cs.socket)
    assert code == 0 and out["worst"] == "ok", out
    assert not not_ok(out), out
    kinds = {r["check"] for r in out["checks"]}
    assert {"daemon", "config", "certificate", "crl", "clock", "disk", "store", "mode", "queue",
            "reach"} <= kinds, kinds
    assert rows(out, "clock", "ok") and "skew" in rows(out, "clock")[0]["detail"], out
    assert len(rows(out, "store", "ok")) == 2, out  # the store and the operation history
    reach = {(r["subject"], r["detail"].split(":")[0]): r for r in rows(out, "reach")}
    assert reach[(net[GW].address, "gateway")]["severity"] == "ok", reach
    for svc in ("honnin", "monitor"):
        assert "TLS 1.3 end to end" in reach[("urn:juki:pref:13", svc)]["detail"], reach
    # The same with the configuration given instead of the socket; and in words.
    code, out = doctor("--config", cs.config)
    assert code == 0, out
    p = subprocess.run([CTL, "doctor", "--config", cs.config], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and "doctor: all checks passed" in p.stdout, p.stdout
    assert re.search(r"^ok +reach +urn:juki:pref:13: honnin: TLS 1.3", p.stdout, re.M), p.stdout
    # The gateway's own: its configuration, certificates and key.
    code, out = doctor("--config", net[GW].config)
    assert code == 0 and rows(out, "config", "ok"), out
    # The handshakes of doctor raised nothing about the CS at the gateway or the prefecture
    # (the prefecture's own honnin to a jlis absent from this network is refused, apart).
    for d in (GW, PREF):
        new = [a for a in net[d].alerts()["recent"] if a["seq"] > before[d]]
        assert not [a for a in new if a.get("peer") == cs.urn], new


def case_expiring_crl_and_certificate():
    """A CRL due within 7 days, then a node certificate that expires in 10 days: warnings,
    exit 1; an expired CRL: error, exit 2."""
    net = shared_net()
    cs = net[CS]
    run_ctl("pki", "crl", "--days", "3", net.pki)
    code, out = doctor(socket=cs.socket)
    assert code == 1 and out["worst"] == "warning", out
    [crl] = rows(out, "crl")
    assert crl["severity"] == "warning" and "next update" in crl["detail"], crl
    run_ctl("pki", "crl", "--days", "30", net.pki)
    assert doctor(socket=cs.socket)[0] == 0
    # The node's certificate again, for 10 days (the daemon keeps the one it loaded).
    # Saved and put back, the CRL and index too: the revocation must not outlive the case.
    files = list(net.cert(CS)) + [os.path.join(net.pki, f) for f in ("crl.pem", "index.json")]
    saved = {p: open(p, "rb").read() for p in files}
    try:
        run_ctl("pki", "revoke", net.pki, cs.urn)
        run_ctl("pki", "issue", "--days", "10", net.pki, cs.urn)
        code, out = doctor(socket=cs.socket)
        assert code == 1, out
        [cert] = [r for r in rows(out, "certificate") if r["subject"] == net.cert(CS)[0]]
        assert cert["severity"] == "warning" and "expires at" in cert["detail"], cert
        assert "in 9 days" in cert["detail"] or "in 10 days" in cert["detail"], cert
    finally:
        for p, data in saved.items():
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, 0o600 if p.endswith(".key") else 0o644)


def case_corrupted_store():
    """A consistent copy of the store with bytes overwritten: quick_check fails, error,
    exit 2; the live store is untouched and still ok."""
    net = shared_net()
    cs = net[CS]
    bdir = os.path.join(net.dir, "bk")
    os.mkdir(bdir, 0o700)
    cs.admin("backup", bdir)
    [copy] = [os.path.join(bdir, f) for f in os.listdir(bdir) if f.endswith(".db")] or [
        os.path.join(root, f) for root, _, fs in os.walk(bdir) for f in fs if f.endswith(".db")]
    size = os.path.getsize(copy)
    assert size >= 4 * 4096, size
    with open(copy, "r+b") as f:
        f.seek(2 * 4096)
        f.write(b"\xa5" * 4096)
    path = copy_config(cs, ".corrupt", store=copy,
                       audit="{path: %s.audit}" % cs.store)
    code, out = doctor("--config", path)
    assert code == 2 and out["worst"] == "error", out
    bad = [r for r in rows(out, "store", "error") if r["subject"] == copy]
    assert bad and "quick_check" in bad[0]["detail"], out
    assert [r for r in rows(out, "store", "ok") if r["subject"] == cs.store + ".audit"], out
    code, out = doctor(socket=cs.socket)
    assert code == 0, out


def case_wrong_modes():
    """The node's key readable by the group, then the store's folder writable by others:
    each an error naming the mode, exit 2."""
    net = shared_net()
    cs = net[CS]
    key = net.cert(CS)[1]
    os.chmod(key, 0o640)
    try:
        code, out = doctor(socket=cs.socket)
        assert code == 2, out
        [r] = [r for r in rows(out, "mode", "error") if r["subject"] == key]
        assert "0640" in r["detail"], r
        # -n of the daemon refuses it too.
        assert rows(out, "config", "error"), out
    finally:
        os.chmod(key, 0o600)
    os.chmod(net.dir, 0o777)
    try:
        code, out = doctor(socket=cs.socket)
        assert code == 2, out
        r = [r for r in rows(out, "mode", "error") if r["subject"] == cs.store]
        assert r and "writable by others" in r[0]["detail"], out
    finally:
        os.chmod(net.dir, 0o700)
    assert doctor(socket=cs.socket)[0] == 0


def case_unreachable_destination():
    """The prefecture stopped with messages queued for it: the gateway is reached, the
    prefecture not (the gateway's DENY), error, exit 2; started again, clean."""
    net = shared_net()
    cs, pref = net[CS], net[PREF]
    pref.stop()
    try:
        add_residents(cs, [Synth(seed=12).person("131016")])
        wait_until("queued", lambda: cs.ctl("outbox")["queues"])
        code, out = doctor(socket=cs.socket)
        assert code == 2, out
        reach = {(r["subject"], r["detail"].split(":")[0]): r for r in rows(out, "reach")}
        assert reach[(net[GW].address, "gateway")]["severity"] == "ok", reach
        r = reach[("urn:juki:pref:13", "honnin")]
        assert r["severity"] == "error" and "DENY unreachable" in r["detail"], r
        assert rows(out, "queue", "ok"), out  # queued, but not past the deadline
    finally:
        pref.start()
    wait_until("delivered", lambda: not cs.ctl("outbox")["queues"])
    assert doctor(socket=cs.socket)[0] == 0


def case_clock_skew():
    """The CS's clock two minutes ahead (clock_offset): its watcher measures the skew, and
    doctor says error, exit 2."""
    net = shared_net()
    cs = net[CS]
    cs.extra["clock_offset"] = "2m"
    cs.write_config()
    cs.signal(signal.SIGHUP)
    try:
        def skewed():
            w = cs.status()["monitor"]["watchers"]
            skewed.last = w
            return any(abs(x.get("skew_ms") or 0) > 60000 for x in w)
        try:
            wait_until("skew measured", skewed, timeout=20)
        except AssertionError:
            raise AssertionError("watchers: %s" % skewed.last)
        code, out = doctor(socket=cs.socket)
        assert code == 2, out
        [r] = rows(out, "clock", "error")
        assert r["subject"] == "urn:juki:pref:13" and "skew" in r["detail"], r
    finally:
        del cs.extra["clock_offset"]
        cs.write_config()
        cs.signal(signal.SIGHUP)
    wait_until("skew back", lambda: all(
        abs(w.get("skew_ms") or 0) < 1000 for w in cs.status()["monitor"]["watchers"]),
        timeout=20)


def case_bad_configuration():
    """A configuration the daemon refuses: doctor says why (the daemon's -n), exit 2; no
    socket and no --config: a usage error."""
    net = shared_net()
    cs = net[CS]
    path = copy_config(cs, ".typo", delivery_typo="1")
    code, out = doctor("--config", path)
    assert code == 2, out
    [r] = rows(out, "config", "error")
    assert "unknown key" in r["detail"], r
    p = subprocess.run([CTL, "doctor"], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if k != "JUKI_CTL_SOCKET"})
    assert p.returncode == 2 and "--config" in p.stderr, p


_shared = {}


def shared_net():
    """The network every case uses (started by the first): a gateway, a CS and its
    prefecture, heartbeats every second."""
    if "net" not in _shared:
        _shared["cm"] = Network([GW, CS, PREF], monitor=True)
        _shared["net"] = _shared["cm"].__enter__()
    return _shared["net"]


if __name__ == "__main__":
    try:
        run_cases([case_healthy_node, case_expiring_crl_and_certificate, case_corrupted_store,
                   case_wrong_modes, case_unreachable_destination, case_clock_skew,
                   case_bad_configuration])
    finally:
        if "cm" in _shared:
            _shared["cm"].__exit__(None, None, None)
