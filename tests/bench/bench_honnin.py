"""Benchmark of identity information end to end (docs/benchmarks.md).

Pushes N generated identity changes from one CS through the gateway to its
prefectural server and the national server, durable at every hop, and
measures on the same disk, in the same run, the reference ceiling: the same
rows inserted by a plain C loop into a fresh SQLite table
(code TEXT PRIMARY KEY, rec BLOB), WAL, synchronous=FULL, 10,000 rows per
transaction, one prepared statement (tests/bench/sqlite_ceiling.c).

One hop is then measured alone: the same files from one CS to its prefectural
server with nothing behind it (no national server: the prefecture records,
keeps its outbox for the nation and forwards nothing), so that a hop's rate and
CPU are not hidden by its neighbours' CPU on a shared machine.

    python3 tests/bench/bench_honnin.py [--records N] [--file-rows R] [--dir DIR]
                                        [--no-one-hop]
"""

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from jukitest import BUILD, Network, wait_until  # noqa: E402
from jukitest.synth import Synth, import_csv, change_row  # noqa: E402
from benchargs import at_least, directory  # noqa: E402

LG = "131016"


def generate(n, file_rows, workdir):
    """N people as import files of file_rows rows, and the same rows for the ceiling."""
    s = Synth(seed=2026)
    files, rows, batch = [], [], []
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 9 * 3600))
    tsv = open(os.path.join(workdir, "rows.tsv"), "w", encoding="utf-8")
    for i in range(n):
        p = s.person(LG)
        batch.append(change_row(p, "職権記載", day))
        rec = {"code": p["code"], "lgcode": LG, "version": 1, "reason": "職権記載",
               "reason_date": day, "recorded": day + "T00:00:00.000Z",
               "person": {k: p[k] for k in ("name", "birth", "sex", "address")}}
        tsv.write(p["code"] + "\t" + json.dumps(rec, ensure_ascii=False,
                                                separators=(",", ":")) + "\n")
        if len(batch) == file_rows or i == n - 1:
            path = os.path.join(workdir, "import-%05d.csv" % len(files))
            with open(path, "w", encoding="utf-8") as f:
                f.write(import_csv(batch))
            files.append(path)
            batch = []
    tsv.close()
    return files


def ceiling(workdir):
    db = os.path.join(workdir, "ceiling.db")
    with open(os.path.join(workdir, "rows.tsv"), "rb") as f:
        out = subprocess.run([os.path.join(BUILD, "tests", "bench", "sqlite_ceiling"), db],
                             stdin=f, capture_output=True, text=True, check=True).stdout
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    return float(out.split("rows_per_s")[1])


def count(path, sql):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def drop(cs, files):
    """Every file into the CS's import spool at once; the time of the drop."""
    incoming = os.path.join(cs.spool, "incoming")
    for path in files:
        shutil.copy(path, os.path.join(incoming, "." + os.path.basename(path)))
    t0 = time.monotonic()
    for path in files:
        name = os.path.basename(path)
        os.rename(os.path.join(incoming, "." + name), os.path.join(incoming, name))
    return t0


def wait_all(t0, n, hops):
    """{name: seconds from t0 until its store holds n records} for each (name, daemon)."""
    done = {}
    sql = "SELECT count(*) FROM honnin"
    while len(done) < len(hops):
        time.sleep(0.25)
        now = time.monotonic() - t0
        for name, d in hops:
            if name not in done and count(d.store, sql) >= n:
                done[name] = now
        if now > 3600:
            raise SystemExit("did not finish within an hour: %s" % done)
    return done


