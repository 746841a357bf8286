"""Inventory and integrity (第4-7(1)イ, 第4-7(4)): signed manifests, the daemons' checks of
their binary, libraries and configuration at start and every heartbeat, and the inventory
at the national server.

One network for every case: a gateway, the national server, Tokyo and three of its
municipalities with heartbeats every second.  cs:131016 checks a manifest from the start;
cs:132012 runs a copy of the daemon's binary that a case alters; cs:131024 has no
manifest and its key on a PKCS#11 token.  Each case checks what an administrator would see: `juki-ctl integrity`,
`status`, the alerts at the node and on the national board, `juki-ctl inventory` at the
national server, and a daemon with integrity.enforce refusing to start, with the reason.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

from jukitest import CTL_FAILED, Network, run_cases, run_ctl, urn, wait_until

GW, JLIS, PREF = "fwgate:east", "jlis:0", "pref:13"
A, B, C = "cs:131016", "cs:131024", "cs:132012"

NET = None


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def manifest_of(name):
    return os.path.join(NET.dir, name.replace(":", "_") + ".manifest.json")


def integrity_keys(name, enforce=False):
    return "{manifest: %s, enforce: %s}" % (manifest_of(name), "true" if enforce else "false")


def configure(net):
    net[A].extra["integrity"] = "{manifest: %s}" % os.path.join(net.dir, "cs_131016.manifest.json")
    net[C].extra["integrity"] = "{manifest: %s}" % os.path.join(net.dir, "cs_132012.manifest.json")
    # cs:132012 runs a copy of the binary, which a case alters.
    bindir = os.path.join(net.dir, "bin")
    os.makedirs(bindir)
    copy = os.path.join(bindir, "juki-csd")
    shutil.copy2(net[C].binary, copy)
    net[C].binary = copy
    # cs:131024's key is on a PKCS#11 token (SoftHSM2): its manifest is signed there.
    net[B].key_on_token()


def entry(at, node):
    for n in NET[at].ctl("board")["nodes"]:
        if n["node"] == urn(node):
            return n
    return None


def beat_integrity(at, node):
    """The integrity member of node's last heartbeat on the board of at, or None."""
    e = entry(at, node)
    return ((e or {}).get("heartbeat") or {}).get("integrity")


def alerts(name, code="integrity-mismatch"):
    return [a for a in NET[name].alerts()["recent"] if a["code"] == code]


def forwarded(at, node, code="integrity-mismatch"):
    return [a for a in NET[at].ctl("board")["alerts"]
            if a["node"] == urn(node) and a["code"] == code]


def refused_start(d):
    """Start d, which must refuse: its exit status and its log since the start."""
    before = len(d.log_text())
    d.start(wait=False)
    rc = d.proc.wait(timeout=30)
    assert rc != 0, "%s started" % d.name
    return rc, d.log_text()[before:]


def case_missing_then_signed():
    """A manifest configured but not made yet is alerted; `manifest sign` makes it from
    what the daemon runs, and the check, its heartbeat at the prefecture and the national
    server, and `manifest verify` then agree."""
    d = NET[A]
    st = d.status()["integrity"]
    assert st["state"] == "mismatch" and not st["ok"], st
    assert st["mismatches"] == [manifest_of(A)], st
    assert any(manifest_of(A) + ": manifest missing" in a["detail"] for a in alerts(A))
    out = d.admin("manifest", "sign")
    assert out["manifest"] == manifest_of(A) and out["node"] == urn(A), out
    check = d.admin("integrity")
    assert check["state"] == "ok" and check["ok"] and check["mismatches"] == [], check
    files = {f["path"]: f for f in check["files"]}
    binary = [f for f in check["files"] if f["kind"] == "binary"]
    assert len(binary) == 1 and binary[0]["sha256"] == sha256(d.binary), binary
    assert files[os.path.realpath(d.config)]["kind"] == "config"
    assert files[os.path.realpath(NET.policy)]["kind"] == "config"
    assert any(os.path.basename(p).startswith("libc.so") for p in files), sorted(files)
    assert any(os.path.basename(p).startswith("libcrypto.so") for p in files)
    assert all(f["state"] == "ok" for f in check["files"]), check["files"]
    # the file itself, offline, against the network's CA and CRL, and the files on this host
    ver = run_ctl("manifest", "verify", "--ca", NET.ca(), "--crl",
                  os.path.join(NET.pki, "crl.pem"), "--node", urn(A), "--files",
                  manifest_of(A))
    assert ver["signature"] == "good" and ver["differs"] == [], ver
    assert ver["files"] == len(check["files"]), ver
    # its heartbeat at both watchers: ok, and the digests of the binary, config and manifest
    for at in (PREF, JLIS):
        wait_until("ok in %s's heartbeat at %s" % (A, at),
                   lambda: (beat_integrity(at, A) or {}).get("manifest") == sha256(manifest_of(A)),
                   timeout=15)
        hb = beat_integrity(at, A)
        assert hb["ok"] is True and hb["mismatches"] == [], hb
        assert hb["binary"] == sha256(d.binary) and hb["config"] == sha256(d.config), hb
        assert hb["version"] == d.status()["version"], hb
    # a node without a manifest reports its digests, nothing compared
    hb = beat_integrity(JLIS, B) or wait_until("B's heartbeat", lambda: beat_integrity(JLIS, B))
    assert hb["manifest"] is None and hb["ok"] is True and hb["binary"] == sha256(NET[B].binary)


