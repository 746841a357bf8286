"""The bulk load against PostgreSQL 15's COPY (docs/benchmarks.md "Bulk load").

Generates N rows of identity information (random 住民票コード of every municipality of
tests/data/localgov.csv, one CSV file), then on the same disk, in the same run:

  juki        `juki-ctl load FILE` at a real juki-jlisd with an empty store: until the
              command returns, every index built and the store durable (fsync'd, renamed in).
  PostgreSQL  a throwaway cluster (initdb, fsync on, wal_level minimal), the same columns;
              as its manual advises for a bulk load (§14.4): COPY into a table created in the
              same transaction without its indexes, then the primary key (code), the
              four-item index (name, birth, sex, address) and the index on lgcode, with
              maintenance_work_mem and max_wal_size raised; then CHECKPOINT.

Prints both rates and ratio = juki / PostgreSQL, and the CPU time the juki daemon spent
(all its threads; on a shared machine a steadier figure than the rate).

    python3 tests/bench/bench_load.py [--records N] [--dir DIR] [--keep] [--juki-only]

--juki-only loads into juki alone and prints the phases the daemon logged (rows, indexes,
swap): for comparing two builds' CPU per row, run after run on the same machine.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from jukitest import CTL, Network  # noqa: E402
from jukitest.synth import SURNAMES, GIVEN, TOWNS, jumin_check_digit, municipalities  # noqa: E402
from benchargs import at_least, directory  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
COLS = "code,lgcode,version,reason,reason_date,recorded,name,kana,birth,sex,address"
PG_TABLE = """CREATE TABLE honnin (
 code char(11) NOT NULL, lgcode char(6) NOT NULL, version integer NOT NULL,
 reason text NOT NULL, reason_date date NOT NULL, recorded timestamptz NOT NULL,
 name text NOT NULL, kana text, birth date NOT NULL, sex smallint NOT NULL,
 address text NOT NULL)"""


def generate(n, path):
    """n rows, codes unique and scattered: (i * A + B) mod 10^10 with A odd and not a
    multiple of 5 is a permutation of the first ten digits."""
    rng = random.Random(2026)
    munis = [(lg, m["pref"] + m["name"].replace(" ", "")) for lg, m in
             sorted(municipalities().items())]
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 9 * 3600))
    recorded = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    a, b = 7_919_000_003, 1_234_567_891
    with open(path, "w", encoding="utf-8") as f:
        f.write(COLS + "\n")
        lines = []
        for i in range(n):
            first = "%010d" % ((i * a + b) % 10_000_000_000)
            lg, place = munis[rng.randrange(len(munis))]
            lines.append("%s%s,%s,1,出生,%s,%s,%s %s,,%04d-%02d-%02d,%d,%s%s%d丁目%d番%d号\n" % (
                first, jumin_check_digit(first), lg, day, recorded, rng.choice(SURNAMES),
                rng.choice(GIVEN), rng.randint(1930, 2024), rng.randint(1, 12),
                rng.randint(1, 28), rng.randint(1, 2), place, rng.choice(TOWNS),
                rng.randint(1, 9), rng.randint(1, 30), rng.randint(1, 20)))
            if len(lines) == 10000:
                f.writelines(lines)
                lines = []
        f.writelines(lines)
    os.chmod(path, 0o644)


def cpu_secs(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat, all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def juki(path, n):
    with Network(["jlis:0"]) as net:
        pid = net["jlis:0"].proc.pid
        c0 = cpu_secs(pid)
        t0 = time.monotonic()
        p = subprocess.run([CTL, "-s", net["jlis:0"].socket, "-t", "3600s", "load", path],
                           capture_output=True, text=True)
        secs = time.monotonic() - t0
        cpu = cpu_secs(pid) - c0
        if p.returncode != 0:
            raise SystemExit("juki load failed: %s %s" % (p.stdout, p.stderr))
        current = net["jlis:0"].status()["records"]["current"]
        assert current == n, current
        size = os.path.getsize(net["jlis:0"].store)
        with open(net["jlis:0"].log, errors="replace") as f:
            phases = [line.split("load 1: ", 1)[1].strip() for line in f if "load 1: " in line]
    return secs, cpu, size, phases


def as_pg(*argv, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + list(argv), check=True,
                          capture_output=True, text=True, **kw)


def postgres(path, workdir):
    pgdir = os.path.join(workdir, "pg")
    os.mkdir(pgdir)
    shutil.chown(pgdir, "postgres", "postgres")
    as_pg(PG_BIN + "/initdb", "-D", pgdir, "-A", "trust", "-U", "postgres", "--no-sync")
    port = str(20000 + os.getpid() % 20000)
    opts = ("-c port=%s -c listen_addresses='' -c unix_socket_directories=%s -c fsync=on "
            "-c synchronous_commit=on -c full_page_writes=on -c wal_level=minimal "
            "-c max_wal_senders=0 -c maintenance_work_mem=1GB -c max_wal_size=16GB "
            "-c checkpoint_timeout=1h -c shared_buffers=256MB" % (port, pgdir))
    as_pg(PG_BIN + "/pg_ctl", "-D", pgdir, "-w", "-l", os.path.join(pgdir, "log"), "-o", opts,
          "start")
    try:
        sql = [
            "BEGIN; %s; COPY honnin (%s) FROM '%s' WITH (FORMAT csv, HEADER true); COMMIT;" % (
                PG_TABLE, COLS, path),
            "ALTER TABLE honnin ADD PRIMARY KEY (code);",
            "CREATE INDEX honnin_person ON honnin (name, birth, sex, address);",
            "CREATE INDEX honnin_lgcode ON honnin (lgcode);",
            "CHECKPOINT;",
        ]
        t0 = time.monotonic()
        steps = []
        for s in sql:
            t = time.monotonic()
            as_pg(PG_BIN + "/psql", "-h", pgdir, "-p", port, "-X", "-q", "-v",
                  "ON_ERROR_STOP=1", "-d", "postgres", "-c", s)
            steps.append(time.monotonic() - t)
        secs = time.monotonic() - t0
        size = int(as_pg(PG_BIN + "/psql", "-h", pgdir, "-p", port, "-X", "-At", "-d",
                         "postgres", "-c",
                         "SELECT pg_total_relation_size('honnin')").stdout.strip())
    finally:
        as_pg(PG_BIN + "/pg_ctl", "-D", pgdir, "-m", "fast", "-w", "stop")
    return secs, steps, size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=at_least(1), default=5_000_000)
    ap.add_argument("--dir", type=directory, default=None,
                    help="where to work (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--juki-only", action="store_true",
                    help="load into juki alone and print the daemon's phases")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="juki-bench-load-", dir=args.dir)
    os.chmod(workdir, 0o755)
    tempfile.tempdir = workdir  # the juki network's directory: the same disk
    try:
        path = os.path.join(workdir, "rows.csv")
        t = time.monotonic()
        generate(args.records, path)
        print("generated %d rows (%.0f MB) in %.0f s" % (
            args.records, os.path.getsize(path) / 1e6, time.monotonic() - t), flush=True)
        with open("/proc/loadavg") as f:
            print("load average before: %s" % " ".join(f.read().split()[:3]), flush=True)
        jsecs, jcpu, jsize, phases = juki(path, args.records)
        print("juki        %9.0f rows/s  %7.1f s  store %6.0f MB  (daemon CPU %.1f s, "
              "%.2f us/row)" % (args.records / jsecs, jsecs, jsize / 1e6, jcpu,
                                jcpu * 1e6 / args.records), flush=True)
        if args.juki_only:
            print("daemon: %s" % " ".join(phases))
            with open("/proc/loadavg") as f:
                print("load average after: %s" % " ".join(f.read().split()[:3]))
            return
        psecs, steps, psize = postgres(path, workdir)
        print("postgresql  %9.0f rows/s  %7.1f s  table+indexes %6.0f MB  (COPY %.1f s, "
              "primary key %.1f s, four items %.1f s, lgcode %.1f s, checkpoint %.1f s)" % (
                  args.records / psecs, psecs, psize / 1e6, *steps), flush=True)
        with open("/proc/loadavg") as f:
            print("load average after: %s" % " ".join(f.read().split()[:3]))
        print("ratio %.2f" % ((args.records / jsecs) / (args.records / psecs)))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
