"""A reference certification authority for the tests: NOT a product.

It plays the authority that receives 異動等情報 (第6-8(6)) from juki-authlinkd, as
urn:juki:ca:jpki, with real tools wherever the real thing would use them:

- an OpenSSL CA database (`openssl ca` with its own config file, index.txt, serial,
  crlnumber) under a directory of the test's, whose key and certificate `openssl req`
  makes; it issues signing certificates to synthetic residents with the basic items in
  the subject (CN the name, L the address, OU the birth date and the sex) and never the
  住民票コード, which only its own SQLite maps to certificate serials;
- revocation by `openssl ca -revoke`, a CRL by `openssl ca -gencrl`;
- a real OCSP responder, `openssl ocsp -index index.txt -port N`, and a helper that asks
  it (`openssl ocsp -issuer -cert -url`: good / revoked);
- signatures made with a resident's key (`openssl cms -sign`) and checked against the
  CRL (`openssl cms -verify -crl_check`);
- the authority's side of the feed (docs/protocol.md, "ninsho"): a node port behind the
  gateway (outer TLS 1.3 from the gateway, the FROM line, the inner TLS 1.3 session with
  juki-authlinkd) that takes `ninsho.feed`, checks the sequence and the running digest,
  applies the entries (death, removal, change: revoke that resident's certificates;
  code-change: re-key the resident in its own database), commits (the CA database, the
  CRL, then its SQLite: sequence, digest, certificates) and only then acks
  {"seq", "digest"}. Entries it committed already are skipped (their digests compared)
  and acked again, so a message delivered twice is applied once. It runs as a process
  of its own (`python3 authority.py serve DIR`) so that a test can kill it with SIGKILL
  and start it again: everything it knows is on disk in DIR.
- a re-send request (`ninsho.resend`) through the gateway with its own certificate.

The OCSP responder of OpenSSL 3.0 reloads index.txt when the file changed, but it looks
only at the top of its loop, before it waits for the next request: the first query after
a change is answered from the old index. So after every commit the authority "kicks" the
responder with one query of its own (answered from the old index, after which the
responder reloads) before it acks; any query after the ack sees the new index. The
responder binds every interface (`-port` takes only a number in OpenSSL 3.0).

    python3 authority.py selftest     a self-check of the CA side (no juki daemon)
    python3 authority.py              the commands scripts/demo.sh uses
"""

import concurrent.futures
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

if __name__ == "__main__":  # run as a script: the package is the folder above
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from jukitest.peer import Peer, now, san_uri, uuid7  # noqa: E402

IDENTITY = "urn:juki:ca:jpki"
ZERO = "00" * 32

CA_CNF = """\
# The test authority's CA (tests/integration/jukitest/authority.py): openssl ca.
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/certs
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
default_days = 1825
default_crl_days = 1
policy = policy_resident
unique_subject = no
preserve = yes
string_mask = utf8only
utf8 = yes
copy_extensions = none
x509_extensions = signing_cert

[ policy_resident ]
countryName = optional
localityName = optional
organizationalUnitName = optional
commonName = supplied

[ signing_cert ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://127.0.0.1/test-jpki.crl

[ ocsp_signer ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = OCSPSigning

[ ca_cert ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ req ]
distinguished_name = req_dn
string_mask = utf8only
utf8 = yes

[ req_dn ]
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS certs(serial TEXT PRIMARY KEY, code TEXT NOT NULL,
    cert TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'valid',
    revoked_seq INTEGER);
CREATE INDEX IF NOT EXISTS certs_code ON certs(code);
CREATE TABLE IF NOT EXISTS feed(seq INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL, digest TEXT NOT NULL, msg TEXT NOT NULL, applied_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS actions(seq INTEGER NOT NULL, serial TEXT NOT NULL,
    action TEXT NOT NULL, PRIMARY KEY(seq, serial, action));
CREATE TABLE IF NOT EXISTS state(one INTEGER PRIMARY KEY CHECK (one = 1),
    last_seq INTEGER NOT NULL, last_digest TEXT NOT NULL);
INSERT OR IGNORE INTO state VALUES (1, 0, '%s');
""" % ZERO

# openssl ca -revoke reasons by kind of 異動等情報.
REVOKE_REASON = {"death": "cessationOfOperation", "removal": "affiliationChanged",
                 "change": "affiliationChanged"}

MAX_FRAME = 4 * 1024 * 1024


def run(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv[:3]), p.returncode,
                                                p.stderr.strip()[-800:]))
    return p.stdout


