"""How cost grows with the national server's store (issue 14 part 1).

At each size N, a network of one CS, its gateway, its prefectural server and the national
server is started afresh, and the national server's empty store is loaded with N current
records by the bulk load (`juki-ctl load` of the first N generated rows, the path that
rebuilds a centre); then, on the real daemons, it measures:

  load_s        the load of N rows, and its rate; the national server's peak RSS during it
                (load_hwm_mib: it holds the load's page cache)
  lookups       by 住民票コード and by the four items (name, birth date, sex, address) at the
                national server, the way an operator makes them: the operator port, TLS 1.3
                with a clerk's card, login with the PIN, then `lookup` requests one after
                another on that one session (what juki-ctl sends, without a process, a
                handshake and a login per lookup); p50, p99 and max of the round trip and
                lookups per second. Each lookup is counted against the operator's allowance
                and written to the operation history, as every operator's lookup is (at a
                prefecture also its use, provision kind `use`): one commit of the history,
                one of the store, two fdatasyncs a lookup.
                Also a few whole `juki-ctl lookup` commands (process, handshake, card, login)
  reference     in the same run, on the same store file: the same lookups as the daemon's own
                SQL by Python's sqlite3 (the four-item key's hash taken from the row), and
                by code also by the plain C loop of tests/bench/lookup_ceiling.c; and the
                floor of a lookup that commits: fdatasync of a 4 KiB write on the same disk
  changes       the rate of N further changes (births, 職権記載) imported at the CS and carried
                CS -> gateway -> pref -> national, until all are at the national server; the
                CPU each daemon spent per change
  rss           each daemon's peak RSS while it served the lookups and the changes (VmHWM,
                reset after the load by writing 5 to /proc/PID/clear_refs) and its RSS after
  bytes/rec     the store file's bytes per current record
  backup_s      `juki-ctl backup DIR`, then `juki-ctl backup verify DIR`
  purge_s       `juki-ctl purge` (nothing of the loaded records is due: the work of a day's run)
  restart_s     SIGTERM, start, until the daemon answers ready

At the smallest size it also measures what history costs: 100,000 people (a tenth, below a
million) get a second version (転居: a new address) by `juki-ctl load --merge`, and the store's
growth per history row is printed (hist_bytes): in pages used, the free pages that the file held
before and the merge took again not counted as new, with the file's own growth beside it. It
includes what the current records grow by (a new address is longer, and a packed page that a
grown record no longer fits in splits), which depends on the share of the people changed: a year
changes about a tenth of the nation, as this step does at 1M. The forecast at 125 million adds
the history of a year, a year's changes (--year-changes, default 15 million: about 5 million
moves between municipalities a year, each two change records, besides moves within a
municipality, births, deaths and name changes) at that many bytes each.

Prints a block per size and a table, fits a line to each figure against size (a + b*N, least
squares) with the figure at 125 million records, and with gnuplot draws each (PNG); --json
prints the rows as JSON at the end.

    python3 tests/bench/bench_nation.py [--sizes 1M,5M] [--changes N] [--lookups K]
                                        [--year-changes Y] [--dir DIR] [--plots DIR]
                                        [--json] [--keep]
"""

import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from bench_honnin import cpu_s, percentile  # noqa: E402
from bench_provide import fsync_ms  # noqa: E402
from jukitest import BUILD, CTL, Network  # noqa: E402
from jukitest.synth import Synth, change_row, import_csv  # noqa: E402
from test_operators import RawSession  # noqa: E402
import bench_load  # noqa: E402
from benchargs import at_least, directory, size_list  # noqa: E402

GW, CS, PREF, JLIS = "fwgate:east", "cs:131016", "pref:13", "jlis:0"
LG = "131016"
DAEMONS = (("csd", CS), ("prefd", PREF), ("jlisd", JLIS), ("fwgated", GW))
FORECAST_AT = 125_000_000
PURPOSE = "inquiry"


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def reset_hwm(pid):
    """VmHWM back to the current RSS (proc(5), clear_refs: 5)."""
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def timed(argv):
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("%s failed: %s %s" % (" ".join(argv[3:]), p.stdout, p.stderr))
    return time.monotonic() - t


