"""juki integration-test harness.

Starts the real binaries in a fresh temporary directory with a generated PKI,
configurations from templates and free loopback ports; waits for readiness by
asking each daemon (`juki-ctl status`), never by sleeping; always stops what
it started, and prints the daemons' logs when a case fails.

    with Network(["fwgate:east", "cs:131016", "cs:271004", "pref:13"]) as net:
        net.ctl("cs:131016", "resident", "add", ...)

Only the Python standard library is used.
"""

import contextlib
import errno
import fcntl
import glob
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("JUKI_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "build")
SOURCE = os.environ.get("JUKI_SOURCE_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..")

BINARIES = {
    "fwgate": "fwgate/juki-fwgated",
    "cs": "cs/juki-csd",
    "pref": "prefserver/juki-prefd",
    "jlis": "jlisserver/juki-jlisd",
    "authlink": "authlink/juki-authlinkd",
}
CTL = os.path.join(BUILD, "ctl", "juki-ctl")

# What a sanitizer writes when it finds something (builds with JUKI_SANITIZE).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error: ")

# Exit codes of juki-ctl (ctl/ctl.h).
CTL_OK, CTL_FAILED, CTL_USAGE, CTL_UNREACHABLE, CTL_WRONG_PIN, CTL_LOCKED = 0, 1, 2, 3, 4, 5

# What juki-ctl commands are clerical work, done by an operator on the operator port
# (the local socket is the administrator's: 第2-3(1)); their first word.
CLERICAL = {"resident", "movein", "import", "person", "confirmations", "lookup", "export"}

# The data sets of each kind of server (docs/control.md §7.4).
DATASETS = {"cs": ["honnin", "tennyu"], "pref": ["honnin", "kakutei", "provide"],
            "jlis": ["honnin", "provide"]}

# The certification authority the link servers feed (第6-8(6)); a test plays it (FakeNode, or
# the reference authority of tests/integration/jukitest/authority.py).
CA = "urn:juki:ca:jpki"

# Every test operator's PIN unless a test says otherwise, and its card's.
PIN = "246810"
CARD_PIN = "card-1357"
# The user PIN of a node's token (Daemon.key_on_token).
TOKEN_PIN = "node-8642"


def watchers_of(node, centres=("urn:juki:jlis:0",)):
    """The nodes node sends heartbeats to by default (monitor.watchers: auto): its
    prefecture, and every national centre (centres: the network's jlis nodes)."""
    kind, nid = node.split(":")[2], node.split(":")[3]
    out = []
    if kind == "cs" or kind == "authlink" and nid != "0":
        out.append("urn:juki:pref:%s" % nid[:2])
    # Every national centre; a centre, the others.
    out += [c for c in centres if c != node]
    return out


class Netns:
    """A network namespace of its own for one node, joined to the host by a veth pair: the
    node listens at ns_ip, the gateways also at host_ip, so the line between them is the
    pair, and cut() takes it down (the link set down on the host's side) and restore()
    brings it back. Needs root (ip netns, ip link); close() removes both."""

    _made = 0

    def __init__(self, tag):
        Netns._made += 1
        n = (os.getpid() * 8 + Netns._made) % 250 + 2
        self.name = "juki-%d-%s" % (os.getpid(), tag)
        self.host_if = "jk%d%s" % (os.getpid() % 100000, tag[:2])
        self.ns_if = self.host_if + "n"
        self.host_ip = "10.%d.%d.1" % (200 + Netns._made, n)
        self.ns_ip = "10.%d.%d.2" % (200 + Netns._made, n)
        self._ip("netns", "add", self.name)
        try:
            self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            self._ip("link", "set", self.ns_if, "netns", self.name)
            self._ip("addr", "add", self.host_ip + "/30", "dev", self.host_if)
            self._ip("link", "set", self.host_if, "up")
            self._ip("-n", self.name, "addr", "add", self.ns_ip + "/30", "dev", self.ns_if)
            self._ip("-n", self.name, "link", "set", self.ns_if, "up")
            self._ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _ip(*args, check=True):
        r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
        return r

    @staticmethod
    def available():
        """Whether this host lets the test make namespaces (root, ip, netns allowed)."""
        if os.geteuid() != 0 or shutil.which("ip") is None:
            return False
        probe = "juki-probe-%d" % os.getpid()
        r = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
        return r.returncode == 0

    def cut(self):
        self._ip("link", "set", self.host_if, "down")

    def restore(self):
        self._ip("link", "set", self.host_if, "up")
        # The address's route comes back with the link: wait until the kernel has it.
        wait_until("the line to %s" % self.name, lambda: self.ns_ip.rsplit(".", 1)[0] in
                   self._ip("route", "show", "dev", self.host_if).stdout, timeout=10)

    def close(self):
        self._ip("link", "del", self.host_if, check=False)
        self._ip("netns", "del", self.name, check=False)


class Timeout(AssertionError):
    pass


def wait_until(what, predicate, timeout=30.0, interval=0.02):
    """Poll predicate() until it returns a true value; fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except Exception as e:  # a daemon restarting, a socket not there yet
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise Timeout("timed out waiting for %s (last: %r)" % (what, last))
        time.sleep(interval)


_ports = random.Random(os.getpid() ^ time.monotonic_ns())


# Ports handed out by this process, each held by a lock on a file under _PORT_LOCKS until the
# process ends: tests run in parallel (ctest -j), and a port checked free by one of them stays
# free only until its daemon binds it, long enough for another test to pick it too. The lock
# files stay (empty, one per port ever used).
_PORT_LOCKS = os.path.join(tempfile.gettempdir(), "juki-it-ports")
_held_ports = {}


def free_port():
    """A loopback port free now and reserved for this process, below the ephemeral range: a
    port the kernel hands out for outgoing connections (bind to 0) may be taken by one of them
    when a daemon is restarted on it."""
    low, _ = (int(v) for v in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    os.makedirs(_PORT_LOCKS, exist_ok=True)
    while True:
        port = _ports.randint(10000, low - 1)
        if port in _held_ports:
            continue
        fd = os.open(os.path.join(_PORT_LOCKS, str(port)), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                os.close(fd)
                continue
        _held_ports[port] = fd
        return port


def urn(name):
    return name if name.startswith("urn:juki:") else "urn:juki:" + name


def fname(name):
    """cs:131016 -> cs-131016 (juki_ident_filename)."""
    return urn(name)[len("urn:juki:"):].replace(":", "-")


class CtlError(AssertionError):
    def __init__(self, args, code, out, err):
        super().__init__("juki-ctl %s: exit %d: %s%s" % (" ".join(args), code, err, out))
        self.code = code
        self.out = out
        self.err = err


def secret_fd(text):
    """A pipe holding one line of text, its read end to pass to juki-ctl (--pin-fd N)."""
    r, w = os.pipe()
    os.write(w, (text + "\n").encode())
    os.close(w)
    return r


def run_ctl(*args, socket_path=None, check=True, json_out=True, input=None, timeout=60,
            pre=(), fds=(), env=None):
    """Run juki-ctl; returns the parsed JSON result (or (code, out, err) when check=False).

    pre: options before the command (terminal options); fds: descriptors it inherits
    (closed here afterwards); env: more environment."""
    argv = [CTL]
    if socket_path:
        argv += ["-s", socket_path]
    argv += [str(a) for a in pre]
    if json_out:
        argv.append("--json")
    argv += [str(a) for a in args]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout,
                           pass_fds=tuple(fds), env=dict(os.environ, **env) if env else None)
    finally:
        for fd in fds:
            os.close(fd)
    if not check:
        return p.returncode, p.stdout, p.stderr
    if p.returncode != 0:
        raise CtlError(argv[1:], p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout) if json_out else p.stdout


class Operator:
    """An operator of one daemon with a card: a certificate and its key, in an encrypted key
    file or on a SoftHSM2 token (tests/fixtures/softhsm-card.sh)."""

    def __init__(self, daemon, op_id, pin=PIN, token=False):
        self.daemon = daemon
        self.id = op_id
        self.pin = pin
        self.urn = "urn:juki:op:%s:%s" % (daemon.urn[len("urn:juki:"):], op_id)
        net = daemon.net
        stem = os.path.join(net.pki, fname(self.urn))
        self.cert, self.key = stem + ".crt", stem + ".key"
        self.card = None
        self.env = None
        self.use_crl = True  # give the terminal the network's CRL
        fd = secret_fd(CARD_PIN)
        run_ctl("pki", "issue", "--encrypt", "--pin-fd", fd, net.pki, self.urn, fds=(fd,))
        if token:
            plain = stem + ".plain.key"
            subprocess.run(["openssl", "pkey", "-in", self.key, "-passin",
                            "pass:" + CARD_PIN, "-out", plain], check=True,
                           capture_output=True)
            out = subprocess.run([os.path.join(SOURCE, "tests", "fixtures", "softhsm-card.sh"),
                                  stem + ".token", "card-" + op_id, CARD_PIN, plain],
                                 check=True, capture_output=True, text=True).stdout
            os.unlink(plain)
            vals = dict(line.split("=", 1) for line in out.split())
            self.card = vals["URI"]
            self.env = {"SOFTHSM2_CONF": vals["SOFTHSM2_CONF"]}

    def terminal(self):
        net = self.daemon.net
        opts = ["--connect", self.daemon.op_address, "--cert", self.cert, "--ca", net.ca()]
        if self.use_crl:
            opts += ["--crl", os.path.join(net.pki, "crl.pem")]
        return opts + (["--card", self.card] if self.card else ["--key", self.key])

    def ctl(self, *args, pin=None, card_pin=CARD_PIN, fds=(), **kw):
        """juki-ctl on the operator port as this operator; the PINs go through pipes
        (fds: more descriptors for the command, such as --new-pin-fd)."""
        pin_fd, card_fd = secret_fd(pin or self.pin), secret_fd(card_pin)
        pre = self.terminal() + ["--pin-fd", pin_fd, "--card-pin-fd", card_fd]
        return run_ctl(*args, pre=pre, fds=(pin_fd, card_fd) + tuple(fds), env=self.env, **kw)


_sections = {}


def knows_section(binary, section):
    """Whether a daemon's configuration has section (its --help-config lists section.*)."""
    key = (binary, section)
    if key not in _sections:
        out = subprocess.run([binary, "--help-config"], capture_output=True, text=True).stdout
        _sections[key] = any(line.lstrip().startswith(section + ".")
                             for line in out.splitlines())
    return _sections[key]


class Daemon:
    """One daemon of the network: its config, process, log and control socket."""

    def __init__(self, net, name, kind):
        self.net = net
        self.name = name
        self.urn = urn(name)
        self.kind = kind
        self.binary = os.path.join(BUILD, BINARIES[kind])
        self.config = os.path.join(net.dir, fname(name) + ".yaml")
        self.socket = os.path.join(net.dir, fname(name) + ".sock")
        self.store = os.path.join(net.dir, fname(name) + ".db")
        self.log = os.path.join(net.dir, fname(name) + ".log")
        self.spool = os.path.join(net.dir, fname(name) + ".spool")
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.proc = None
        self.netns = None  # a Netns the daemon runs in (Network.put_in_netns())
        self.listen_extra = []  # more listen addresses (a gateway's side of a Netns line)
        self.gateway_addrs = None  # the gateways' addresses as seen from this node (None: own)
        self.extra = {}  # more top-level keys, written as given
        self.env = {}  # more environment for the process
        self.imports = {}  # cs: more keys of the import section
        self.delivery = {"backoff_min": "50ms", "backoff_max": "1s", "failback": "1s"}
        self.limits = {}
        # Keys of the monitor section, written as given (monitor.h). Without Network(monitor=
        # True) a node sends no heartbeats (watchers: []) unless a test sets watchers here.
        self.monitor = {}
        self.policy = None  # a policy file of its own; None: the network's
        # authlink: keys of its authlink section (ca, sources, keep, lag_alert), written as given.
        self.authlink = {"ca": CA, "lag_alert": "10m"} if kind == "authlink" else {}
        # jlis, pref: keys of the ninsho section (part of the source side); when authlink:0 is
        # in the network and jlis knows the section, jlis sends to it for the authority CA.
        self.ninsho = {}
        self.operators = {}  # id -> Operator
        self.token = None  # Daemon.key_on_token(): {"uri", "pin_file", "dir", "conf", "key"}
        if kind in DATASETS:
            self.op_address = "127.0.0.1:%d" % free_port()
            # Cheap PIN verifiers: the cost is not what the tests test.
            self.operator = {"pin_memory": "64KiB", "pin_passes": 1}

    def write_config(self):
        pki = self.net.pki
        f = fname(self.name)
        lines = [
            "node: %s" % self.urn,
            "tls:",
            "  cert: %s/%s.crt" % (pki, f),
            "  key: %s/%s.key" % (pki, f) if self.token is None
            else "  key: '%s'\n  pin_file: %s" % (self.token["uri"], self.token["pin_file"]),
            "  ca: %s/ca.crt" % pki,
            "  crl: %s/crl.pem" % pki,
            "listen: [%s]" % ", ".join([self.address] + self.listen_extra),
            "policy: %s" % (self.policy or self.net.policy),
            "control: %s" % self.socket,
        ]
        if "log_level" not in self.extra:
            lines.append("log_level: debug")
        if self.kind == "fwgate":
            lines.append("directory:")
            for d in self.net.daemons.values():
                if d.kind != "fwgate":
                    lines.append("  - {node: %s, address: '%s'}" % (d.urn, d.address))
            for name, address in self.net.fake_nodes.items():
                lines.append("  - {node: %s, address: '%s'}" % (urn(name), address))
        else:
            gws = self.gateway_addrs or [self.net.daemons[g].address
                                         for g in self.net.gateway_order]
            lines.append("gateways: [%s]" % ", ".join("'%s'" % g for g in gws))
            lines.append("store: %s" % self.store)
            lines.append("delivery:")
            lines += ["  %s: %s" % kv for kv in self.delivery.items()]
        centres = self.net.centres()
        if (self.kind == "pref" and centres != ["urn:juki:jlis:0"] and centres
                and "national" not in self.extra and "centres" not in self.extra):
            # Two national centres (or one not named 0): every one gets every record.
            lines.append("national: %s" % centres[0])
            lines.append("centres: [%s]" % ", ".join(centres))
        if self.kind == "cs":
            lines.append("import:")
            lines.append("  spool: %s" % self.spool)
            lines.append("  scan_interval: 50ms")
            lines += ["  %s: %s" % kv for kv in self.imports.items()]
        if self.kind in DATASETS:
            lines.append("operator:")
            lines.append("  listen: ['%s']" % self.op_address)
            lines += ["  %s: %s" % kv for kv in self.operator.items()]
        if self.authlink:
            lines.append("authlink:")
            lines += ["  %s: %s" % kv for kv in self.authlink.items()]
        ninsho = dict(self.ninsho)
        if (self.kind == "jlis" and "authlink:0" in self.net.daemons and not ninsho
                and knows_section(self.binary, "ninsho")):
            ninsho = {"authlink": "urn:juki:authlink:0", "ca": CA}
        if ninsho:
            lines.append("ninsho:")
            lines += ["  %s: %s" % kv for kv in ninsho.items()]
        if self.kind != "fwgate":
            mon = {}
            if self.net.monitor:
                present = [w for w in watchers_of(self.urn, self.net.centres())
                           if w in self.net.urns()]
                mon.update({"interval": "1s", "down_after": "4s",
                            "watchers": "[%s]" % ", ".join(present)})
            else:
                mon["watchers"] = "[]"
            centres = self.net.centres()
            if centres and centres != ["urn:juki:jlis:0"]:
                mon["centres"] = "[%s]" % ", ".join(centres)
            mon.update(self.monitor)
            lines.append("monitor:")
            lines += ["  %s: %s" % kv for kv in mon.items()]
        if self.limits:
            lines.append("limits:")
            lines += ["  %s: %s" % kv for kv in self.limits.items()]
        for k, v in self.extra.items():
            lines.append("%s: %s" % (k, v))
        with open(self.config, "w") as out:
            out.write("\n".join(lines) + "\n")

    def key_on_token(self, generate=False):
        """Put this daemon's key on a SoftHSM2 token of its own and out of its key file
        (tls.key: a pkcs11: URI, tls.pin_file: a 0600 file): the key the PKI made is
        imported (its PEM kept in self.token["key"] for tests that look for it), or, with
        generate, a new key is made on the token by `juki-ctl pki issue --token` after the
        PKI's certificate of this node is revoked.  Call it in Network's configure."""
        net, f = self.net, fname(self.name)
        tdir = os.path.join(net.dir, f + ".token")
        keyfile = os.path.join(net.pki, f + ".key")
        label, obj = "node-" + f, "node-key"
        with open(keyfile) as kf:
            pem = kf.read()
        fixture = os.path.join(SOURCE, "tests", "fixtures", "softhsm-card.sh")
        out = subprocess.run([fixture, tdir, label, TOKEN_PIN, "-" if generate else keyfile,
                              obj], check=True, capture_output=True, text=True).stdout
        vals = dict(line.split("=", 1) for line in out.split())
        uri = "pkcs11:token=%s;object=%s;type=private" % (label, obj)
        env = {"SOFTHSM2_CONF": vals["SOFTHSM2_CONF"]}
        if generate:
            pem = None
            run_ctl("pki", "revoke", net.pki, self.urn)
            fd = secret_fd(TOKEN_PIN)
            run_ctl("pki", "issue", "--token", uri, "--pin-fd", fd, net.pki, self.urn,
                    fds=(fd,), env=env)
        if os.path.exists(keyfile):
            os.unlink(keyfile)
        pin_file = os.path.join(tdir, "pin")
        fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, (TOKEN_PIN + "\n").encode())
        os.close(fd)
        self.env.update(env)
        self.token = {"uri": uri, "pin_file": pin_file, "dir": tdir, "key": pem,
                      "conf": vals["SOFTHSM2_CONF"]}
        return self.token

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        logf = open(self.log, "a")
        logf.write("---- start %s\n" % time.strftime("%H:%M:%S"))
        logf.flush()
        # In a namespace: `ip netns exec` runs the daemon in its place (same process).
        argv = (["ip", "netns", "exec", self.netns.name] if self.netns else []) + [
            self.binary, "-f", self.config]
        self.proc = subprocess.Popen(argv, stdout=logf,
                                     stderr=subprocess.STDOUT, cwd=self.net.dir,
                                     env=dict(os.environ, **self.env) if self.env else None)
        logf.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %d" % (self.name, self.proc.returncode))
            code, out, _ = run_ctl("status", socket_path=self.socket, check=False)
            return code == 0 and json.loads(out).get("ready")
        wait_until("%s ready" % self.name, ready, timeout)

    def ctl(self, *args, **kw):
        """juki-ctl on this daemon: clerical commands as its clerk on the operator port,
        the rest as the administrator on the local socket."""
        if args and args[0] in CLERICAL and self.kind in DATASETS:
            return self.clerk().ctl(*args, **kw)
        return self.admin(*args, **kw)

    def admin(self, *args, **kw):
        """juki-ctl on the local socket: the host's administrator."""
        return run_ctl(*args, socket_path=self.socket, **kw)

    def add_operator(self, op_id, roles, datasets=None, pin=PIN, token=False):
        """A card for op_id and its row on the daemon (by the administrator)."""
        op = Operator(self, op_id, pin=pin, token=token)
        fd = secret_fd(pin)
        self.admin("operator", "add", op_id, "--roles", ",".join(roles), "--datasets",
                   ",".join(datasets or DATASETS[self.kind]), "--new-pin-fd", fd, fds=(fd,))
        self.operators[op_id] = op
        return op

    def clerk(self):
        """The daemon's everyday clerk (every data set), made on first use."""
        return self.operators.get("clerk") or self.add_operator("clerk", ["clerk"])

    def status(self):
        return self.ctl("status")

    def alerts(self, max=1000):
        """`juki-ctl alerts --json`: {"total", "counts": {code: n}, "recent": [...]}."""
        return self.ctl("alerts", "--max", max)

    def alert_counts(self):
        return self.alerts(0)["counts"]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """Graceful stop (SIGTERM); returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not stop within %ss of SIGTERM" % (self.name, timeout))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


class Network:
    """A juki network on loopback: PKI, policy, gateways, nodes.

    names: identities like "fwgate:east", "cs:131016", "pref:13".  Gateways are
    listed to every node in the order given (the first is the primary line).
    extra_identities get certificates but no daemon (test peers, attackers).
    configure(net), when given, runs after the PKI is made and before any
    configuration is written: the place to set a daemon's extra keys or policy.
    """

    def __init__(self, names, extra_identities=(), keep=None, configure=None, monitor=False):
        self.names = list(names)
        # monitor: every node sends heartbeats (every 1s) to its watchers among names, and the
        # boards call a node down after 4s of silence; otherwise no node sends any.
        self.monitor = monitor
        self.extra_identities = list(extra_identities)
        self.configure = configure
        self.keep = keep if keep is not None else bool(os.environ.get("JUKI_KEEP"))
        self.dir = None
        self.daemons = {}
        self.gateway_order = []
        # Nodes a test plays itself (jukitest.peer.FakeNode): name -> "host:port", listed in
        # every gateway's directory. Set them in configure; give them extra_identities. A
        # test-played certification authority: fake_nodes["ca:jpki"] = address (play_node()).
        self.fake_nodes = {}
        self.namespaces = []  # Netns made by put_in_netns(), removed at the end

    # -- set-up -----------------------------------------------------------

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="juki-it-")
        self.pki = os.path.join(self.dir, "pki")
        self.policy = os.path.join(self.dir, "policy.yaml")
        shutil.copy(os.path.join(SOURCE, "conf", "policy.yaml"), self.policy)
        for n in self.names:
            kind = urn(n).split(":")[2]
            d = Daemon(self, n, kind)
            self.daemons[n] = d
            if kind == "fwgate":
                self.gateway_order.append(n)
        topo = os.path.join(self.dir, "topology.yaml")
        with open(topo, "w") as f:
            f.write("ca: juki test CA\nnodes:\n")
            for n in self.names + self.extra_identities:
                f.write("  - %s\n" % urn(n))
        run_ctl("pki", "init", "--out", self.pki, topo)
        try:
            if self.configure is not None:
                self.configure(self)
            for d in self.daemons.values():
                d.write_config()
            # Gateways first so that nodes find a line at once.
            for d in self.gateways():
                d.start(wait=False)
            for d in self.nodes():
                d.start(wait=False)
            for d in self.daemons.values():
                d.wait_ready()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        problems = []
        for d in self.daemons.values():
            if d.running():
                try:
                    rc = d.stop()
                    if rc != 0:
                        problems.append("%s exited with %s after SIGTERM" % (d.name, rc))
                except AssertionError as e:
                    problems.append(str(e))
            for marker in SANITIZER_MARKERS:
                if marker in d.log_text():
                    problems.append("%s: %s in %s" % (d.name, marker.strip(), d.log))
        if exc_type is None and problems:
            self.dump_logs()
            self.keep = True
            raise AssertionError("; ".join(problems))
        if exc_type is not None:
            self.dump_logs()
        for ns in self.namespaces:
            ns.close()
        if self.keep or exc_type is not None and os.environ.get("JUKI_KEEP_FAILED"):
            print("kept %s" % self.dir, file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def dump_logs(self):
        for d in self.daemons.values():
            text = d.log_text()
            print("\n===== log of %s (%s) =====\n%s" % (d.name, d.log, text[-12000:]),
                  file=sys.stderr)

    # -- access -----------------------------------------------------------

    def __getitem__(self, name):
        return self.daemons[name]

    def gateways(self):
        return [d for d in self.daemons.values() if d.kind == "fwgate"]

    def urns(self):
        return [d.urn for d in self.daemons.values()]

    def centres(self):
        """The national centres of the network: its jlis nodes, in the order named."""
        return [d.urn for d in self.daemons.values() if d.kind == "jlis"]

    def put_in_netns(self, name, tag):
        """Run node name in a network namespace of its own (Netns), its line to the gateways
        a veth pair; returns the Netns (closed with the network). Call it in configure."""
        ns = Netns(tag)
        self.namespaces.append(ns)
        d = self.daemons[name]
        d.netns = ns
        d.address = "%s:%d" % (ns.ns_ip, d.port)
        if hasattr(d, "op_address"):
            d.op_address = "%s:%s" % (ns.ns_ip, d.op_address.rsplit(":", 1)[1])
        d.gateway_addrs = []
        for g in self.gateway_order:
            gw = self.daemons[g]
            gw.listen_extra.append("%s:%d" % (ns.host_ip, gw.port))
            d.gateway_addrs.append("%s:%d" % (ns.host_ip, gw.port))
        return ns

    def nodes(self):
        return [d for d in self.daemons.values() if d.kind != "fwgate"]

    def cert(self, name):
        f = fname(name)
        return os.path.join(self.pki, f + ".crt"), os.path.join(self.pki, f + ".key")

    def ca(self):
        return os.path.join(self.pki, "ca.crt")

    def play_node(self, name, answer):
        """Listen as node `name` (one of extra_identities; in fake_nodes, so in the gateways'
        directory) with a jukitest.peer.FakeNode answering with answer(conn, doc); close it
        when done. Call it in configure (the address must be known before the gateways'
        configurations are written) or give fake_nodes[name] first."""
        from jukitest.peer import FakeNode
        address = self.fake_nodes.get(name) or "127.0.0.1:%d" % free_port()
        self.fake_nodes[name] = address
        cert, key = self.cert(name)
        return FakeNode(address, cert, key, self.ca(), answer)


def fails(fn, *args, **kw):
    """Run a juki-ctl call that must fail; returns (exit code, error code, message)."""
    try:
        fn(*args, **kw)
    except CtlError as e:
        try:
            body = json.loads(e.out)
        except ValueError:
            body = {}
        return e.code, body.get("error"), e.err
    raise AssertionError("%s %s succeeded" % (fn, args))


def board_entry(daemon, node):
    """The entry of node (a name or urn) on daemon's monitoring board (`juki-ctl board`),
    or None."""
    for n in daemon.ctl("board")["nodes"]:
        if n["node"] == urn(node):
            return n
    return None


def wait_board(daemon, node, state="up", timeout=15):
    """Wait until node is on daemon's board in state ("up", "degraded", "intrusion",
    "down"; None: there at all); returns its entry."""
    def there():
        e = board_entry(daemon, node)
        return e if e is not None and (state is None or e["state"] == state) else None
    wait_until("%s %s on the board of %s" % (node, state or "present", daemon.name), there,
               timeout)
    return board_entry(daemon, node)


def add_residents(daemon, people):
    """Register people at a CS in one `resident add`."""
    daemon.ctl("resident", "add", "--file", "-",
               input="\n".join(json.dumps(p, ensure_ascii=False) for p in people))


def history(daemon, **filters):
    """The daemon's operation history, every entry (filters: juki-ctl audit show options)."""
    args = ["audit", "show", "--limit", "100000"]
    for k, v in filters.items():
        args += ["--" + k, v]
    return daemon.admin(*args)["entries"]