def wait_for(what, predicate, timeout=30.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def entry_line(e):
    """The bytes of one feed entry in the running digest (docs/protocol.md, ninsho)."""
    items = e.get("items") or {}
    sex = items.get("sex", "")
    fields = ["juki-ninsho-feed/1", str(e["seq"]), e["id"], e["code"], e["kind"], e["date"],
              items.get("name", ""), items.get("birth", ""), "" if sex == "" else str(sex),
              items.get("lgcode", ""), items.get("address", ""), e.get("new_code", "")]
    return ("\n".join(fields) + "\n").encode()


def chain(prev_hex, e):
    return hashlib.sha256(bytes.fromhex(prev_hex) + entry_line(e)).hexdigest()


# -- the CA database -------------------------------------------------------------------------


class CA:
    """The OpenSSL CA and the authority's own SQLite, in one directory."""

    def __init__(self, dir):
        self.dir = os.path.abspath(dir)
        self.cnf = os.path.join(self.dir, "ca.cnf")
        self.index = os.path.join(self.dir, "index.txt")
        self.cert = os.path.join(self.dir, "ca.crt")
        self.crl = os.path.join(self.dir, "crl.pem")
        self.trust = os.path.join(self.dir, "trust.pem")  # CA + CRL, for cms -verify
        self.db_path = os.path.join(self.dir, "authority.db")
        self.ocsp_cert = os.path.join(self.dir, "ocsp.crt")
        self.ocsp_key = os.path.join(self.dir, "ocsp.key")
        self.people = os.path.join(self.dir, "people")

    def create(self):
        """A new CA: key, self-signed certificate, OCSP signer, empty database, first CRL."""
        os.makedirs(os.path.join(self.dir, "certs"), exist_ok=True)
        os.makedirs(self.people, exist_ok=True)
        with open(self.cnf, "w") as f:
            f.write(CA_CNF.format(dir=self.dir))
        open(self.index, "w").close()
        with open(self.index + ".attr", "w") as f:
            f.write("unique_subject = no\n")
        for name in ("serial", "crlnumber"):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write("1000\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        run(["openssl", "req", "-x509", "-config", self.cnf, "-extensions", "ca_cert"] + ec +
            ["-keyout", os.path.join(self.dir, "ca.key"), "-out", self.cert, "-days", "3650",
             "-subj", "/C=JP/O=juki test/CN=test JPKI signing CA"])
        csr = os.path.join(self.dir, "ocsp.csr")
        run(["openssl", "req", "-new", "-config", self.cnf] + ec +
            ["-keyout", self.ocsp_key, "-out", csr, "-subj", "/CN=test JPKI OCSP responder"])
        self.openssl_ca(["-extensions", "ocsp_signer", "-in", csr, "-out", self.ocsp_cert])
        with self.db() as db:
            db.executescript(SCHEMA)
        self.gencrl()

    @contextlib.contextmanager
    def lock(self):
        """openssl ca rewrites index.txt: one invocation at a time, across processes."""
        with open(os.path.join(self.dir, "ca.lock"), "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def openssl_ca(self, args):
        with self.lock():
            out = run(["openssl", "ca", "-config", self.cnf, "-batch", "-utf8"] + args)
            self.index_touched()
            return out

    def index_touched(self):
        """Give index.txt a modification time in whole seconds later than any before it.
        OpenSSL 3.0's responder sees a change by the file's mtime and ctime in seconds and its
        inode number; `openssl ca` renames a new file over it, and the file system reuses a
        freed inode at once, so two rewrites within one second could look like none (a stale
        answer for good, seen under CI load). Called under lock()."""
        stamp = os.path.join(self.dir, "index.mtime")
        last = int(open(stamp).read()) if os.path.exists(stamp) else 0
        t = max(int(time.time()), last + 1)
        os.utime(self.index, (t, t))
        with open(stamp, "w") as f:
            f.write(str(t))

    def db(self):
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return contextlib.closing(db)

    def issue(self, people):
        """Signing certificates for people (synth.Synth().person() dicts): {code: (serial,
        cert path, key path)}. One key each; the certificates in one `openssl ca` run."""
        def request(p):
            stem = os.path.join(self.people, p["code"])  # the file name is the test's only
            subj = "/C=JP/L=%s/OU=birth %s/OU=sex %s/CN=%s" % (
                p["address"], p["birth"], p["sex"], p["name"])
            run(["openssl", "req", "-new", "-config", self.cnf, "-utf8", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", stem + ".key",
                 "-out", stem + ".csr", "-subj", subj])
            return stem + ".csr"
        with concurrent.futures.ThreadPoolExecutor(2) as pool:  # two at a time: 2 CPUs
            csrs = list(pool.map(request, people))
        out = {}
        with self.lock():
            with open(os.path.join(self.dir, "serial")) as f:
                first = int(f.read().strip(), 16)
            run(["openssl", "ca", "-config", self.cnf, "-batch", "-utf8", "-notext",
                 "-out", os.devnull, "-infiles"] + csrs)
        with self.db() as db:
            db.execute("BEGIN")
            for i, p in enumerate(people):
                serial = "%X" % (first + i)
                if len(serial) % 2:
                    serial = "0" + serial
                cert = os.path.join(self.dir, "certs", serial + ".pem")
                stem = os.path.join(self.people, p["code"])
                db.execute("INSERT INTO certs(serial, code, cert, key) VALUES (?,?,?,?)",
                           (serial, p["code"], cert, stem + ".key"))
                out[p["code"]] = (serial, cert, stem + ".key")
            db.execute("COMMIT")
        return out

    def index_status(self):
        """{serial: "V" | "R" | "E"} as index.txt says now."""
        st = {}
        with open(self.index, encoding="utf-8", errors="replace") as f:
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) >= 4:
                    st[cols[3]] = cols[0]
        return st

    def revoked_in_index(self):
        return {s for s, v in self.index_status().items() if v == "R"}

    def revoke(self, serial, reason):
        """openssl ca -revoke, once: a certificate revoked already is left as it is."""
        if self.index_status().get(serial) == "R":
            return False
        self.openssl_ca(["-revoke", os.path.join(self.dir, "certs", serial + ".pem"),
                         "-crl_reason", reason])
        return True

    def gencrl(self):
        tmp = self.crl + ".tmp"
        self.openssl_ca(["-gencrl", "-out", tmp])
        os.replace(tmp, self.crl)
        with open(self.cert) as a, open(self.crl) as b, open(self.trust + ".tmp", "w") as t:
            t.write(a.read() + b.read())
        os.replace(self.trust + ".tmp", self.trust)

    def state(self):
        with self.db() as db:
            return db.execute("SELECT last_seq, last_digest FROM state").fetchone()

    def rewind(self, n):
        """The authority's own database as restored from a backup taken after entry n - 1
        (docs/protocol.md §16.5: L = n - 1, D = the digest at n - 1): the entries from n on,
        and what they did to its certificates, forgotten. The CA database keeps its
        revocations (a CA never un-revokes); applying an entry again finds them there."""
        with self.db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT digest FROM feed WHERE seq = ?", (n - 1,)).fetchone()
            db.execute("DELETE FROM feed WHERE seq >= ?", (n,))
            db.execute("DELETE FROM actions WHERE seq >= ?", (n,))
            db.execute("UPDATE certs SET status = 'valid', revoked_seq = NULL "
                       "WHERE revoked_seq >= ?", (n,))
            db.execute("UPDATE state SET last_seq = ?, last_digest = ?",
                       (n - 1, row[0] if row else ZERO))
            db.execute("COMMIT")

    def rows(self, sql, args=()):
        with self.db() as db:
            return db.execute(sql, args).fetchall()

    # -- signatures --------------------------------------------------------

    def sign(self, cert, key, data, out):
        """A CMS signature (opaque, PEM) of data with a resident's key: the path written."""
        src = out + ".in"
        with open(src, "wb") as f:
            f.write(data)
        run(["openssl", "cms", "-sign", "-signer", cert, "-inkey", key, "-in", src, "-binary",
             "-nodetach", "-outform", "PEM", "-out", out])
        return out

    def verify(self, sig):
        """(ok, why): openssl cms -verify against the CA and its current CRL (-crl_check)."""
        p = subprocess.run(["openssl", "cms", "-verify", "-in", sig, "-inform", "PEM",
                            "-CAfile", self.trust, "-crl_check", "-out", os.devnull],
                           capture_output=True, text=True)
        why = (p.stderr.strip().splitlines() or [""])[-1]
        return p.returncode == 0, why.split("Verify error:")[-1].strip()


# -- the OCSP responder ----------------------------------------------------------------------


class Responder:
    """`openssl ocsp -index index.txt -port N` as a real responder, and queries to it."""

    def __init__(self, ca, port):
        self.ca = ca
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.proc = None
        self.log = os.path.join(ca.dir, "ocsp.log")
        self.kick_der = os.path.join(ca.dir, "kick.der")
        self.starts = 0

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(
            ["openssl", "ocsp", "-index", self.ca.index, "-port", str(self.port),
             "-rsigner", self.ca.ocsp_cert, "-rkey", self.ca.ocsp_key, "-CA", self.ca.cert,
             "-ignore_err", "-nmin", "1"], stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        if not os.path.exists(self.kick_der):
            run(["openssl", "ocsp", "-issuer", self.ca.cert, "-serial", "0x01", "-no_nonce",
                 "-reqout", self.kick_der])

        # Never probe its port with a bare connection: one that closes without a request
        # leaves OpenSSL 3.0's responder waiting on it for good. It says when it listens.
        def up():
            if self.proc.poll() is not None:
                raise AssertionError("openssl ocsp exited: %s" % open(self.log).read()[-500:])
            with open(self.log, errors="replace") as f:
                return f.read().count("waiting for OCSP client connections") > self.starts
        wait_for("the OCSP responder", up, 15)
        self.starts += 1
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def query(self, certs):
        """{cert path: "good" | "revoked" | "unknown"} for certificate files, one request."""
        argv = ["openssl", "ocsp", "-issuer", self.ca.cert, "-url", self.url,
                "-CAfile", self.ca.cert, "-no_nonce", "-timeout", "10"]
        for c in certs:
            argv += ["-cert", c]
        out = run(argv)
        st = {}
        for line in out.splitlines():
            for c in certs:
                if line.startswith(c + ": "):
                    st[c] = line[len(c) + 2:].strip()
        missing = [c for c in certs if c not in st]
        if missing:
            raise AssertionError("no OCSP answer for %s: %s" % (missing, out[-500:]))
        return st

    def kick(self):
        """One request, so that the responder comes round its loop and reloads index.txt."""
        with open(self.kick_der, "rb") as f:
            der = f.read()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("POST", "/", der, {"Content-Type": "application/ocsp-request"})
            c.getresponse().read()
        finally:
            c.close()


# -- the feed: the authority's node port -----------------------------------------------------


class Refused(Exception):
    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class FeedServer:
    """The node port of the authority (run in its own process by `serve`).

    conf (DIR/serve.json): listen "host:port", identity, outer [cert, key] or null (no
    certificate at all), inner [cert, key] or null (the outer ones), ca, crl (may be
    null), senders (identities allowed to feed), ocsp_port (kicked after each commit).
    A file DIR/pause naming a stage ("commit": after the CA database changed, before the
    SQLite commit; "ack": after the commit, before the ack) stops the server there until
    the file is removed; it writes DIR/paused ("<stage> <seq>") while it waits.
    """

    def __init__(self, dir):
        self.dir = os.path.abspath(dir)
        with open(os.path.join(self.dir, "serve.json")) as f:
            self.conf = json.load(f)
        self.ca = CA(self.dir)
        self.identity = self.conf.get("identity", IDENTITY)
        self.lock = threading.Lock()
        self.outer_ctx = self.context(self.conf.get("outer"))
        self.inner_ctx = self.context(self.conf.get("inner") or self.conf.get("outer"))

    def context(self, pair):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(self.conf["ca"])
        if self.conf.get("crl"):
            ctx.load_verify_locations(self.conf["crl"])
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        if pair:
            ctx.load_cert_chain(pair[0], pair[1])
        ctx.num_tickets = 0
        return ctx

    def log(self, text):
        sys.stderr.write("%s authority: %s\n" % (time.strftime("%H:%M:%S"), text))
        sys.stderr.flush()

    def serve(self):
        host, port = self.conf["listen"].rsplit(":", 1)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, int(port)))
        ls.listen(16)
        with open(os.path.join(self.dir, "serve.ready.tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.replace(os.path.join(self.dir, "serve.ready.tmp"),
                   os.path.join(self.dir, "serve.ready"))
        self.log("listening on %s" % self.conf["listen"])
        while True:
            raw, _ = ls.accept()
            threading.Thread(target=self.connection, args=(raw,), daemon=True).start()

    def connection(self, raw):
        raw.settimeout(60)
        try:
            with self.outer_ctx.wrap_socket(raw, server_side=True) as outer:
                gw = san_uri(outer.getpeercert()) or ""
                if not gw.startswith("urn:juki:fwgate:"):
                    self.log("outer peer %s is not a gateway: closed" % gw)
                    return
                line = b""
                while not line.endswith(b"\n") and len(line) < 257:
                    c = outer.recv(1)
                    if not c:
                        return
                    line += c
                words = line.decode(errors="replace").rstrip("\r\n").split(" ")
                if len(words) != 3 or words[0] != "FROM":
                    outer.sendall(b"DENY malformed not a FROM line\n")
                    return
                src, service = words[1], words[2]
                if service != "ninsho" or src not in self.conf["senders"]:
                    outer.sendall(("DENY policy %s may not reach %s over %s\n" % (
                        src, self.identity, service)).encode())
                    return
                outer.sendall(b"OK\n")
                self.inner(outer, src)
        except (OSError, ssl.SSLError, ValueError, ConnectionError) as e:
            self.log("connection ended: %s" % e)

    def inner(self, outer, src):
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.inner_ctx.wrap_bio(inb, outb, server_side=True)

        def flush():
            data = outb.read()
            if data:
                outer.sendall(data)

        def fill():
            data = outer.recv(65536)
            if not data:
                raise ConnectionError("tunnel closed")
            inb.write(data)

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                fill()
        flush()
        peer = san_uri(tls.getpeercert())
        if peer != src:
            self.log("inner peer %s is not %s: closed" % (peer, src))
            return
        pending = b""

        def read(n):
            nonlocal pending
            while len(pending) < n:
                try:
                    chunk = tls.read(65536)
                    if not chunk:
                        raise ConnectionError("inner session closed")
                    pending += chunk
                except ssl.SSLWantReadError:
                    fill()
            out, pending = pending[:n], pending[n:]
            return out

        while True:
            (n,) = struct.unpack(">I", read(4))
            if n < 1 or n > MAX_FRAME:
                self.log("frame of %d bytes: closed" % n)
                return
            payload = read(n)
            try:
                doc = json.loads(payload)
                if not isinstance(doc, dict):
                    raise ValueError
            except ValueError:
                self.send(tls, flush, self.ack(None, src, "rejected", reason="bad-json"))
                return
            ack = self.handle(doc, peer)
            if ack is None:  # stop here: the tunnel closes without an ack
                return
            self.send(tls, flush, ack)

    def send(self, tls, flush, doc):
        payload = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        tls.write(struct.pack(">I", len(payload)) + payload)
        flush()

    def ack(self, doc, peer, status, reason=None, detail=None, result=None):
        body = {"status": status}
        if reason:
            body["reason"] = reason
        if detail:
            body["detail"] = detail
        if result is not None:
            body["result"] = result
        corr = doc.get("id") if isinstance(doc, dict) and isinstance(doc.get("id"), str) \
            else None
        return {"v": 1, "id": uuid7(), "type": "ack", "from": self.identity, "to": peer,
                "time": now(), "corr": corr, "body": body}

    def handle(self, doc, peer):
        if doc.get("v") != 1:
            return self.ack(doc, peer, "rejected", "unsupported-version", "v: not 1")
        if doc.get("from") != peer:
            return self.ack(doc, peer, "rejected", "sender-mismatch",
                            "from: not the peer of the inner session (%s)" % peer)
        if doc.get("to") != self.identity:
            return self.ack(doc, peer, "rejected", "recipient-mismatch",
                            "to: not this node (%s)" % self.identity)
        if doc.get("type") != "ninsho.feed":
            return self.ack(doc, peer, "rejected", "unknown-type",
                            "type: no such message type here")
        with self.lock:
            try:
                result = self.apply(doc, peer)
            except Refused as r:
                self.log("refused %s: %s %s" % (doc.get("id"), r.reason, r.detail))
                return self.ack(doc, peer, "rejected", r.reason, r.detail)
            except Exception as e:  # the disk, the CA: no ack, the sender delivers again
                self.log("internal error: %r" % e)
                return None
            if not self.pause("ack", result["seq"]):
                return None
            return self.ack(doc, peer, "accepted", result=result)

    def pause(self, stage, seq):
        """Wait while DIR/pause names stage (bounded); False when it timed out."""
        path = os.path.join(self.dir, "pause")
        try:
            with open(path) as f:
                if f.read().strip() != stage:
                    return True
        except FileNotFoundError:
            return True
        with open(os.path.join(self.dir, "paused"), "w") as f:
            f.write("%s %d" % (stage, seq))
        deadline = time.monotonic() + 120
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.dir, "paused"))
        return not os.path.exists(path)

    def apply(self, doc, peer):
        """Check a ninsho.feed message whole, apply what is new, commit; the ack's result."""
        body = doc.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("header"), dict) \
                or not isinstance(body.get("entries"), list) or not body["entries"]:
            raise Refused("invalid-field", "body: not {header, entries}")
        if body["header"].get("ca") != self.identity:
            raise Refused("invalid-field", "header.ca: not this authority")
        entries = body["entries"]
        with self.ca.db() as db:
            last_seq, last_digest = db.execute(
                "SELECT last_seq, last_digest FROM state").fetchone()
            known = dict(db.execute("SELECT seq, digest FROM feed WHERE seq >= ?",
                                    (entries[0].get("seq", 0) if isinstance(
                                        entries[0].get("seq"), int) else 0,)).fetchall())
        new = []
        prev = last_digest
        expect = None
        for i, e in enumerate(entries):
            if not isinstance(e, dict) or not isinstance(e.get("seq"), int) \
                    or not all(isinstance(e.get(k), str) for k in
                               ("digest", "id", "code", "kind", "date")):
                raise Refused("invalid-field", "entries[%d]: not a feed entry" % i)
            if expect is not None and e["seq"] != expect:
                raise Refused("invalid-field", "entries[%d].seq: not consecutive" % i)
            expect = e["seq"] + 1
            if e["seq"] <= last_seq:
                if known.get(e["seq"]) != e["digest"]:  # not the one committed there
                    raise Refused("feed-digest", "seq %d" % e["seq"])
                continue
            if e["seq"] != last_seq + 1 + len(new):
                raise Refused("feed-gap", "expected %d" % (last_seq + 1 + len(new)))
            d = chain(prev, e)
            if d != e["digest"]:  # does not chain from the last committed
                raise Refused("feed-digest", "seq %d" % e["seq"])
            if e["kind"] not in ("death", "removal", "change", "code-change"):
                raise Refused("invalid-field", "entries[%d].kind: unknown" % i)
            if e["kind"] == "code-change" and not isinstance(e.get("new_code"), str):
                raise Refused("invalid-field", "entries[%d].new_code: missing" % i)
            new.append(e)
            prev = d
        last = entries[-1]
        if not new:
            self.log("skipped seq %d..%d: committed already" % (entries[0]["seq"], last["seq"]))
            return {"seq": last["seq"], "digest": last["digest"]}
        # The CA database first (idempotent: a restart after a crash here does it again).
        actions = []
        with self.ca.db() as db:
            codes = {}
            for e in new:
                if e["kind"] == "code-change":
                    continue
                if e["code"] not in codes:
                    codes[e["code"]] = [r[0] for r in db.execute(
                        "SELECT serial FROM certs WHERE code = ? AND status = 'valid'",
                        (e["code"],))]
        rekeyed = {}
        for e in new:
            if e["kind"] == "code-change":
                rekeyed[e["code"]] = e["new_code"]
                actions.append((e["seq"], e["code"], "rekey"))
                continue
            for serial in codes.get(e["code"], []):
                self.ca.revoke(serial, REVOKE_REASON[e["kind"]])
                actions.append((e["seq"], serial, "revoke"))
            codes[e["code"]] = []
        if any(a == "revoke" for _, _, a in actions):
            self.ca.gencrl()
        if not self.pause("commit", new[-1]["seq"]):
            raise RuntimeError("paused too long")
        ms = int(time.time() * 1000)
        with self.ca.db() as db:
            db.execute("BEGIN IMMEDIATE")
            for e in new:
                db.execute("INSERT INTO feed VALUES (?,?,?,?,?,?)",
                           (e["seq"], e["id"], e["kind"], e["digest"], doc["id"], ms))
            for seq, what, action in actions:
                db.execute("INSERT INTO actions VALUES (?,?,?)", (seq, what, action))
                if action == "revoke":
                    db.execute("UPDATE certs SET status = 'revoked', revoked_seq = ? "
                               "WHERE serial = ?", (seq, what))
            for old, new_code in rekeyed.items():
                db.execute("UPDATE certs SET code = ? WHERE code = ?", (new_code, old))
            db.execute("UPDATE state SET last_seq = ?, last_digest = ?",
                       (new[-1]["seq"], prev))
            db.execute("COMMIT")
        if self.conf.get("ocsp_port"):
            with contextlib.suppress(OSError):
                Responder(self.ca, self.conf["ocsp_port"]).kick()
        self.log("committed seq %d..%d (%d actions)" % (new[0]["seq"], new[-1]["seq"],
                                                        len(actions)))
        return {"seq": last["seq"], "digest": last["digest"]}


