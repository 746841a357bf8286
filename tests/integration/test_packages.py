"""The Debian packages, as an operator meets them (docs/operations.md §1).

Builds the packages with scripts/package.sh (lintian must pass), installs them with apt on
this machine, makes the PKI with the installed juki-ctl (`pki init`) and the configurations
from the installed examples, starts a gateway, a CS and a prefectural server from the
installed paths as the user juki, passes one identity change through (the installed
import example dropped into the CS's spool reaches the prefecture), checks the installed
units with `systemd-analyze verify` and `systemd-analyze security` (exposure <= 2.0 each),
then removes the packages and checks that the operator's keys and stores are still there,
and purges them and checks the same.

It installs into the real /etc/juki and /var/lib/juki: it refuses to run on a host where
juki is installed or those folders hold anything, and removes all it made at the end.
"""

import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile

import yaml

from jukitest import free_port, run_cases, wait_until

SOURCE = os.environ.get("JUKI_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
PACKAGES = ["juki-common", "juki-cs", "juki-pref", "juki-jlis", "juki-authlink", "juki-fwgate",
            "juki-ctl"]
ETC, STATE, RUN = "/etc/juki", "/var/lib/juki", "/run/juki"
EXAMPLES = "/usr/share/doc/%s/examples/%s"
NODES = {  # name: (package, daemon, example, unit)
    "fwgated": ("juki-fwgate", "juki-fwgated", "fwgated.yaml", "juki-fwgated.service"),
    "csd": ("juki-cs", "juki-csd", "csd.yaml", "juki-csd@csd.service"),
    "prefd": ("juki-pref", "juki-prefd", "prefd.yaml", "juki-prefd@prefd.service"),
}
MAX_EXPOSURE = 2.0
# As the unit runs it: the user juki, its groups, no capabilities (setpriv execs the daemon).
AS_JUKI = ["setpriv", "--reuid=juki", "--regid=juki", "--init-groups", "--inh-caps=-all"]


def run(*argv, check=True, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s\n%s" % (" ".join(argv), p.returncode, p.stdout,
                                                      p.stderr))
    return p


def installed():
    p = run("dpkg-query", "-W", "-f", "${Package} ${Status}\\n", *PACKAGES, check=False)
    return [l.split()[0] for l in p.stdout.splitlines() if "install ok installed" in l]


def host_is_clean():
    assert installed() == [], "juki packages are installed on this host: %s" % installed()
    for d in (ETC, STATE):
        assert not (os.path.isdir(d) and os.listdir(d)), \
            "%s is not empty: this test installs into it and will not touch a host's data" % d


def build(out):
    p = run(os.path.join(SOURCE, "scripts", "package.sh"), "--out", out, timeout=1200)
    print(p.stdout[-2000:])
    debs = sorted(f for f in glob.glob(os.path.join(out, "*.deb")) if "-dbgsym_" not in f)
    names = sorted(os.path.basename(f).split("_")[0] for f in debs)
    assert names == sorted(PACKAGES), names
    return debs


def ctl(sock, *args):
    p = run("/usr/bin/juki-ctl", "-s", sock, "--json", *args, timeout=60)
    return json.loads(p.stdout)


def configure(nodes):
    """/etc/juki/NAME.yaml from each installed example, on loopback ports of ours."""
    ports = {name: free_port() for name in nodes}
    gateway = "127.0.0.1:%d" % ports["fwgated"]
    for name, (package, _, example, _) in nodes.items():
        with open(EXAMPLES % (package, example)) as f:
            conf = yaml.safe_load(f)
        conf["listen"] = ["127.0.0.1:%d" % ports[name]]
        conf["log_level"] = "debug"
        if name == "fwgated":
            conf["directory"] = [
                {"node": "urn:juki:cs:131016", "address": "127.0.0.1:%d" % ports["csd"]},
                {"node": "urn:juki:pref:13", "address": "127.0.0.1:%d" % ports["prefd"]},
            ]
        else:
            conf["gateways"] = [gateway]
            conf["operator"]["listen"] = ["127.0.0.1:%d" % free_port()]
            conf["delivery"]["backoff_max"] = "1s"
        if name == "csd":
            conf["import"]["scan_interval"] = "100ms"
        path = os.path.join(ETC, name + ".yaml")
        with open(path, "w") as f:
            yaml.safe_dump(conf, f, allow_unicode=True)
        os.chown(path, 0, pwd.getpwnam("juki").pw_gid)
        os.chmod(path, 0o640)


def make_pki():
    """The installed juki-ctl makes the PKI; the keys go to the user juki, 0600."""
    topo = os.path.join(ETC, "topology.yaml")
    with open(topo, "w") as f:
        yaml.safe_dump({"ca": "juki package test CA", "days": 30, "nodes": [
            "urn:juki:fwgate:east", "urn:juki:cs:131016", "urn:juki:pref:13"]}, f)
    run("/usr/bin/juki-ctl", "pki", "init", "--out", ETC + "/pki", topo)
    juki = pwd.getpwnam("juki")
    for key in glob.glob(ETC + "/pki/*.key"):
        os.chown(key, juki.pw_uid, juki.pw_gid)
        os.chmod(key, 0o600)
    shutil.copy(EXAMPLES % ("juki-common", "policy.yaml"), ETC + "/policy.yaml")