def case_config_altered():
    """A changed configuration file is found at the next check: alerted once at the node
    (the path, not the contents) and forwarded to the national server as an intrusion;
    restored, the node is ok again."""
    d = NET[A]
    config = os.path.realpath(d.config)
    with open(d.config) as f:
        original = f.read()
    with open(d.config, "a") as f:
        f.write("# a line that was never signed\n")
    try:
        check = d.admin("integrity")
        assert check["state"] == "mismatch" and check["mismatches"] == [config], check
        found = [a for a in alerts(A) if a["detail"] == config + ": config digest differs "
                 "from the manifest"]
        assert len(found) == 1, alerts(A)
        assert "never signed" not in json.dumps(d.alerts())
        # checked again: not alerted again
        d.admin("integrity")
        assert len([a for a in alerts(A) if config in a["detail"]]) == 1
        wait_until("the alert on the national board",
                   lambda: any(config in a["detail"] for a in forwarded(JLIS, A)), timeout=10)
        fw = [a for a in forwarded(JLIS, A) if config in a["detail"]][0]
        assert fw["class"] == "intrusion", fw
        wait_until("the mismatch in the heartbeat at jlis",
                   lambda: (beat_integrity(JLIS, A) or {}).get("mismatches") == [config],
                   timeout=10)
        assert entry(JLIS, A)["state"] in ("degraded", "intrusion"), entry(JLIS, A)
    finally:
        with open(d.config, "w") as f:
            f.write(original)
    check = d.admin("integrity")
    assert check["state"] == "ok" and check["mismatches"] == [], check