def query(path, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=60)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def used(path):
    """Bytes of the pages in use, free pages not counted: a file's size keeps pages freed."""
    count, free, size = query(path, "SELECT * FROM pragma_page_count, pragma_freelist_count,"
                                    " pragma_page_size")[0]
    return (count - free) * size


def max_id(path):
    return query(path, "SELECT coalesce(max(id), 0) FROM honnin")[0][0]


def since(path, base):
    """Rows of honnin after rowid base: a range of the table, not a count of all of it."""
    return query(path, "SELECT count(*) FROM honnin WHERE id > ?", (base,))[0][0]


def split_rows(src_path, sizes, workdir):
    """The generated rows cut at the sizes: file i holds rows sizes[i-1] .. sizes[i] - 1, so
    that the first i + 1 files are the first sizes[i] rows."""
    files = []
    with open(src_path, encoding="utf-8") as src:
        src.readline()
        start = 0
        for i, n in enumerate(sizes):
            path = os.path.join(workdir, "rows-%d.csv" % i)
            with open(path, "w", encoding="utf-8") as out:
                out.write(bench_load.COLS + "\n")
                for _ in range(n - start):
                    out.write(src.readline())
            os.chmod(path, 0o644)
            files.append(path)
            start = n
    os.unlink(src_path)
    return files


def history_rows(rows_path, every, path):
    """A second version (転居, a new address in the same municipality) of every every-th row
    of rows_path, recorded a second later; the number of rows."""
    n = 0
    cols = bench_load.COLS.split(",")
    with open(rows_path, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as out:
        out.write(src.readline())
        for i, line in enumerate(src):
            if i % every:
                continue
            v = dict(zip(cols, line.rstrip("\n").split(",")))
            v["version"], v["reason"] = "2", "転居"
            v["recorded"] = v["recorded"].replace(".000Z", ".001Z")
            v["address"] = v["address"].rsplit("丁目", 1)[0] + "丁目99番99号"
            out.write(",".join(v[c] for c in cols) + "\n")
            n += 1
    os.chmod(path, 0o644)
    return n


# Lookups ------------------------------------------------------------------------------------

SQL_CODE = "SELECT rec, received_ms, sender FROM honnin WHERE code = ?1"
# The daemon's own (juki_honnin_find, libjuki/src/records/honnin.c), the key bound as read.
SQL_ATTRS = ("SELECT rec, received_ms, sender FROM honnin WHERE code IN"
             " (SELECT code FROM honnin_person WHERE pkey = ?6"
             " UNION ALL SELECT code FROM honnin_person_new WHERE pkey = ?6)"
             " AND json_extract(CAST(rec AS TEXT), '$.person.name') = ?1"
             " AND json_extract(CAST(rec AS TEXT), '$.person.birth') = ?2"
             " AND json_extract(CAST(rec AS TEXT), '$.person.sex') = ?3"
             " AND json_extract(CAST(rec AS TEXT), '$.person.address') = ?4"
             " ORDER BY code LIMIT ?5")


def sample_people(path, k, seed):
    """k current records picked at random by rowid: code, the four items, the person key."""
    top = max_id(path)
    rng = random.Random(seed)
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=60)
    people, tries = [], 0
    try:
        while len(people) < k and tries < 20 * k:
            tries += 1
            row = con.execute("SELECT code, pkey, rec FROM honnin WHERE id = ? AND kind != 1",
                              (rng.randint(1, top),)).fetchone()
            if row is None:
                continue
            person = json.loads(row[2])["person"]
            people.append({"code": row[0], "pkey": row[1], "name": person["name"],
                           "birth": person["birth"], "sex": int(person["sex"]),
                           "address": person["address"]})
    finally:
        con.close()
    return people


