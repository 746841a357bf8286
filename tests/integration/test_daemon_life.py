"""Daemon life: -n, key-file rule, SIGHUP reload (keep the old on error),
systemd readiness notification, graceful SIGTERM."""

import os
import signal
import socket
import subprocess
import tempfile

from jukitest import Network, run_cases, wait_until

A = "cs:131016"


def run(binary, *args):
    return subprocess.run([binary] + list(args), capture_output=True, text=True, timeout=30)


def case_check_mode():
    with Network(["fwgate:east", A]) as net:
        d = net[A]
        p = run(d.binary, "-n", "-f", d.config)
        assert p.returncode == 0 and "is valid" in p.stdout, p
        bad = d.config + ".bad"
        with open(d.config) as f, open(bad, "w") as out:
            out.write(f.read() + "delivery_typo: 1\n")
        p = run(d.binary, "-n", "-f", bad)
        assert p.returncode == 1
        # file:line:col: key: what
        assert "%s:" % bad in p.stderr and "delivery_typo: unknown key" in p.stderr, p.stderr
        p = run(d.binary, "--help-config")
        assert p.returncode == 0 and "tls.cert" in p.stdout and "delivery.window" in p.stdout
        p = run(d.binary, "-x")
        assert p.returncode == 2


def case_key_file_mode_refused():
    with Network(["fwgate:east", A]) as net:
        d = net[A]
        d.stop()
        key = net.cert(A)[1]
        os.chmod(key, 0o640)
        p = run(d.binary, "-n", "-f", d.config)
        assert p.returncode == 1 and "must not be accessible by group or others" in p.stderr, p.stderr
        p = run(d.binary, "-f", d.config)
        assert p.returncode == 1, p
        os.chmod(key, 0o600)
        d.start()


def case_reload_keeps_old_on_error():
    with Network(["fwgate:east", A]) as net:
        gw = net["fwgate:east"]
        good = open(gw.config).read()
        with open(gw.config, "w") as f:
            f.write(good + "listen: [oops\n")
        gw.signal(signal.SIGHUP)
        wait_until("the refusal logged", lambda: "reload refused" in gw.log_text())
        assert gw.status()["ready"]
        # A valid change is taken: the directory shrinks to the one node.
        with open(gw.config, "w") as f:
            f.write(good)
        before = gw.log_text().count("gateway: reloaded")
        gw.signal(signal.SIGHUP)
        wait_until("reloaded", lambda: gw.log_text().count("gateway: reloaded") > before)
        # A restart-only key changed: refused, the old configuration stays.
        with open(gw.config, "w") as f:
            f.write(good.replace(gw.socket, gw.socket + ".new"))
        gw.signal(signal.SIGHUP)
        wait_until("restart-only change refused", lambda: "restart only" in gw.log_text())
        assert gw.status()["node"] == "urn:juki:fwgate:east"


def case_node_reload_restart_only():
    """A node refuses a reload that changes a restart-only key, and keeps running on the
    old configuration; the same file again reloads."""
    with Network(["fwgate:east", A]) as net:
        cs = net[A]
        cs.extra["audit"] = "{checkpoint_every: 7}"
        cs.write_config()
        cs.signal(signal.SIGHUP)
        wait_until("restart-only change refused",
                   lambda: "audit.checkpoint_every change on restart only" in cs.log_text())
        assert cs.status()["ready"]
        del cs.extra["audit"]
        cs.write_config()
        before = cs.log_text().count("reloaded")
        cs.signal(signal.SIGHUP)
        wait_until("reloaded", lambda: cs.log_text().count("reloaded") > before)


def case_systemd_notify_and_stop():
    with Network(["fwgate:east"]) as net:
        gw = net["fwgate:east"]
        gw.stop()
        path = os.path.join(tempfile.mkdtemp(prefix="juki-notify-"), "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
        log = open(gw.log, "a")
        proc = subprocess.Popen([gw.binary, "-f", gw.config], stdout=log, stderr=log, env=env)
        try:
            msgs = []

            def got(word):
                while not any(word in m for m in msgs):
                    msgs.append(sock.recv(4096).decode())
                return True

            assert got("READY=1")
            assert got("WATCHDOG=1")  # pinged at half the interval
            proc.send_signal(signal.SIGHUP)
            assert got("RELOADING=1")
            proc.send_signal(signal.SIGTERM)
            assert got("STOPPING=1")
            assert proc.wait(10) == 0
            assert not os.path.exists(gw.socket), "control socket left behind"
        finally:
            if proc.poll() is None:
                proc.kill()
            sock.close()
            os.unlink(path)
            os.rmdir(os.path.dirname(path))


if __name__ == "__main__":
    run_cases([case_check_mode, case_key_file_mode_refused, case_reload_keeps_old_on_error,
               case_node_reload_restart_only, case_systemd_notify_and_stop])