def case_enforce_refuses():
    """With integrity.enforce the daemon starts only on a good manifest that everything
    matches; otherwise it refuses with the reason (a changed config, no manifest, a
    preloaded library).  A
    manifest that is unsigned, another node's or has one byte changed is refused by the
    running daemon's check, with the reason."""
    d = NET[A]
    # the administrator turns enforce on, signs again (the config changed), restarts
    d.extra["integrity"] = integrity_keys(A, enforce=True)
    d.write_config()
    d.admin("manifest", "sign")
    d.stop()
    d.start()
    st = d.status()["integrity"]
    assert st["enforce"] is True and st["state"] == "ok", st
    good_config = open(d.config).read()
    good = open(manifest_of(A)).read()
    config = os.path.realpath(d.config)

    def problems_with(text):
        with open(manifest_of(A), "w") as f:
            f.write(text)
        check = d.admin("integrity")
        assert check["state"] == "mismatch" and check["mismatches"] == [manifest_of(A)], check
        return check["problems"][0]

    m = json.loads(good)
    del m["signature"]
    assert problems_with(json.dumps(m)) == manifest_of(A) + ": manifest not signed"
    # another node's manifest (cs:131024 signs its own, on its token)
    other = os.path.join(NET.dir, "other.manifest.json")
    NET[B].admin("manifest", "sign", "--out", other, env={"SOFTHSM2_CONF": NET[B].token["conf"]})
    assert "the manifest is %s's, not this node's (%s)" % (urn(B), urn(A)) in \
        problems_with(open(other).read())
    # one byte of a digest changed
    m = json.loads(good)
    h = m["files"][0]["sha256"]
    m["files"][0]["sha256"] = ("0" if h[0] != "0" else "1") + h[1:]
    assert problems_with(json.dumps(m)).endswith(
        "manifest badly signed: the signature does not match")
    with open(manifest_of(A), "w") as f:
        f.write(good)
    assert d.admin("integrity")["state"] == "ok"
    d.stop()

    with open(d.config, "a") as f:
        f.write("# edited after signing\n")
    rc, log = refused_start(d)
    assert "cannot start: integrity.enforce: %s: config digest differs from the manifest" % \
        config in log, log
    with open(d.config, "w") as f:
        f.write(good_config)

    os.unlink(manifest_of(A))
    rc, log = refused_start(d)
    assert "integrity.enforce: %s: manifest missing" % manifest_of(A) in log, log

    with open(manifest_of(A), "w") as f:
        f.write(good)
    # a library preloaded from a path that is not even UTF-8: unlisted, shown as \xNN
    libm = [f["path"] for f in json.loads(good)["files"]
            if os.path.basename(f["path"]).startswith("libm.so")][0]
    evil = os.path.join(NET.dir.encode(), b"evil\xffpreload.so")
    shutil.copy(libm.encode(), evil)
    d.env["LD_PRELOAD"] = os.fsdecode(evil)
    # under AddressSanitizer its runtime must come first: let the preload stand before it
    d.env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    try:
        rc, log = refused_start(d)
    finally:
        del d.env["LD_PRELOAD"]
    assert "integrity.enforce: %s/evil\\xffpreload.so: library not in the manifest" % NET.dir \
        in log, log
    d.start()
    assert d.status()["integrity"]["state"] == "ok"


def case_signed_on_token():
    """A node whose key is on a token signs its manifest there (the PIN from its PIN file);
    the PKCS#11 engine and module the daemon loaded are in it; it verifies against the
    CA as that node's, and not as another's."""
    d = NET[B]
    out = os.path.join(NET.dir, "token.manifest.json")
    d.admin("manifest", "sign", "--out", out, env={"SOFTHSM2_CONF": d.token["conf"]})
    with open(out) as f:
        m = json.load(f)
    assert m["node"] == urn(B) and m["daemon"] == "juki-csd", m
    libs = [f["path"] for f in m["files"] if f["kind"] == "library"]
    assert any("softhsm" in p for p in libs), libs
    assert any("pkcs11" in os.path.basename(p) or "libp11" in p for p in libs), libs
    ver = run_ctl("manifest", "verify", "--ca", NET.ca(), "--node", urn(B), out)
    assert ver["signature"] == "good", ver
    code, _, err = run_ctl("manifest", "verify", "--ca", NET.ca(), "--node", urn(A), out,
                           check=False)
    assert code == CTL_FAILED and "not this node's" in err, err


def case_bad_manifest_files():
    """manifest verify refuses malformed, oversized and duplicate-key files with a reason."""
    bad = os.path.join(NET.dir, "bad.manifest.json")
    for text, why in [
            ('{"node": "%s", "node": "%s"}' % (urn(A), urn(B)), "duplicate object key"),
            ("[1, 2", "line 1"),
            ('{"format": 1}', "node: a node's identity"),
            ("[" + " " * (1024 * 1024) + "]", "larger than 1 MiB")]:
        with open(bad, "w") as f:
            f.write(text)
        code, out, err = run_ctl("manifest", "verify", "--ca", NET.ca(), bad, check=False)
        assert code == CTL_FAILED and why in err, (code, err)


