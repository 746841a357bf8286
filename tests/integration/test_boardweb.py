"""The board's web page (第4-7(3), docs/operations.md): HTTPS on boardweb.listen of the
national server, TLS 1.3 with the operator's certificate required.

One network for every case: the national server keeping the board and serving the page,
a CS sending it heartbeats every second through a gateway.  A real browser — Debian's
Chromium, headless — opens the page with an operator's certificate from an NSS database
in a HOME of its own, picked by the policy AutoSelectCertificateForUrls (the file
/etc/chromium/policies/managed/juki-test-boardweb.json, written for each Chromium run and
removed after it, under a lock: Chromium reads policies nowhere else), the server's key pinned with --ignore-certificate-errors-spki-list
(the node's certificate names a urn:juki identity, not a host name).  The DOM it built
is checked for the 47 prefectures, the CS and its state; a screenshot goes into the
test's output folder ($JUKI_BUILD_DIR/tests/output/boardweb/, or $JUKI_TEST_OUTPUT).
Without a certificate, with a certificate that is not an operator of the node, with an
operator whose roles lack `board` and with a locked operator the page is refused, and
each refusal is in the operation history; /board.json is read with Python's ssl too; a
client that trickles its request is cut off at boardweb.deadline.
"""

import base64
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from jukitest import (BUILD, CARD_PIN, Network, free_port, history, run_cases, urn,
                      wait_until)

GW, CS, JLIS = "fwgate:east", "cs:131016", "jlis:0"
# A certificate of the network that is no operator of the national server.
OTHER_OP = "op:cs:131016:mallory"
DEADLINE_MS = 1500

NET = None
WEB = None  # "127.0.0.1:port" of the page
OPS = {}
TMP = None
# Chromium reads its policies from there only: AutoSelectCertificateForUrls for this run's
# page makes it present the one certificate of its NSS database without asking (headless,
# nobody could answer).  The file exists while a Chromium of this test runs.
POLICIES = "/etc/chromium/policies/managed"
POLICY = os.path.join(POLICIES, "juki-test-boardweb.json")
OUT = os.environ.get("JUKI_TEST_OUTPUT") or os.path.join(BUILD, "tests", "output", "boardweb")


def configure(net):
    global WEB
    WEB = "127.0.0.1:%d" % free_port()
    net[JLIS].extra["boardweb"] = "{listen: ['%s'], deadline: %dms, refresh: 1s}" % (
        WEB, DEADLINE_MS)


# -- clients -------------------------------------------------------------------------------

def plain_key(cert_key, encrypted):
    """A copy of a key without its passphrase (the harness encrypts operators' keys)."""
    out = os.path.join(TMP, os.path.basename(cert_key[1]) + ".plain")
    if not os.path.exists(out):
        args = ["openssl", "pkey", "-in", cert_key[1], "-out", out]
        if encrypted:
            args += ["-passin", "pass:" + CARD_PIN]
        subprocess.run(args, check=True, capture_output=True)
        os.chmod(out, 0o600)
    return out


def tls_context(cert_key=None, encrypted=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # the node's certificate names urn:juki:jlis:0
    ctx.load_verify_locations(NET.ca())
    if cert_key is not None:
        ctx.load_cert_chain(cert_key[0], plain_key(cert_key, encrypted))
    return ctx


def get(path, cert_key=None, encrypted=True, method="GET"):
    """GET path over TLS 1.3; (status, headers text, body bytes).  A refused handshake
    raises ssl.SSLError / OSError."""
    host, port = WEB.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with tls_context(cert_key, encrypted).wrap_socket(raw) as s:
            s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                       "Content-Length: 0\r\n\r\n" % (method, path, WEB)).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode(), body


def op_cert(op):
    return (op.cert, op.key)


def web_history(**kw):
    return [e for e in history(NET[JLIS]) if e["action"] == "board.web"]


def spki_pin():
    """base64(sha256(SubjectPublicKeyInfo)) of the national server's key, for Chromium."""
    cert, _ = NET.cert(JLIS)
    der = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der,
                          check=True, capture_output=True).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def nss_home(name, op=None):
    """A HOME for Chromium with an NSS database; with op, its certificate and key in it."""
    home = os.path.join(TMP, "home-" + name)
    db = os.path.join(home, ".pki", "nssdb")
    os.makedirs(db)
    subprocess.run(["certutil", "-N", "-d", "sql:" + db, "--empty-password"], check=True,
                   capture_output=True)
    if op is not None:
        p12 = os.path.join(TMP, name + ".p12")
        subprocess.run(["openssl", "pkcs12", "-export", "-in", op.cert, "-inkey", op.key,
                        "-passin", "pass:" + CARD_PIN, "-passout", "pass:p12", "-name",
                        op.id, "-out", p12], check=True, capture_output=True)
        subprocess.run(["pk12util", "-i", p12, "-d", "sql:" + db, "-W", "p12", "-K", ""],
                       check=True, capture_output=True)
    return home