def store_bytes(d):
    """Everything a daemon's database holds on disk: the file, its WAL, any journal."""
    data = b""
    for path in glob.glob(d.store + "*"):
        if path.endswith((".db", "-wal", "-journal")):
            with open(path, "rb") as f:
                data += f.read()
    return data


def set_clock(d, offset_ms):
    """Move a daemon's clock by clock_offset and a reload; returns when it reloaded."""
    d.extra["clock_offset"] = "%dms" % offset_ms
    d.write_config()
    before = d.log_text().count(": reloaded")
    d.signal(signal.SIGHUP)
    wait_until("%s reloaded" % d.name, lambda: d.log_text().count(": reloaded") > before)


def years_on(years, days):
    """A clock offset that puts today's date `years` years and `days` days later (JST)."""
    t = time.gmtime(time.time() + 9 * 3600)
    later = time.struct_time((t.tm_year + years,) + tuple(t)[1:])
    return int((time.mktime(later) - time.mktime(t)) * 1000) + days * 86400_000


def store_rows(path, sql):
    """Rows read from a store file without changing it."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def mount_tmpfs(folder, size, mounted):
    """A small tmpfs at folder (made, mode 0700) for a case that fills a disk; folder is
    appended to mounted when the mount worked (root, where mounting is allowed), else it
    stays a plain folder and the case skips."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs",
                        folder], capture_output=True)
    if r.returncode == 0:
        mounted.append(folder)