# -- the test's handle -----------------------------------------------------------------------


class Authority:
    """The reference authority of a test: the CA in dir, its OCSP responder, its feed
    server process (listening at address with certificates from the network's PKI).

        auth = Authority(os.path.join(net.dir, "authority"), address).create()
        auth.serve(net)          # after the Network is up (its PKI made)

    For a Network, `configure=authority_node(holder)` puts ca:jpki in the gateway's
    directory at a free port and makes the Authority (holder[0]).
    """

    def __init__(self, dir, address, identity=IDENTITY):
        self.dir = os.path.abspath(dir)
        self.address = address
        self.identity = identity
        self.ca = CA(self.dir)
        self.responder = None
        self.proc = None
        self.conf = None

    def create(self, ocsp_port=None):
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.ca.create()
        if ocsp_port:
            self.responder = Responder(self.ca, ocsp_port).start()
        return self

    def serve(self, ca, cert=None, key=None, inner=None, crl=None,
              senders=("urn:juki:authlink:0",), none=False):
        """Start the feed server: outer certificate (cert, key) — None and none=True for
        no certificate at all — inner (cert, key) for another one in the inner session."""
        self.conf = {"listen": self.address, "identity": self.identity, "ca": ca, "crl": crl,
                     "outer": None if none else [cert, key], "inner": inner,
                     "senders": list(senders),
                     "ocsp_port": self.responder.port if self.responder else None}
        with open(os.path.join(self.dir, "serve.json"), "w") as f:
            json.dump(self.conf, f)
        return self.start()

    def start(self):
        ready = os.path.join(self.dir, "serve.ready")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ready)
        logf = open(os.path.join(self.dir, "serve.log"), "a")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "serve",
                                      self.dir], stdout=logf, stderr=subprocess.STDOUT)
        logf.close()

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("the authority exited: %s" % self.log_text()[-800:])
            return os.path.exists(ready)
        wait_for("the authority listening", up, 20)
        return self

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        self.kill9()  # nothing to flush: every commit is on disk before its ack
        if self.responder:
            self.responder.stop()

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "serve.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- pausing the feed server at a stage (see FeedServer) ---------------

    def pause_at(self, stage):
        with open(os.path.join(self.dir, "pause"), "w") as f:
            f.write(stage)

    def paused(self):
        try:
            with open(os.path.join(self.dir, "paused")) as f:
                return f.read().split()
        except FileNotFoundError:
            return None

    def release(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.dir, "pause"))

    # -- what it holds -----------------------------------------------------

    def issue(self, people):
        """Certificates for people: {code: (serial, cert path, key path)}; the responder
        told (kicked) so that it answers for them at once."""
        out = self.ca.issue(people)
        if self.responder:
            self.responder.kick()
        return out

    def last_seq(self):
        return self.ca.state()[0]

    def feed_rows(self):
        """[(seq, id, kind)] of every entry committed."""
        return self.ca.rows("SELECT seq, id, kind FROM feed ORDER BY seq")

    def actions(self):
        """[(seq, serial or code, "revoke" | "rekey")] in commit order."""
        return self.ca.rows("SELECT seq, serial, action FROM actions ORDER BY seq, serial")

    def certs_of(self, code):
        return [r[0] for r in self.ca.rows("SELECT serial FROM certs WHERE code = ?",
                                           (code,))]

    def ocsp(self, certs):
        """{cert path: "good" | "revoked"} from the running responder."""
        return self.responder.query(list(certs))

    def sign(self, cert, key, data=b"a document signed by a resident\n"):
        out = os.path.join(self.dir, "sig-%s.pem" % uuid7())
        return self.ca.sign(cert, key, data, out)

    def verify(self, sig):
        return self.ca.verify(sig)

    # -- the authority's own requests -------------------------------------

    def resend(self, gateway, cert, key, ca, authlink, from_seq):
        """ninsho.resend {"from": from_seq} to authlink through gateway; the ack."""
        with Peer(gateway, cert, key, ca) as p:
            answer = p.connect(authlink, "ninsho")
            if answer != "OK":
                raise AssertionError("CONNECT %s ninsho: %s" % (authlink, answer))
            m = p.message("ninsho.resend", self.identity, authlink, {"from": from_seq})
            return p.exchange(m)