def lookups(net, op, people):
    """Each person looked up by code, then each by the four items, on one operator session:
    the round trips in ms of each series and the seconds each series took."""
    s = RawSession(net, net[JLIS].op_address, op)
    try:
        s.send("login", {"pin": op.pin})
        ans = s.recv()
        if not (ans and ans["ok"]):
            raise SystemExit("login at the national server refused: %s" % ans)
        out = {}
        for by in ("code", "attrs"):
            rtt = []
            t0 = time.perf_counter()
            for p in people:
                if by == "code":
                    args = {"purpose": PURPOSE, "code": p["code"]}
                else:
                    args = {"purpose": PURPOSE, "name": p["name"], "birth": p["birth"],
                            "sex": p["sex"], "address": p["address"]}
                t = time.perf_counter()
                s.send("lookup", args)
                ans = s.recv()
                rtt.append((time.perf_counter() - t) * 1000)
                if not (ans and ans["ok"]) or \
                        p["code"] not in [r["code"] for r in ans["result"]["records"]]:
                    raise SystemExit("lookup by %s of %s: %s" % (by, p["code"], ans))
            out[by] = (rtt, time.perf_counter() - t0)
        return out
    finally:
        s.close()


def reference(path, people, workdir, lookup_max=10):
    """The same lookups by the daemon's SQL (Python's sqlite3, one connection, one read
    transaction each series) and by code by lookup_ceiling.c: lookups per second each."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=60)
    out = {}
    try:
        for by in ("code", "attrs"):
            t0 = time.perf_counter()
            con.execute("BEGIN")
            for p in people:
                if by == "code":
                    rows = con.execute(SQL_CODE, (p["code"],)).fetchall()
                else:
                    rows = con.execute(SQL_ATTRS, (p["name"], p["birth"], p["sex"],
                                                   p["address"], lookup_max + 1,
                                                   p["pkey"])).fetchall()
                if not rows:
                    raise SystemExit("reference: %s not found by %s" % (p["code"], by))
            con.execute("COMMIT")
            out[by] = len(people) / (time.perf_counter() - t0)
    finally:
        con.close()
    cfile = os.path.join(workdir, "codes.txt")
    with open(cfile, "w") as f:
        f.write("\n".join(p["code"] for p in people) + "\n")
    with open(cfile, "rb") as f:
        res = subprocess.run([os.path.join(BUILD, "tests", "bench", "lookup_ceiling"), path],
                             stdin=f, capture_output=True, text=True, check=True).stdout
    out["c_code"] = float(res.split("lookups_per_s")[1])
    return out


# Changes ------------------------------------------------------------------------------------

# bench_load.generate's codes: the first ten digits are (i * A + B) mod 10^10 for row i.
GEN_A, GEN_B, TEN = 7_919_000_003, 1_234_567_891, 10_000_000_000
GEN_A_INV = pow(GEN_A, -1, TEN)


def generated(code, rows):
    """Whether code is one of the first rows rows of bench_load.generate."""
    return (int(code[:10]) - GEN_B) * GEN_A_INV % TEN < rows


def change_files(s, n, rows, file_rows, step, workdir):
    """n births at the CS as import files of file_rows rows: people of Synth s (never the same
    code twice) whose codes are none of the rows rows the national server is loaded from."""
    files, batch, made = [], [], 0
    while made < n:
        p = s.person(LG)
        if generated(p["code"], rows):
            continue
        made += 1
        batch.append(change_row(p, "職権記載"))
        if len(batch) == file_rows or made == n:
            path = os.path.join(workdir, "import-%d-%05d.csv" % (step, len(files)))
            with open(path, "w", encoding="utf-8") as f:
                f.write(import_csv(batch))
            files.append(path)
            batch = []
    return files


def changes(net, files, n):
    """Drops the files in the CS's import spool at once; seconds until all n are at each of
    cs, pref and jlis, and the CPU seconds each daemon spent meanwhile."""
    stores = {name: net[node].store for name, node in (("cs", CS), ("pref", PREF),
                                                         ("jlis", JLIS))}
    base = {name: max_id(path) for name, path in stores.items()}
    incoming = os.path.join(net[CS].spool, "incoming")
    for path in files:
        shutil.copy(path, os.path.join(incoming, "." + os.path.basename(path)))
    pids = {name: net[node].proc.pid for name, node in DAEMONS}
    cpu0 = {name: cpu_s(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    for path in files:
        name = os.path.basename(path)
        os.rename(os.path.join(incoming, "." + name), os.path.join(incoming, name))
    done = {}
    while len(done) < 3:
        time.sleep(0.25)
        now = time.monotonic() - t0
        for name, path in stores.items():
            if name not in done and since(path, base[name]) >= n:
                done[name] = now
        if now > 3600:
            raise SystemExit("the changes did not arrive within an hour: %s" % done)
    cpu = {name: cpu_s(pid) - cpu0[name] for name, pid in pids.items()}
    for path in files:
        os.unlink(path)
    return done, cpu


# Fits and plots -----------------------------------------------------------------------------

def line(xs, ys):
    """Least squares a + b*x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


