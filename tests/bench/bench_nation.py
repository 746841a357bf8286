"""How cost grows with the national server's store (issue 14 part 1) — A FIRST PART ONLY.

Grows the store of a real juki-jlisd step by step with the bulk load (the first size into the
empty store, each further step with `juki-ctl load --merge` of the rows it adds) and at each
size measures, on the real daemon:

  load_s        the step's load (fresh, then merged), and its rate
  bytes/rec     the store file's bytes per current record
  rss_mib       the daemon's resident memory after the step and its peak (VmHWM)
  backup_s      `juki-ctl backup DIR`, then `juki-ctl backup verify DIR`
  purge_s       `juki-ctl purge` (nothing of the loaded records is due: the work of a day's run)
  restart_s     SIGTERM, start, until the daemon answers ready

Prints a table, fits a line to each figure against size (a + b*N, least squares) with the
forecast at 125 million records, and with gnuplot draws each (PNG).

The line is fitted to what was measured and says nothing beyond it: over sizes a hundred
times smaller than the nation, read it as the direction of growth, not as a forecast.
Growing with --merge runs every record through the precedence rule in one transaction
(measured: a few thousand rows a second under load), so large steps take long.

Not measured yet (the rest of part 1): the rate of a further 100,000 changes through
CS -> pref -> national at each size, lookups by code and by the four items (p50, p99, per
second: they need a client that keeps one operator session, not one juki-ctl process per
lookup), the history a year adds.

    python3 tests/bench/bench_nation.py [--sizes 100k,200k] [--dir DIR] [--keep]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from jukitest import CTL, Network  # noqa: E402
import bench_load  # noqa: E402

JLIS = "jlis:0"
FORECAST_AT = 125_000_000


def size_of(text):
    t = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1], 1)
    return int(float(t[:-1] if t[-1] in "km" else t) * mult)


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def timed(argv):
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("%s failed: %s %s" % (" ".join(argv[3:]), p.stdout, p.stderr))
    return time.monotonic() - t


def split_rows(src, sizes, workdir):
    """The generated file cut into one file per step: rows (prev, size]."""
    paths, prev = [], 0
    with open(src, encoding="utf-8") as f:
        header = f.readline()
        for n in sizes:
            path = os.path.join(workdir, "step-%d.csv" % n)
            with open(path, "w", encoding="utf-8") as out:
                out.write(header)
                for _ in range(n - prev):
                    out.write(f.readline())
            os.chmod(path, 0o644)
            paths.append(path)
            prev = n
    return paths


def line(xs, ys):
    """Least squares a + b*x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


FIGURES = ["load_rate", "bytes_per_rec", "rss_mib", "hwm_mib", "backup_s", "verify_s",
           "purge_s", "restart_s"]


def plot(rows, workdir, out_dir):
    """One PNG per figure with its least-squares line; returns {figure: (a, b, at 125M)}."""
    fits = {}
    data = os.path.join(workdir, "nation.dat")
    with open(data, "w") as f:
        for r in rows:
            f.write(" ".join(str(r[k]) for k in ["n"] + FIGURES) + "\n")
    for i, fig in enumerate(FIGURES):
        a, b = line([r["n"] for r in rows], [r[fig] for r in rows])
        fits[fig] = (a, b, a + b * FORECAST_AT)
        if shutil.which("gnuplot") is None:
            continue
        script = """
set terminal png size 640,400
set output '%s'
set xlabel 'current records'
set ylabel '%s'
plot '%s' using 1:%d with linespoints title '%s', %r + %r * x title 'a + b N'
""" % (os.path.join(out_dir, "nation-%s.png" % fig), fig, data, i + 2, fig, a, b)
        subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    return fits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100k,200k,400k")
    ap.add_argument("--dir", default=None, help="where to work (default: a temp dir)")
    ap.add_argument("--plots", default=None, help="where to write the PNGs (default: --dir)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sizes = sorted(size_of(s) for s in args.sizes.split(","))
    workdir = tempfile.mkdtemp(prefix="juki-bench-nation-", dir=args.dir)
    os.chmod(workdir, 0o755)
    tempfile.tempdir = workdir
    rows = []
    try:
        src = os.path.join(workdir, "rows.csv")
        bench_load.generate(sizes[-1], src)
        steps = split_rows(src, sizes, workdir)
        with Network([JLIS]) as net:
            d = net[JLIS]
            for i, (n, path) in enumerate(zip(sizes, steps)):
                argv = [CTL, "-s", d.socket, "-t", "3600s", "load"]
                load_s = timed(argv + (["--merge"] if i else []) + [path])
                added = n - (sizes[i - 1] if i else 0)
                assert d.status()["records"]["current"] == n
                bdir = os.path.join(workdir, "backup-%d" % n)
                backup_s = timed([CTL, "-s", d.socket, "-t", "3600s", "backup", bdir])
                verify_s = timed([CTL, "-t", "3600s", "backup", "verify", bdir])
                shutil.rmtree(bdir)
                purge_s = timed([CTL, "-s", d.socket, "-t", "3600s", "purge"])
                rss, hwm = vm(d.proc.pid, "VmRSS"), vm(d.proc.pid, "VmHWM")
                t = time.monotonic()
                d.stop(timeout=600)
                d.start()
                restart_s = time.monotonic() - t
                rows.append({"n": n, "load_s": round(load_s, 2),
                             "load_rate": round(added / load_s),
                             "bytes_per_rec": round(os.path.getsize(d.store) / n, 1),
                             "rss_mib": round(rss, 1), "hwm_mib": round(hwm, 1),
                             "backup_s": round(backup_s, 2), "verify_s": round(verify_s, 2),
                             "purge_s": round(purge_s, 2), "restart_s": round(restart_s, 2)})
                r = rows[-1]
                print("%10d  load %6.1f s %7d rows/s  %6.1f B/rec  rss %6.1f MiB (peak %6.1f)  "
                      "backup %5.1f s verify %5.1f s  purge %5.1f s  restart %5.1f s" % (
                          n, r["load_s"], r["load_rate"], r["bytes_per_rec"], r["rss_mib"],
                          r["hwm_mib"], r["backup_s"], r["verify_s"], r["purge_s"],
                          r["restart_s"]), flush=True)
        if len(rows) >= 2:
            out = args.plots or args.dir or workdir
            print("growth, a + b*N fitted by least squares, and the figure at %d:" % FORECAST_AT)
            for fig, (a, b, v) in plot(rows, workdir, out).items():
                print("  %-14s a %10.4g  b %10.4g per record  at 125M %10.4g" % (fig, a, b, v))
            if shutil.which("gnuplot"):
                print("plots: %s/nation-*.png" % out)
        with open("/proc/loadavg") as f:
            print("load average: %s" % " ".join(f.read().split()[:3]))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