def authority_node(holder, name="ca:jpki", ocsp=True):
    """A Network configure hook (or part of one): ca:jpki listed in the gateways'
    directory at a free port; an Authority (created, its responder started, not yet
    serving) appended to holder."""
    from jukitest import free_port

    def configure(net):
        address = "127.0.0.1:%d" % free_port()
        net.fake_nodes[name] = address
        auth = Authority(os.path.join(net.dir, "authority"), address)
        auth.create(ocsp_port=free_port() if ocsp else None)
        holder.append(auth)
    return configure


class FeedWriter:
    """Feed entries as juki-authlinkd numbers and chains them, for tests that play it."""

    def __init__(self):
        self.seq = 0
        self.digest = ZERO

    def entry(self, code, kind, date="2026-12-01", items=None, new_code=None):
        self.seq += 1
        e = {"seq": self.seq, "id": uuid7(), "code": code, "kind": kind, "date": date}
        if items is not None:
            e["items"] = items
        if new_code is not None:
            e["new_code"] = new_code
        self.digest = chain(self.digest, e)
        e["digest"] = self.digest
        return e

    @staticmethod
    def body(entries, ca=IDENTITY):
        return {"header": {"ca": ca, "source": "urn:juki:jlis:0", "agreement": uuid7(),
                           "retention_days": 30}, "entries": entries}