FIGURES = ["load_rate", "load_hwm_mib", "code_p50_ms", "code_p99_ms", "code_per_s",
           "attrs_p50_ms", "attrs_p99_ms", "attrs_per_s", "ref_code_per_s", "ref_attrs_per_s",
           "ref_c_code_per_s", "fsync_p50_ms", "fsync_p99_ms", "command_p50_ms", "change_rate",
           "cpu_csd_us", "cpu_prefd_us", "cpu_jlisd_us",
           "csd_hwm_mib", "prefd_hwm_mib", "jlisd_hwm_mib", "fwgated_hwm_mib", "jlisd_rss_mib",
           "bytes_per_rec", "backup_s", "verify_s", "purge_s", "restart_s"]


def fit(xs, ys):
    """Both growths fitted by least squares: {"linear": (a, b, sse), "log": (a, b, sse)} for
    a + b*N and a + b*ln(N); the better is the one with the smaller sum of squared residuals
    (with two sizes both pass through the points: nothing tells them apart)."""
    out = {}
    for model, tx in (("linear", lambda x: x), ("log", math.log)):
        a, b = line([tx(x) for x in xs], ys)
        out[model] = (a, b, sum((a + b * tx(x) - y) ** 2 for x, y in zip(xs, ys)))
    return out


def at(model, a, b, n):
    return a + b * (math.log(n) if model == "log" else n)


def plot(rows, workdir, out_dir):
    """One PNG per figure with both fitted curves; returns {figure: fit()}."""
    fits = {}
    data = os.path.join(workdir, "nation.dat")
    with open(data, "w") as f:
        for r in rows:
            f.write(" ".join(str(r[k]) for k in ["n"] + FIGURES) + "\n")
    for i, fig in enumerate(FIGURES):
        if len(rows) < 2:
            continue
        fits[fig] = fit([r["n"] for r in rows], [r[fig] for r in rows])
        if shutil.which("gnuplot") is None:
            continue
        (la, lb, _), (ga, gb, _) = fits[fig]["linear"], fits[fig]["log"]
        script = """
set terminal png noenhanced size 640,400
set output '%s'
set xlabel 'current records at the national server'
set ylabel '%s'
set key left top
set yrange [0:*]
plot '%s' using 1:%d with linespoints pt 7 title '%s', %r + %r * x title 'a + b N', \\
     %r + %r * log(x) title 'a + b ln N'
""" % (os.path.join(out_dir, "nation-%s.png" % fig), fig, data, i + 2, fig, la, lb, ga, gb)
        subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    return fits