def start(nodes):
    procs = {}
    for name, (_, daemon, _, _) in nodes.items():
        log = open(os.path.join(STATE, name + ".log"), "w")
        procs[name] = subprocess.Popen(
            AS_JUKI + ["/usr/sbin/" + daemon, "-f", os.path.join(ETC, name + ".yaml")],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        sock = os.path.join(RUN, name + ".sock")

        def ready():
            assert procs[name].poll() is None, "%s exited: %s" % (daemon, logs(name))
            return os.path.exists(sock) and ctl(sock, "status").get("ready", True)
        wait_until("%s ready" % daemon, ready, timeout=30)
    return procs


def logs(name):
    try:
        with open(os.path.join(STATE, name + ".log")) as f:
            return f.read()[-3000:]
    except OSError:
        return ""


def stop(procs):
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def pass_identity_change():
    """The installed import example, dropped in the CS's spool, reaches the prefecture."""
    example = EXAMPLES % ("juki-cs", "import-example.csv")
    with open(example) as f:
        rows = len(f.read().splitlines()) - 1
    codes = set()
    with open(example) as f:
        for line in f.read().splitlines()[1:]:
            codes.add(line.split(",")[0])
    incoming = os.path.join(STATE, "import", "incoming")
    wait_until("the CS made its spool", lambda: os.path.isdir(incoming), timeout=10)
    tmp = os.path.join(STATE, "import", "example.csv.part")
    shutil.copy(example, tmp)
    shutil.chown(tmp, "juki", "juki")
    os.rename(tmp, os.path.join(incoming, "20261207-example.csv"))

    def at_pref():
        records = ctl(RUN + "/prefd.sock", "status").get("records", {})
        return records.get("current") == len(codes)
    wait_until("the identity changes at the prefecture", at_pref, timeout=60)
    return rows


def verify_units():
    """systemd-analyze verify and security on every installed unit."""
    units = sorted(os.path.basename(u) for u in glob.glob("/lib/systemd/system/juki-*"))
    assert len(units) >= 10, units
    scores = {}
    for unit in units:
        if not unit.endswith(".service"):
            continue
        name = unit.replace("@.", "@test.")
        p = run("systemd-analyze", "verify", "--man=no", "/lib/systemd/system/" + unit,
                check=False)
        problems = [l for l in (p.stdout + p.stderr).splitlines()
                    if l.strip() and "Failed to connect to bus" not in l]
        assert p.returncode == 0 and not problems, "%s: %s" % (unit, problems)
        p = run("systemd-analyze", "security", "--offline=yes", "--no-pager",
                "/lib/systemd/system/" + unit, check=False)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout + p.stderr)
        assert m, "%s: no exposure in %s" % (name, p.stdout[-500:] + p.stderr[-500:])
        scores[unit] = float(m.group(1))
    print("exposure:", json.dumps(scores))
    worst = {u: s for u, s in scores.items() if s > MAX_EXPOSURE}
    assert not worst, "units over %.1f: %s" % (MAX_EXPOSURE, worst)
    return scores


def kept_after(action):
    """apt remove, then dpkg --purge (the packages are in no archive apt knows)."""
    if action == "remove":
        p = run("apt-get", "-y", "-q", "remove", *PACKAGES, timeout=300,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    else:
        p = run("dpkg", "--purge", *PACKAGES, timeout=300)
        # juki-common's postrm says what purge keeps and how to delete it.
        assert "kept: /etc/juki" in p.stdout, p.stdout
    assert installed() == [], installed()
    for gone in ("/usr/sbin/juki-csd", "/usr/bin/juki-ctl",
                 "/lib/systemd/system/juki-csd@.service"):
        assert not os.path.exists(gone), "%s left after %s" % (gone, action)
    for kept in (ETC + "/pki/cs-131016.key", ETC + "/csd.yaml", STATE + "/csd.db",
                 STATE + "/prefd.db"):
        assert os.path.exists(kept), "%s deleted by %s" % (kept, action)
    pwd.getpwnam("juki")  # the user owns the stores: it stays


def case_build_install_run_remove():
    host_is_clean()
    out = tempfile.mkdtemp(prefix="juki-debs-")
    procs = {}
    try:
        debs = build(out)
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", *debs,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), timeout=600)
        assert sorted(installed()) == sorted(PACKAGES)

        # What juki-common made: the user and its folders, nothing readable by others.
        juki = pwd.getpwnam("juki")
        assert juki.pw_shell == "/usr/sbin/nologin"
        for path, mode, owner in ((ETC, 0o750, "root"), (ETC + "/pki", 0o750, "root"),
                                  (STATE, 0o750, "juki"), (RUN, 0o750, "juki")):
            st = os.stat(path)
            assert st.st_mode & 0o777 == mode, "%s mode %o" % (path, st.st_mode & 0o777)
            assert pwd.getpwuid(st.st_uid).pw_name == owner, path
            assert st.st_gid == juki.pw_gid, path

        make_pki()
        configure(NODES)
        for name, (_, daemon, _, _) in NODES.items():
            run(*AS_JUKI, "/usr/sbin/" + daemon, "-n", "-f", os.path.join(ETC, name + ".yaml"))
        procs = start(NODES)
        rows = pass_identity_change()
        print("identity changes through CS -> gateway -> prefecture: %d rows" % rows)
        verify_units()
        stop(procs)
        procs = {}

        kept_after("remove")
        kept_after("purge")
    finally:
        stop(procs)
        for name in NODES:
            if logs(name):
                print("---- %s log (tail)\n%s" % (name, logs(name)[-1500:]))
        if installed():
            run("dpkg", "--purge", *PACKAGES, check=False)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(ETC, ignore_errors=True)
        shutil.rmtree(STATE, ignore_errors=True)
        shutil.rmtree(RUN, ignore_errors=True)
        run("userdel", "juki", check=False)
        run("groupdel", "juki", check=False)


if __name__ == "__main__":
    run_cases([case_build_install_run_remove])