# -- self-test --------------------------------------------------------------------------------


def selftest():
    """The CA side without juki: issue, sign, verify, revoke, CRL, OCSP before and after,
    the digest chain; and a feed message to the server played straight (as the gateway)."""
    from jukitest.synth import Synth
    with tempfile.TemporaryDirectory(prefix="juki-authority-") as tmp:
        ca = CA(os.path.join(tmp, "ca"))
        ca.create()
        s = Synth(seed=7)
        people = [s.person("131016") for _ in range(3)]
        certs = ca.issue(people)
        assert len({c[0] for c in certs.values()}) == 3, certs
        subject = run(["openssl", "x509", "-in", certs[people[0]["code"]][1], "-noout",
                       "-subject", "-nameopt", "utf8"])
        assert people[0]["name"] in subject and people[0]["code"] not in subject, subject
        port = _free_port()
        r = Responder(ca, port).start()
        try:
            paths = [certs[p["code"]][1] for p in people]
            assert set(r.query(paths).values()) == {"good"}
            sigs = [ca.sign(c[1], c[2], b"x", os.path.join(tmp, "s%d.pem" % i))
                    for i, c in enumerate(certs.values())]
            assert all(ca.verify(sg)[0] for sg in sigs)
            serial = certs[people[1]["code"]][0]
            assert ca.revoke(serial, "cessationOfOperation")
            assert not ca.revoke(serial, "cessationOfOperation")  # once
            ca.gencrl()
            # The responder reloads index.txt only at the top of its loop: after a kick.
            r.kick()
            st = r.query(paths)
            assert [st[p] for p in paths] == ["good", "revoked", "good"], st
            ok, why = ca.verify(sigs[1])
            assert not ok and "revoked" in why, why
            assert ca.verify(sigs[0])[0] and ca.verify(sigs[2])[0]
        finally:
            r.stop()
        # The running digest: d_1 from 32 zero bytes.
        e = {"seq": 1, "id": "0190a000-0000-7000-8000-000000000001", "code": "12345678901",
             "kind": "death", "date": "2026-12-01"}
        assert entry_line(e) == ("juki-ninsho-feed/1\n1\n%s\n12345678901\ndeath\n2026-12-01\n"
                                 "\n\n\n\n\n\n" % e["id"]).encode()
        assert chain(ZERO, e) == hashlib.sha256(bytes(32) + entry_line(e)).hexdigest()
    print("authority self-test passed")