def case_altered_binary():
    """A copy of the daemon's binary with one byte more: the daemon that runs it finds
    its binary differs from the manifest, alerts, and the national server sees it."""
    d = NET[C]
    d.admin("manifest", "sign")
    assert d.admin("integrity")["state"] == "ok"
    d.stop()
    with open(d.binary, "ab") as f:
        f.write(b"\0not what was installed")
    d.start()
    check = d.admin("integrity")
    assert check["state"] == "mismatch" and check["mismatches"] == [d.binary], check
    assert any(a["detail"] == d.binary + ": binary digest differs from the manifest"
               for a in alerts(C))
    wait_until("the altered binary's alert at jlis",
               lambda: any(d.binary in a["detail"] for a in forwarded(JLIS, C)), timeout=10)
    wait_until("the new digest in C's heartbeat at jlis",
               lambda: (beat_integrity(JLIS, C) or {}).get("binary") == sha256(d.binary),
               timeout=10)
    assert beat_integrity(JLIS, C)["ok"] is False


def inventory(*args):
    code, out, err = run_ctl("inventory", *args, socket_path=NET[JLIS].socket, check=False)
    assert code in (0, CTL_FAILED), (code, err)
    return code, out


def case_inventory():
    """`juki-ctl inventory` at the national server: every node's daemon, version and
    digests, and the drifting node — by the majority, and against a declared inventory."""
    real = sha256(NET[A].binary)
    wait_until("every node on the national board",
               lambda: all(beat_integrity(JLIS, n) for n in (PREF, A, B, C)), timeout=15)
    # A's config was altered and restored by an earlier case: its next heartbeat says ok.
    wait_until("A ok again in its heartbeat at the national server",
               lambda: (beat_integrity(JLIS, A) or {}).get("ok") is True
               and beat_integrity(JLIS, A).get("manifest") == sha256(manifest_of(A)),
               timeout=15)
    code, out = inventory()
    inv = json.loads(out)
    assert code == CTL_FAILED, out
    rows = {r["node"]: r for r in inv["nodes"]}
    assert set(rows) == {urn(n) for n in (JLIS, PREF, A, B, C)}, sorted(rows)
    assert inv["by"] == "majority" and inv["expected"]["juki-csd"]["binary"] == real, inv
    assert inv["drifting"] == [urn(C)], inv["drifting"]
    assert rows[urn(C)]["drift"] == ["binary"] and rows[urn(C)]["binary"] == sha256(NET[C].binary)
    assert rows[urn(A)]["manifest"] == sha256(manifest_of(A)) and rows[urn(A)]["ok"] is True
    assert rows[urn(B)]["manifest"] is None
    assert rows[urn(JLIS)]["daemon"] == "juki-jlisd" and rows[urn(PREF)]["daemon"] == "juki-prefd"
    assert urn(C) in inv["mismatched"] and urn(A) not in inv["mismatched"], inv["mismatched"]

    # a declared inventory: the csd binary as installed, and a prefd version not running
    expect = os.path.join(NET.dir, "inventory.json")
    with open(expect, "w") as f:
        json.dump({"juki-csd": {"version": rows[urn(A)]["version"], "binary": [real]},
                   "juki-prefd": {"version": "9.9.9", "binary": rows[urn(PREF)]["binary"]},
                   "juki-jlisd": {"version": rows[urn(JLIS)]["version"],
                                  "binary": rows[urn(JLIS)]["binary"]}}, f)
    code, out = inventory("--expect", expect)
    inv = json.loads(out)
    assert inv["by"] == "declared" and sorted(inv["drifting"]) == sorted([urn(C), urn(PREF)])
    rows = {r["node"]: r for r in inv["nodes"]}
    assert rows[urn(PREF)]["drift"] == ["version"], rows[urn(PREF)]
    # the text: one line a node, the drifting one marked
    code, out, err = run_ctl("inventory", socket_path=NET[JLIS].socket, json_out=False,
                             check=False)
    line = [l for l in out.splitlines() if l.startswith(urn(C))]
    assert code == CTL_FAILED and line and line[0].endswith("binary"), out
    assert "5 nodes, 1 drifting" in out, out


def main():
    global NET
    code = 0
    with Network([GW, JLIS, PREF, A, B, C], monitor=True, configure=configure) as net:
        NET = net
        try:
            run_cases([case_missing_then_signed, case_config_altered, case_signed_on_token,
                       case_bad_manifest_files,
                       case_altered_binary, case_inventory, case_enforce_refuses])
        except SystemExit as e:
            code = e.code
        if code:
            net.dump_logs()
    sys.exit(code)


if __name__ == "__main__":
    main()