def chromium(home, *args, timeout=25):
    """Headless Chromium with HOME (its NSS database) on the page; its stdout.  The policy
    file is written for the run under a lock (Chromium merges every file of the folder, and
    two files setting one policy conflict: runs of this test at once would) and removed."""
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--user-data-dir=" + os.path.join(home, "profile"),
           "--ignore-certificate-errors-spki-list=" + spki_pin(),
           ] + list(args) + ["https://%s/" % WEB]
    env = dict(os.environ, HOME=home)
    os.makedirs(POLICIES, exist_ok=True)
    with open(os.path.join(POLICIES, ".juki-test.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(POLICY, "w") as f:
            json.dump({"AutoSelectCertificateForUrls": [json.dumps(
                {"pattern": "https://%s" % WEB, "filter": {}})]}, f)
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("chromium did not finish: %s" % (e.stderr or b"")[-3000:])
        finally:
            os.unlink(POLICY)
    return p.stdout


# -- cases ---------------------------------------------------------------------------------

def board_has_cs():
    nodes = NET[JLIS].ctl("board")["nodes"]
    return any(n["node"] == urn(CS) and n["state"] == "up" for n in nodes)


def case_board_json_with_python_ssl():
    """An auditor's certificate reads /board.json: the CS is on it, up, with its
    prefecture coloured; the page and its assets are served with their types."""
    wait_until("the CS on the national board", board_has_cs, timeout=20)
    status, head, body = get("/board.json", op_cert(OPS["auditor"]))
    assert status == 200, (status, body)
    assert "application/json" in head and "no-store" in head, head
    doc = json.loads(body)
    assert doc["self"] == urn(JLIS), doc
    cs = [n for n in doc["nodes"] if n["node"] == urn(CS)]
    assert cs and cs[0]["state"] == "up" and cs[0]["kind"] == "cs", doc["nodes"]
    assert doc["prefs"].get("13") == "up", doc["prefs"]
    assert doc["refresh_ms"] == 1000, doc
    status, head, body = get("/", op_cert(OPS["auditor"]))
    assert status == 200 and "text/html" in head and b"/board.js" in body, (status, head)
    assert "Content-Security-Policy" in head, head
    status, head, body = get("/board.js", op_cert(OPS["auditor"]))
    assert status == 200 and "javascript" in head and b"PREFS" in body, (status, head)
    status, _, _ = get("/etc/passwd", op_cert(OPS["auditor"]))
    assert status == 404, status
    status, _, _ = get("/board.json", op_cert(OPS["auditor"]), method="POST")
    assert status == 501, status  # refused by evhttp_set_allowed_methods(GET, HEAD): 501
    entries = web_history()
    mine = [e for e in entries if e["operator"] == OPS["auditor"].urn]
    assert any(e["target"] == "/board.json" and e["outcome"] == "ok" for e in mine), mine
    assert any(e["target"] == "/" and e["outcome"] == "ok" for e in mine), mine
    # What a client asked for is not written into the history as it came.
    assert any(e["target"] == "other" and e["outcome"] == "not-found" for e in mine), mine
    assert not any("passwd" in json.dumps(e) for e in entries), entries


def case_chromium_with_operator_certificate():
    """A supervisor's browser shows the map with 47 tiles, Tokyo coloured up, the CS in
    the node table, and refreshes without reloading; a screenshot is saved."""
    home = nss_home("supervisor", OPS["supervisor"])
    before = NET[JLIS].status()["boardweb"]["views"]
    alerts_before = NET[JLIS].alert_counts()
    os.makedirs(OUT, exist_ok=True)
    shot = os.path.join(OUT, "board.png")
    if os.path.exists(shot):
        os.unlink(shot)
    # The page's script runs for 2.5 s of virtual time: it asks for the board every 1 s.
    dom = chromium(home, "--virtual-time-budget=2500", "--window-size=1280,900",
                   "--screenshot=" + shot, "--dump-dom")
    tiles = re.findall(r'<g class="tile" id="pref-(\d\d)" data-pref="\d\d" data-state="(\w+)"',
                       dom)
    assert len(tiles) == 47 and len(set(t[0] for t in tiles)) == 47, dom[:2000]
    states = dict(tiles)
    assert states["13"] == "up", states
    assert states["27"] == "none", states
    assert re.search(r'<tr data-node="%s" data-state="up">' % re.escape(urn(CS)), dom), dom
    m = re.search(r'data-updates="(\d+)"', dom)
    assert m and int(m.group(1)) >= 2, "the page did not refresh itself: %s" % dom[:1500]
    assert os.path.getsize(shot) > 10000, shot
    print("screenshot: %s" % shot)
    after = NET[JLIS].status()["boardweb"]["views"]
    assert after > before, (before, after)
    # Chromium hangs up its first handshake to pick the certificate the server asks for:
    # that refused nothing, and raises no alert.
    assert NET[JLIS].alert_counts() == alerts_before, (alerts_before,
                                                       NET[JLIS].alert_counts())
    assert any(e["operator"] == OPS["supervisor"].urn and e["target"] == "/" and
               e["outcome"] == "ok" for e in web_history())


def case_chromium_without_certificate():
    """A browser with no certificate gets no page: the handshake is refused, alerted and
    in the history."""
    counts = NET[JLIS].alert_counts()
    home = nss_home("nobody")
    dom = chromium(home, "--dump-dom")
    assert 'class="tile"' not in dom and urn(CS) not in dom, dom[:1000]
    wait_until("the refusal alerted", lambda: NET[JLIS].alert_counts().get(
        "no-certificate", 0) > counts.get("no-certificate", 0), timeout=10)
    assert any(e["outcome"] == "tls-no-certificate" for e in web_history()), web_history()


def case_refusals():
    """Python's ssl without a certificate, with a node's certificate, another node's
    operator, a clerk (no `board` role) and a locked operator: each refused, in the
    history with its reason."""
    try:
        get("/board.json")
        raise AssertionError("served without a certificate")
    except (ssl.SSLError, OSError):
        pass
    status, _, body = get("/board.json", NET.cert(OTHER_OP), encrypted=False)
    assert status == 403 and b"not an operator certificate of this node" in body, body
    status, _, body = get("/board.json", NET.cert(CS), encrypted=False)
    assert status == 403, body
    status, _, body = get("/board.json", op_cert(OPS["clerk"]))
    assert status == 403 and b"needs the role" in body, body
    status, _, body = get("/", op_cert(OPS["locked"]))
    assert status == 403 and b"locked" in body, body
    entries = web_history()
    outcomes = {(e["operator"], e["outcome"]) for e in entries}
    assert (urn(OTHER_OP), "wrong-node") in outcomes, outcomes
    assert (urn(CS), "wrong-node") in outcomes, outcomes
    assert (OPS["clerk"].urn, "forbidden") in outcomes, outcomes
    assert (OPS["locked"].urn, "locked") in outcomes, outcomes
    assert any(o == "tls-no-certificate" for _, o in outcomes), outcomes
    counts = NET[JLIS].alert_counts()
    assert counts.get("identity-mismatch", 0) >= 2, counts


def case_slow_client_cut_at_deadline():
    """A client that completes its handshake and then trickles its request is cut off at
    boardweb.deadline, alerted slow-caller; one that never speaks TLS too."""
    counts = NET[JLIS].alert_counts().get("slow-caller", 0)
    host, port = WEB.rsplit(":", 1)
    start = time.monotonic()
    raw = socket.create_connection((host, int(port)), timeout=10)
    s = tls_context(op_cert(OPS["auditor"])).wrap_socket(raw)
    closed = False
    try:
        for ch in "GET /board.json HTTP/1.1\r\nHost: x\r\n":
            s.sendall(ch.encode())
            time.sleep(0.1)
            if time.monotonic() - start > DEADLINE_MS / 1000 * 4:
                break
        data = s.recv(100)
        closed = data == b""
    except (ssl.SSLError, OSError):
        closed = True
    finally:
        s.close()
    took = time.monotonic() - start
    assert closed, "the slow client was not cut off"
    assert took < DEADLINE_MS / 1000 * 3, took
    silent = socket.create_connection((host, int(port)), timeout=10)
    try:
        silent.settimeout(DEADLINE_MS / 1000 * 4)
        assert silent.recv(10) == b"", "a silent client kept its connection"
    except ConnectionResetError:
        pass
    finally:
        silent.close()
    wait_until("slow callers alerted", lambda: NET[JLIS].alert_counts().get(
        "slow-caller", 0) >= counts + 2, timeout=10)
    assert any(e["outcome"] == "timeout" for e in web_history())
    assert any(e["outcome"] == "tls-timeout" for e in web_history())


def main():
    global NET, TMP
    TMP = tempfile.mkdtemp(prefix="juki-boardweb-")
    try:
        with Network([GW, JLIS, CS], extra_identities=[OTHER_OP], monitor=True,
                     configure=configure) as net:
            NET = net
            d = net[JLIS]
            OPS["supervisor"] = d.add_operator("sup", ["supervisor"])
            OPS["auditor"] = d.add_operator("aud", ["auditor"])
            OPS["clerk"] = d.add_operator("clerk", ["clerk"])
            OPS["locked"] = d.add_operator("gone", ["auditor"])
            d.admin("operator", "lock", "gone")
            run_cases([case_board_json_with_python_ssl, case_chromium_with_operator_certificate,
                       case_chromium_without_certificate, case_refusals,
                       case_slow_client_cut_at_deadline])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