def _free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


USAGE = """usage: authority.py COMMAND ...  (the reference authority of the tests, for the demo)
  create DIR LISTEN CERT KEY CA CRL OCSP_PORT   a new CA in DIR; its node port's settings
  responder DIR                                 run the OCSP responder (foreground)
  serve DIR                                     run the node port (foreground)
  issue DIR PEOPLE.json                         certificates for a JSON list of people
  ocsp DIR CERT...                              ask the responder: CERT: good|revoked
  sign DIR CERT KEY OUT                         sign stdin (CMS) with a resident's key
  verify DIR SIG                                openssl cms -verify -crl_check
  state DIR                                     the last seq committed and its digest
  selftest                                      a self-check of the CA side"""


def cli(argv):
    cmd, rest = (argv[0], argv[1:]) if argv else ("", [])
    if cmd == "selftest" and not rest:
        return selftest()
    if not rest:
        sys.exit(USAGE)
    ca = CA(rest[0])
    if cmd == "create" and len(rest) == 7:
        os.makedirs(ca.dir, mode=0o700, exist_ok=True)
        ca.create()
        conf = {"listen": rest[1], "identity": IDENTITY, "ca": os.path.abspath(rest[4]),
                "crl": os.path.abspath(rest[5]),
                "outer": [os.path.abspath(rest[2]), os.path.abspath(rest[3])],
                "inner": None, "senders": ["urn:juki:authlink:0"], "ocsp_port": int(rest[6])}
        with open(os.path.join(ca.dir, "serve.json"), "w") as f:
            json.dump(conf, f)
        print("CA %s: %s" % (ca.dir, run(["openssl", "x509", "-in", ca.cert, "-noout",
                                          "-subject"]).strip()))
    elif cmd == "responder" and len(rest) == 1:
        with open(os.path.join(ca.dir, "serve.json")) as f:
            r = Responder(ca, json.load(f)["ocsp_port"])
        r.start()
        print("OCSP responder on port %d" % r.port, flush=True)
        # Stopped: stop openssl; the wait below then returns (never wait in the handler).
        signal.signal(signal.SIGTERM, lambda *_: r.proc.terminate())
        signal.signal(signal.SIGINT, lambda *_: r.proc.terminate())
        r.proc.wait()
    elif cmd == "serve" and len(rest) == 1:
        FeedServer(rest[0]).serve()
    elif cmd == "issue" and len(rest) == 2:
        with open(rest[1], encoding="utf-8") as f:
            people = json.load(f)
        for code, (serial, cert, _) in ca.issue(people).items():
            print("%s %s" % (serial, cert))
        with open(os.path.join(ca.dir, "serve.json")) as f:
            Responder(ca, json.load(f)["ocsp_port"]).kick()
    elif cmd == "ocsp" and len(rest) >= 2:
        with open(os.path.join(ca.dir, "serve.json")) as f:
            r = Responder(ca, json.load(f)["ocsp_port"])
        for c, v in r.query(rest[1:]).items():
            print("%s: %s" % (c, v))
    elif cmd == "sign" and len(rest) == 4:
        ca.sign(rest[1], rest[2], sys.stdin.buffer.read(), rest[3])
    elif cmd == "verify" and len(rest) == 2:
        ok, why = ca.verify(rest[1])
        print("verified" if ok else "NOT verified: %s" % why)
        return 0 if ok else 1
    elif cmd == "state" and len(rest) == 1:
        print("last seq %d, digest %s" % ca.state())
    else:
        sys.exit(USAGE)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