def report(r):
    print("%d current records at the national server" % r["n"])
    print("  load      %d rows in %.1f s, %d rows/s; jlisd peak RSS during it %.1f MiB" % (
        r["n"], r["load_s"], r["load_rate"], r["load_hwm_mib"]))
    print("  lookups   by code  p50 %.2f ms p99 %.2f ms max %.1f ms %6d/s  (reference: daemon's "
          "SQL %d/s, C loop %d/s)" % (r["code_p50_ms"], r["code_p99_ms"], r["code_max_ms"],
                                       r["code_per_s"], r["ref_code_per_s"],
                                       r["ref_c_code_per_s"]))
    print("            by four  p50 %.2f ms p99 %.2f ms max %.1f ms %6d/s  (reference: daemon's "
          "SQL %d/s)" % (r["attrs_p50_ms"], r["attrs_p99_ms"], r["attrs_max_ms"],
                         r["attrs_per_s"], r["ref_attrs_per_s"]))
    print("            fdatasync of 4 KiB on the same disk p50 %.2f ms p99 %.2f ms (a lookup "
          "makes 2); whole juki-ctl lookup p50 %.1f ms p99 %.1f ms" % (
              r["fsync_p50_ms"], r["fsync_p99_ms"], r["command_p50_ms"], r["command_p99_ms"]))
    print("  changes   %d CS -> pref -> jlis in %.1f s: %d changes/s (at cs %.1f s, pref %.1f s);"
          " CPU us/change csd %.1f prefd %.1f jlisd %.1f fwgated %.1f" % (
              r["changes"], r["change_s"], r["change_rate"], r["change_cs_s"],
              r["change_pref_s"], r["cpu_csd_us"], r["cpu_prefd_us"], r["cpu_jlisd_us"],
              r["cpu_fwgated_us"]))
    print("  peak RSS  (lookups + changes) csd %.1f prefd %.1f jlisd %.1f fwgated %.1f MiB; "
          "jlisd RSS after %.1f MiB" % (r["csd_hwm_mib"], r["prefd_hwm_mib"],
                                        r["jlisd_hwm_mib"], r["fwgated_hwm_mib"],
                                        r["jlisd_rss_mib"]))
    print("  store     %.1f B/rec; backup %.1f s verify %.1f s; purge %.1f s; restart %.1f s" % (
        r["bytes_per_rec"], r["backup_s"], r["verify_s"], r["purge_s"], r["restart_s"]),
        flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=size_list, default="100k,200k,400k",
                    help="sizes of the store, smallest first: 250000, 250k, 2.5M")
    ap.add_argument("--changes", type=at_least(1), default=100_000,
                    help="changes through CS -> pref -> national at each size")
    ap.add_argument("--lookups", type=at_least(1), default=2000,
                    help="lookups of each kind per size")
    ap.add_argument("--commands", type=at_least(0), default=20,
                    help="whole juki-ctl lookup commands per size")
    ap.add_argument("--file-rows", type=at_least(1), default=5000,
                    help="rows per CS import file")
    ap.add_argument("--year-changes", type=at_least(0), default=15_000_000,
                    help="change records a year at the nation, for the forecast's history")
    ap.add_argument("--dir", type=directory, default=None,
                    help="where to work (default: a temp dir)")
    ap.add_argument("--plots", type=directory, default=None,
                    help="where to write the PNGs (default: --dir)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sizes = args.sizes
    if 2 * args.lookups + args.commands > 100_000 or len(sizes) > 14:
        ap.error("2 x --lookups + --commands at most 100,000 (the operator's allowance), "
                 "at most 14 sizes")
    workdir = tempfile.mkdtemp(prefix="juki-bench-nation-", dir=args.dir)
    os.chmod(workdir, 0o755)
    tempfile.tempdir = workdir
    os.environ["TMPDIR"] = workdir
    rows, hist = [], None

    def conf(net):
        for d in net.daemons.values():
            d.extra["log_level"] = "notice"
        # One clerk makes every lookup of the run: the allowance must not be what is measured.
        net[JLIS].operator["lookups_per_minute"] = 100_000

    try:
        t = time.monotonic()
        src_path = os.path.join(workdir, "rows.csv")
        bench_load.generate(sizes[-1], src_path)
        parts = split_rows(src_path, sizes, workdir)
        print("generated %d rows in %.0f s" % (sizes[-1], time.monotonic() - t), flush=True)
        synth = Synth(seed=2026)
        for i, n in enumerate(sizes):
            with Network([GW, CS, PREF, JLIS], configure=conf) as net:
                d = net[JLIS]
                reset_hwm(d.proc.pid)
                load_s = timed([CTL, "-s", d.socket, "-t", "3600s", "load"] + parts[:i + 1])
                hwm_load = vm(d.proc.pid, "VmHWM")
                assert d.status()["records"]["current"] == n
                clerk = d.add_operator("clerk", ["clerk"])
                # The generated files' writeback is not the daemons' to wait for.
                os.sync()
                for _, node in DAEMONS:
                    reset_hwm(net[node].proc.pid)

                people = sample_people(d.store, args.lookups, seed=n)
                got = lookups(net, clerk, people)
                ref = reference(d.store, people, workdir)
                cmd = []
                for p in people[:args.commands]:
                    t = time.perf_counter()
                    clerk.ctl("lookup", "--purpose", PURPOSE, p["code"])
                    cmd.append((time.perf_counter() - t) * 1000)
                sync = fsync_ms(workdir)

                files = change_files(synth, args.changes, sizes[-1], args.file_rows, i,
                                     workdir)
                done, cpu = changes(net, files, args.changes)
                hwm = {name: vm(net[node].proc.pid, "VmHWM") for name, node in DAEMONS}
                rss = vm(d.proc.pid, "VmRSS")
                total = n + args.changes

                bdir = os.path.join(workdir, "backup-%d" % n)
                backup_s = timed([CTL, "-s", d.socket, "-t", "3600s", "backup", bdir])
                verify_s = timed([CTL, "-t", "3600s", "backup", "verify", bdir])
                shutil.rmtree(bdir)
                purge_s = timed([CTL, "-s", d.socket, "-t", "3600s", "purge"])
                t = time.monotonic()
                d.stop(timeout=600)
                d.start()
                restart_s = time.monotonic() - t
                assert d.status()["records"]["current"] == total
                # Stopped, the store's WAL was checkpointed into the file: its size is the data's.
                size_before = os.path.getsize(d.store)
                used_before = used(d.store)

                if hist is None:
                    # What a history row costs: a second version of 100,000 people (a tenth
                    # below a million: at 25M a tenth took longer than the rest of the step).
                    hpath = os.path.join(workdir, "history.csv")
                    k = history_rows(parts[0], max(10, n // 100_000), hpath)
                    secs = timed([CTL, "-s", d.socket, "-t", "3600s", "load", "--merge", hpath])
                    os.unlink(hpath)
                    st = d.status()["records"]
                    assert st["current"] == total and st["history"] == k, st
                    d.stop(timeout=600)
                    hist = {"rows": k, "share": round(k / n, 4), "load_s": round(secs, 2),
                            "bytes": round((used(d.store) - used_before) / k, 1),
                            "file_bytes": round((os.path.getsize(d.store) - size_before) / k, 1)}
                    d.start()
                    print("history   %d second versions (%.1f %% of the people) loaded (--merge) "
                          "in %.1f s, %d rows/s; %.1f B per history row in pages used (the file "
                          "grew %.1f B a row)" % (k, 100 * k / n, secs, k / secs, hist["bytes"],
                                                  hist["file_bytes"]))

                r = {"n": n, "load_s": round(load_s, 2),
                     "load_rate": round(n / load_s), "load_hwm_mib": round(hwm_load, 1),
                     "lookups": len(people)}
                for by in ("code", "attrs"):
                    rtt, secs = got[by]
                    r[by + "_p50_ms"] = round(percentile(rtt, 50), 3)
                    r[by + "_p99_ms"] = round(percentile(rtt, 99), 3)
                    r[by + "_max_ms"] = round(max(rtt), 3)
                    r[by + "_per_s"] = round(len(rtt) / secs)
                    r["ref_%s_per_s" % by] = round(ref[by])
                r["ref_c_code_per_s"] = round(ref["c_code"])
                r["fsync_p50_ms"] = round(percentile(sync, 50), 3)
                r["fsync_p99_ms"] = round(percentile(sync, 99), 3)
                r["command_p50_ms"] = round(percentile(cmd, 50), 1) if cmd else 0
                r["command_p99_ms"] = round(percentile(cmd, 99), 1) if cmd else 0
                r.update({"changes": args.changes, "change_s": round(done["jlis"], 2),
                          "change_rate": round(args.changes / done["jlis"]),
                          "change_cs_s": round(done["cs"], 2),
                          "change_pref_s": round(done["pref"], 2)})
                for name, secs in cpu.items():
                    r["cpu_%s_us" % name] = round(secs * 1e6 / args.changes, 1)
                for name, v in hwm.items():
                    r["%s_hwm_mib" % name] = round(v, 1)
                r.update({"jlisd_rss_mib": round(rss, 1),
                          "bytes_per_rec": round(size_before / total, 1),
                          "backup_s": round(backup_s, 2), "verify_s": round(verify_s, 2),
                          "purge_s": round(purge_s, 2), "restart_s": round(restart_s, 2),
                          "loadavg": round(os.getloadavg()[0], 1)})
                rows.append(r)
                report(r)
        print()
        cols = ["n", "load_rate", "code_p50_ms", "code_p99_ms", "code_per_s", "attrs_p50_ms",
                "attrs_p99_ms", "attrs_per_s", "change_rate", "csd_hwm_mib", "prefd_hwm_mib",
                "jlisd_hwm_mib", "fwgated_hwm_mib", "bytes_per_rec", "loadavg"]
        print("  ".join("%12s" % c for c in cols))
        for r in rows:
            print("  ".join("%12s" % r[c] for c in cols))
        if len(rows) >= 2:
            out = args.plots or args.dir or workdir
            os.makedirs(out, exist_ok=True)
            print("growth fitted by least squares, a + b*N and a + b*ln(N), and each at %d "
                  "(* the better fit; sse: the sum of squared residuals):" % FORECAST_AT)
            fits = plot(rows, workdir, out)
            for fig, f in fits.items():
                best = min(f, key=lambda m: f[m][2])
                print("  %-16s" % fig + "  ".join(
                    "%s%-6s a %10.4g b %10.4g sse %9.3g at 125M %10.4g" % (
                        "*" if m == best and len(rows) > 2 else " ", m, a, b, sse,
                        at(m, a, b, FORECAST_AT)) for m, (a, b, sse) in f.items()))
            if shutil.which("gnuplot"):
                print("plots: %s/nation-*.png" % out)
        # Bytes per record hardly move with size: the largest size's figure, not a line.
        per_rec = rows[-1]["bytes_per_rec"]
        store = FORECAST_AT * per_rec + args.year_changes * hist["bytes"]
        print("store at 125M current records: %.1f GiB (%.1f B/rec, as at %d), and %.1f GiB "
              "with a year's history (%d change records at %.1f B)" % (
                  FORECAST_AT * per_rec / 2**30, per_rec, rows[-1]["n"], store / 2**30,
                  args.year_changes, hist["bytes"]))
        first, last = rows[0], rows[-1]
        print("ingest at %d / ingest at %d: %.2f (changes CS -> pref -> national)" % (
            last["n"], first["n"], last["change_rate"] / first["change_rate"]))
        print("ratios to the reference (the daemon's lookups / the same SQL by sqlite3): " +
              ", ".join("%d: code %.3g four items %.3g" % (
                  r["n"], r["code_per_s"] / r["ref_code_per_s"],
                  r["attrs_per_s"] / r["ref_attrs_per_s"]) for r in rows))
        print("load average: %s on %d CPUs" % (" ".join("%.1f" % x for x in os.getloadavg()),
                                              os.cpu_count()))
        if args.json:
            print(json.dumps({"sizes": rows, "history": hist}))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