def fill_disk(folder):
    """A filler file taking every free byte of folder's file system; its path."""
    path = os.path.join(folder, "filler")
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        for _ in range(1 << 16):  # bounded: 4 GiB at most
            try:
                f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
        else:
            raise AssertionError("%s never filled up" % folder)
        for size in (4096, 512, 1):  # the last partial blocks too
            for _ in range(1 << 10):
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break
    return path


def unmount_all(mounted):
    """Undo mount_tmpfs(), lazily: a daemon killed by the case may still hold a file. Called
    once the case's network is gone, which could not remove a folder mounted on: the folder
    goes here, and the network's folder above it once nothing else is left in it."""
    for path in mounted:
        subprocess.run(["umount", "-l", path], check=False)
        shutil.rmtree(path, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass  # not empty: not ours to remove


def run_cases(cases):
    """Run test functions in order; print a summary; exit non-zero on any failure."""
    failed = 0
    only = os.environ.get("JUKI_CASE")
    if only:
        cases = [c for c in cases if c.__name__ == only]
        if not cases:
            sys.exit("no case named %s" % only)
    for case in cases:
        start = time.monotonic()
        try:
            case()
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (case.__name__, time.monotonic() - start))
            traceback.print_exc()
        else:
            print("ok   %s (%.1fs)" % (case.__name__, time.monotonic() - start))
        sys.stdout.flush()
    print("%d of %d cases failed" % (failed, len(cases)) if failed else "all cases passed")
    sys.exit(1 if failed else 0)
