"""Hardening: what the network does when an attacker, a careless operator or a
full disk tries it.  Each topic is a block of cases with its own header."""

import os
import signal
import subprocess

from jukitest import Network, run_cases, wait_until, CTL_FAILED

GW, A = "fwgate:east", "cs:131016"


def run(binary, *args):
    return subprocess.run([binary] + list(args), capture_output=True, text=True, timeout=30)


# ---------------------------------------------------------------------------
# Folder modes: the folders a daemon keeps its store, operation history,
# import spool, backups and control socket in are owned by its user or root
# and writable by nobody else, checked at -n, start and reload
# (libjuki/include/juki/base/dir.h).
# ---------------------------------------------------------------------------

def _own_folders(net):
    """Each of the CS's folders, and the gateway's socket folder, a folder of its own
    (0700) under net.dir/state; returns {config key: folder}."""
    state = os.path.join(net.dir, "state")
    folders = {k: os.path.join(state, k) for k in ("store", "audit", "control", "spool")}
    folders["gateway control"] = os.path.join(state, "gwrun")
    for f in [state] + list(folders.values()):
        os.makedirs(f, mode=0o700, exist_ok=True)
    cs, gw = net[A], net[GW]
    cs.store = os.path.join(folders["store"], "cs.db")
    cs.extra["audit"] = "{path: %s}" % os.path.join(folders["audit"], "cs.audit")
    cs.socket = os.path.join(folders["control"], "cs.sock")
    cs.spool = os.path.join(folders["spool"], "spool")
    gw.socket = os.path.join(folders["gateway control"], "gw.sock")
    return folders


def _refusal(key, folder, mode, whom="others"):
    return "%s: %s: mode %04o, writable by %s (owner uid %d)" % (
        key, folder, mode, whom, os.geteuid())


def case_folder_modes_refused_at_start():
    """A node (store, audit, control, import spool) and a gateway (control) whose folder,
    or a folder above it, others may write to refuse to start, with the path and the
    mode, and pass -n no more; made private again, they start."""
    box = {}
    with Network([GW, A], configure=lambda net: box.update(_own_folders(net))) as net:
        cs, gw = net[A], net[GW]
        state = os.path.dirname(box["store"])
        cases = [(cs, "store", box["store"], 0o777, "others"),
                 (cs, "audit.path", box["audit"], 0o777, "others"),
                 (cs, "control", box["control"], 0o770, "group"),
                 (cs, "import spool", box["spool"], 0o777, "others"),
                 # a folder above every one of them (the CS's own rules are checked first)
                 (cs, "import spool", state, 0o777, "others"),
                 (gw, "control", box["gateway control"], 0o777, "others")]
        for d, key, folder, mode, whom in cases:
            want = _refusal(key, folder, mode, whom)
            d.stop()
            os.chmod(folder, mode)
            p = run(d.binary, "-n", "-f", d.config)
            assert p.returncode == 1 and want in p.stderr, (want, p.stderr)
            d.start(wait=False)
            wait_until("%s refuses to start" % d.name, lambda: not d.running(), timeout=20)
            assert d.proc.returncode == 1, d.proc.returncode
            assert want in d.log_text(), want
            os.chmod(folder, 0o700)
            d.start()
        assert cs.status()["ready"] and gw.status()["ready"]


def case_folder_owner_refused_at_start():
    """A store folder owned by another user than the daemon's or root is refused."""
    box = {}
    with Network([GW, A], configure=lambda net: box.update(_own_folders(net))) as net:
        if os.geteuid() != 0:
            print("skip case_folder_owner_refused_at_start: chown needs root")
            return
        cs = net[A]
        p = run(cs.binary, "-n", "-f", cs.config)
        assert p.returncode == 0, p.stderr
        os.chown(box["store"], 4242, 4242)
        p = run(cs.binary, "-n", "-f", cs.config)
        want = "store: %s: owned by uid 4242, not by the daemon's user (uid 0) or root" % (
            box["store"])
        assert p.returncode == 1 and want in p.stderr, p.stderr
        os.chown(box["store"], 0, 0)


def case_folder_modes_refused_at_reload():
    """A folder opened to others while the daemons run: the reload is refused with the
    path and the mode, the daemons keep running on the old configuration; made
    private again, the next reload is taken."""
    box = {}
    with Network([GW, A], configure=lambda net: box.update(_own_folders(net))) as net:
        for d, key, folder, done in ((net[A], "store", box["store"], "juki-csd: reloaded"),
                                     (net[GW], "control", box["gateway control"],
                                      "juki-fwgated: reloaded")):
            os.chmod(folder, 0o777)
            before = d.log_text().count("reload refused")
            d.signal(signal.SIGHUP)
            wait_until("%s refuses the reload" % d.name,
                       lambda: d.log_text().count("reload refused") > before)
            assert _refusal(key, folder, 0o777) in d.log_text()
            assert d.running() and d.status()["ready"]
            os.chmod(folder, 0o700)
            before = d.log_text().count(done)
            d.signal(signal.SIGHUP)
            wait_until("%s reloaded" % d.name, lambda: d.log_text().count(done) > before)


def case_backup_folder_writable_by_others_refused():
    """juki-ctl backup into a folder under one others may write to is refused with its
    path and mode, and nothing is written; a private one takes the backup."""
    with Network([GW, A]) as net:
        top = os.path.join(net.dir, "backups")
        os.makedirs(top, mode=0o700)
        os.chmod(top, 0o777)
        code, out, err = net[A].ctl("backup", os.path.join(top, "b1"), check=False)
        want = "%s: mode 0777, writable by others (owner uid %d)" % (top, os.geteuid())
        assert code == CTL_FAILED and want in err, (code, err)
        assert os.listdir(top) == []
        os.chmod(top, 0o700)
        assert net[A].ctl("backup", os.path.join(top, "b1"))["sha256"]


if __name__ == "__main__":
    run_cases([
        # folder modes
        case_folder_modes_refused_at_start, case_folder_owner_refused_at_start,
        case_folder_modes_refused_at_reload, case_backup_folder_writable_by_others_refused,
    ])