def one_hop(files, n, conf):
    """CS -> pref with nothing behind it: the time, and the CPU of csd and prefd."""
    with Network(["fwgate:east", "cs:131016", "pref:13"], configure=conf) as net:
        cs, pref = net["cs:131016"], net["pref:13"]
        t0 = drop(cs, files)
        done = wait_all(t0, n, (("cs", cs), ("pref", pref)))
        cpu = {name: cpu_s(d.proc.pid) for name, d in (("csd", cs), ("prefd", pref))}
        rss = {name: hwm_kib(d.proc.pid) for name, d in (("csd", cs), ("prefd", pref))}
    return done, cpu, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=at_least(1), default=1_000_000)
    ap.add_argument("--file-rows", type=at_least(1), default=5_000)
    ap.add_argument("--dir", type=directory, default=None,
                    help="where to work (default: a temp dir)")
    ap.add_argument("--single", type=at_least(1), default=100,
                    help="single changes for idle latency")
    ap.add_argument("--no-one-hop", dest="one_hop", action="store_false",
                    help="skip the measurement of CS -> pref alone")
    args = ap.parse_args()
    n = args.records
    workdir = tempfile.mkdtemp(prefix="juki-bench-", dir=args.dir)
    try:
        print("generating %d changes in %d files under %s" % (n, -(-n // args.file_rows),
                                                            workdir), flush=True)
        files = generate(n, args.file_rows, workdir)
        print("ceiling: plain C loop into SQLite ...", flush=True)
        ceil = ceiling(workdir)

        def conf(net):
            for d in net.daemons.values():
                d.extra["log_level"] = "notice"

        os.environ["TMPDIR"] = workdir
        tempfile.tempdir = workdir
        with Network(["fwgate:east", "cs:131016", "pref:13", "jlis:0"],
                     configure=conf) as net:
            cs, pref, jlis = net["cs:131016"], net["pref:13"], net["jlis:0"]
            t0 = drop(cs, files)
            done = wait_all(t0, n, (("cs", cs), ("pref", pref), ("jlis", jlis)))
            daemons = (("csd", cs), ("prefd", pref), ("jlisd", jlis),
                       ("fwgated", net["fwgate:east"]))
            rss = {name: hwm_kib(d.proc.pid) for name, d in daemons}
            # Of that, SQLite's heap at its peak (page cache, statements, journals).
            sqlite_peak = {name: d.admin("status")["memory"]["sqlite_peak_bytes"]
                           for name, d in daemons[:3]}
            cpu = {name: cpu_s(d.proc.pid) for name, d in daemons}
            # Latency of every change under load: recorded at the CS, received at jlis.
            con = sqlite3.connect("file:%s?mode=ro" % jlis.store, uri=True)
            lat = [r[0] for r in con.execute("SELECT received_ms - recorded_ms FROM honnin")]
            con.close()
            # Latency of a single change on an idle network.
            s = Synth(seed=7)
            single = []
            for _ in range(args.single):
                p = s.person(LG)
                cs.ctl("resident", "add", "--file", "-", input=json.dumps(p))
                wait_until("the change at jlis", lambda: count(
                    jlis.store, "SELECT count(*) FROM honnin WHERE code = '%s'" % p["code"]),
                    timeout=30, interval=0.002)
            con = sqlite3.connect("file:%s?mode=ro" % jlis.store, uri=True)
            single = [r[0] for r in con.execute(
                "SELECT received_ms - recorded_ms FROM honnin ORDER BY id DESC LIMIT ?",
                (args.single,))]
            con.close()

        if args.one_hop:
            print("one hop: CS -> pref alone ...", flush=True)
            hop_done, hop_cpu, hop_rss = one_hop(files, n, conf)

        e2e = n / done["jlis"]
        print()
        print("records: %d (%d files of %d rows), one CS -> pref -> jlis through the gateway"
              % (n, len(files), args.file_rows))
        print("end to end: %.1f s, %.0f records/s" % (done["jlis"], e2e))
        print("per hop: cs %.0f records/s (done at %.1f s), pref %.0f records/s (%.1f s), "
              "jlis %.0f records/s (%.1f s)" % (n / done["cs"], done["cs"], n / done["pref"],
                                                 done["pref"], e2e, done["jlis"]))
        print("latency CS -> jlis under load: p50 %d ms, p99 %d ms"
              % (percentile(lat, 50), percentile(lat, 99)))
        print("latency CS -> jlis of a single change, idle: p50 %d ms, p99 %d ms (%d changes)"
              % (percentile(single, 50), percentile(single, 99), len(single)))
        print("peak RSS: " + ", ".join("%s %.1f MiB" % (k, v / 1024) for k, v in rss.items()))
        print("of which SQLite's heap at its peak: " +
              ", ".join("%s %.1f MiB" % (k, v / 1048576) for k, v in sqlite_peak.items()))
        print("CPU time: " + ", ".join("%s %.1f s (%.1f us/record)" % (k, v, v * 1e6 / n)
                                       for k, v in cpu.items()) +
              "; %d CPUs" % os.cpu_count())
        if args.one_hop:
            print("one hop alone (CS -> pref, nothing behind it): pref %.0f records/s (done at "
                  "%.1f s); CPU " % (n / hop_done["pref"], hop_done["pref"]) +
                  ", ".join("%s %.1f s (%.1f us/record)" % (k, v, v * 1e6 / n)
                            for k, v in hop_cpu.items()) +
                  "; peak RSS " + ", ".join("%s %.1f MiB" % (k, v / 1024)
                                            for k, v in hop_rss.items()))
        print("ceiling (plain C loop, same rows, same disk): %.0f rows/s" % ceil)
        print("ratio: %.2f" % (e2e / ceil))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
