"""A hand-driven juki peer, for tests that must send what juki never would.

It speaks the wire protocol of docs/protocol.md directly: outer TLS 1.3 to a
gateway with some identity's certificate, the CONNECT line, then the inner
TLS 1.3 session through the tunnel (an ssl.SSLObject over memory BIOs) and
length-prefixed JSON frames inside it.
"""

import json
import os
import socket
import ssl
import struct
import threading
import time
import uuid


def tls_context(cert, key, ca, version=ssl.TLSVersion.TLSv1_3):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = version
    ctx.maximum_version = version
    ctx.check_hostname = False  # identities are SAN URIs, checked below
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def san_uri(cert_dict):
    for kind, value in cert_dict.get("subjectAltName", ()):
        if kind == "URI":
            return value
    return None


def uuid7():
    ms = int(time.time() * 1000)
    b = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    b[6] = 0x70 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(b)))


def now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t % 1 * 1000)


def tcp_connect(address, source=None, timeout=10):
    """A plain TCP connection to "host:port", optionally from source host."""
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout,
                                    source_address=(source, 0) if source else None)


def addr_text(sockname):
    """("127.0.0.1", 5000) -> "127.0.0.1:5000", as daemons write addresses."""
    return "%s:%d" % sockname[:2]


def read_until_closed(sock, limit=65536):
    """Everything sock receives until the other end closes (or resets) it."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def plain_exchange(address, data, source=None, timeout=10):
    """Speak in clear to a TLS port: send data, return (reply, our "host:port").

    The reply is whatever came back before the server closed the connection;
    socket.timeout propagates if it never does.
    """
    with tcp_connect(address, source, timeout) as s:
        local = addr_text(s.getsockname())
        s.sendall(data)
        return read_until_closed(s), local


class Peer:
    """inner=(cert, key) presents another certificate in the inner session than in
    the outer one (a gateway's forgery); source binds the outer connection there."""

    def __init__(self, gateway_address, cert, key, ca, timeout=10, source=None, inner=None):
        self.gateway = gateway_address
        self.cert, self.key, self.ca = cert, key, ca
        self.inner_cert = inner or (cert, key)
        self.timeout = timeout
        self.source = source
        self.sock = None
        self.inner = None
        self.pending = b""
        self.local = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- outer ------------------------------------------------------------

    def open_outer(self):
        raw = tcp_connect(self.gateway, self.source, self.timeout)
        self.local = addr_text(raw.getsockname())
        ctx = tls_context(self.cert, self.key, self.ca)
        try:
            self.sock = ctx.wrap_socket(raw)
        except BaseException:
            raw.close()
            raise
        return san_uri(self.sock.getpeercert())

    def refused_in_handshake(self, line="CONNECT urn:juki:cs:271004 muni"):
        """Outer TLS with our certificate, then a request line; returns why it failed.

        In TLS 1.3 the client finishes its handshake before the server has
        judged the client's certificate, so a refusal of our certificate shows
        as an alert or a closed connection on the first read, never as an
        answer.  Returns the alert text ("" for a bare close); raises when the
        gateway answers anything at all.
        """
        try:
            self.open_outer()
            self.sock.sendall(line.encode() + b"\n")
            data = self.sock.recv(1024)
        except ssl.SSLError as e:
            return e.reason or str(e)
        except (ConnectionResetError, BrokenPipeError):
            return ""
        finally:
            self.close()
        if data:
            raise AssertionError("the gateway answered %r" % data)
        return ""

    def readline(self):
        line = b""
        while not line.endswith(b"\n"):
            c = self.sock.recv(1)
            if not c:
                break
            line += c
        return line.decode(errors="replace").rstrip("\r\n")

    def request(self, line, newline=True):
        """Send one raw request line (bytes or str, newline added) and read the answer."""
        if isinstance(line, str):
            line = line.encode()
        self.sock.sendall(line + (b"\n" if newline else b""))
        return self.readline()

    def outer_closed(self):
        """True when the gateway closes the outer connection without another byte."""
        try:
            return self.sock.recv(1) == b""
        except (ssl.SSLError, ConnectionResetError):
            return True

    def connect(self, dest, service):
        """Outer TLS + CONNECT; on OK, the inner TLS session to dest.  Returns the answer."""
        if self.sock is None:
            self.open_outer()
        answer = self.request("CONNECT %s %s" % (dest, service))
        if answer == "OK":
            self.start_inner(dest)
        return answer

    # -- inner ------------------------------------------------------------

    def start_inner(self, dest):
        ctx = tls_context(self.inner_cert[0], self.inner_cert[1], self.ca)
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.inner = ctx.wrap_bio(self.inb, self.outb, server_side=False)
        while True:
            try:
                self.inner.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()
        peer = san_uri(self.inner.getpeercert())
        if peer != dest:
            raise AssertionError("inner peer is %s, expected %s" % (peer, dest))

    def _flush(self):
        data = self.outb.read()
        if data:
            self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("tunnel closed")
        self.inb.write(data)

    def send_bytes(self, data):
        self.inner.write(data)
        self._flush()

    def send_frames(self, docs):
        """Several messages in one write, so that the receiver reads them in one turn."""
        out = b""
        for doc in docs:
            payload = json.dumps(doc, ensure_ascii=False).encode()
            out += struct.pack(">I", len(payload)) + payload
        self.send_bytes(out)

    def send_frame(self, doc):
        payload = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
        self.send_bytes(struct.pack(">I", len(payload)) + payload)

    def _read_inner(self, n):
        while len(self.pending) < n:
            try:
                chunk = self.inner.read(65536)
                if not chunk:
                    raise ConnectionError("inner session closed")
                self.pending += chunk
            except ssl.SSLWantReadError:
                self._fill()
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def send_frame_header(self, length, payload=b""):
        """Announce a frame of length bytes; send only payload of it."""
        self.send_bytes(struct.pack(">I", length) + payload)

    def recv_frame(self):
        (n,) = struct.unpack(">I", self._read_inner(4))
        return json.loads(self._read_inner(n))

    def exchange(self, doc):
        """Send one message (a dict, or raw bytes as the frame's payload); return the ack."""
        self.send_frame(doc)
        return self.recv_frame()

    def closed(self):
        """True when the tunnel is (or becomes) closed without sending anything more."""
        try:
            self._read_inner(1)
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            return True

    def message(self, type_, sender, to, body, **header):
        doc = {"v": 1, "id": uuid7(), "type": type_, "from": sender, "to": to,
               "time": now(), "corr": None, "body": body}
        doc.update(header)
        return doc

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.inner = None


class FakeNode:
    """A node port played by the test, to see what a real juki sender does with answers no
    juki receiver gives.

    It listens on address with node's certificate (the gateway requires it to name the
    node), takes a gateway's outer TLS and FROM line, answers OK, and serves the inner TLS
    session. For each message received, answer(conn, doc) returns the frames to send back
    (dicts; conn counts connections from 0), or None to close the tunnel at once without a
    word. Every message received is kept in received as (conn, doc). Before its handshake a
    connection waits for hold (a threading.Event, set at the start) to be set.
    """

    def __init__(self, address, cert, key, ca, answer):
        self.answer = answer
        self.received = []
        self.conns = 0
        self.hold = threading.Event()
        self.hold.set()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = self.ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(ca)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.num_tickets = 0
        host, port = address.rsplit(":", 1)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, int(port)))
        self.lsock.listen(8)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self.stopping = True
        self.hold.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        self.thread.join(10)

    def _serve(self):
        while not self.stopping:
            try:
                raw, _ = self.lsock.accept()
            except OSError:
                return
            conn = self.conns
            self.conns += 1
            threading.Thread(target=self._one, args=(raw, conn), daemon=True).start()

    def _one(self, raw, conn):
        raw.settimeout(30)
        self.hold.wait(30)
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as outer:
                line = b""
                while not line.endswith(b"\n"):
                    c = outer.recv(1)
                    if not c:
                        return
                    line += c
                if not line.startswith(b"FROM "):
                    return
                outer.sendall(b"OK\n")
                self._inner(outer, conn)
        except (OSError, ssl.SSLError, ValueError):
            pass

    def _inner(self, outer, conn):
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        inner = self.ctx.wrap_bio(inb, outb, server_side=True)

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
                inner.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                fill()
        flush()
        pending = b""

        def read(n):
            nonlocal pending
            while len(pending) < n:
                try:
                    chunk = inner.read(65536)
                    if not chunk:
                        raise ConnectionError("inner session closed")
                    pending += chunk
                except ssl.SSLWantReadError:
                    fill()
            out, pending = pending[:n], pending[n:]
            return out

        while not self.stopping:
            (n,) = struct.unpack(">I", read(4))
            doc = json.loads(read(n))
            self.received.append((conn, doc))
            frames = self.answer(conn, doc)
            if frames is None:
                return  # the with-block closes the socket: a bare EOF, no close_notify
            for f in frames:
                payload = json.dumps(f, ensure_ascii=False).encode()
                inner.write(struct.pack(">I", len(payload)) + payload)
            flush()


def ack_of(doc, status="accepted", **header):
    """The ack a receiver would give doc; header members overridden."""
    ack = {"v": 1, "id": uuid7(), "type": "ack", "from": doc["to"], "to": doc["from"],
           "time": now(), "corr": doc["id"], "body": {"status": status}}
    ack.update(header)
    return ack
