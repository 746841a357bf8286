"""Benchmark of provision to agencies (docs/benchmarks.md).

The national server holding N records (sent from one CS through the gateway and the
prefectural server, as bench_honnin does); one state agency under an approved agreement;
then, through the gateway with the agency's certificate and its staff member's card:

  - a batch of N queries by code (`juki-ctl provide batch`, with the 責任者's approval),
    answered with a provision record written per person;
  - single online queries, one after another on one link (p50, p99 of the round trip),
    and whole `juki-ctl provide query` commands (a new link each: handshakes included);

and in the same run, on the same store file, the reference: the same codes looked up by a
plain C loop of point lookups by primary key (tests/bench/lookup_ceiling.c); and, as the floor of
an online query's latency (each one commits a provision record), fdatasync of a 4 KiB write on
the same disk. It also prints the CPU time each process spent during the batch.

    python3 tests/bench/bench_provide.py [--records N] [--single K] [--dir DIR]
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from bench_honnin import count, cpu_s, generate, hwm_kib, percentile  # noqa: E402
from jukitest import BUILD, SOURCE, Network, urn, wait_until  # noqa: E402
import test_provide as tp  # noqa: E402
import test_provide_client as tc  # noqa: E402
from benchargs import at_least, directory  # noqa: E402

AGREEMENT = "nenkin-bench"


def fsync_ms(workdir, n=200):
    """fdatasync of a 4 KiB write, n times, in workdir: the latencies in ms."""
    path = os.path.join(workdir, "fsync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    out = []
    try:
        for i in range(n):
            os.pwrite(fd, b"\0" * 4096, (i % 16) * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            out.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=at_least(1), default=1_000_000)
    ap.add_argument("--file-rows", type=at_least(1), default=5_000)
    ap.add_argument("--single", type=at_least(1), default=1000,
                    help="online queries on one link")
    ap.add_argument("--commands", type=at_least(1), default=50,
                    help="whole juki-ctl provide query")
    ap.add_argument("--dir", type=directory, default=None,
                    help="where to work (default: a temp dir)")
    args = ap.parse_args()
    n = args.records
    workdir = tempfile.mkdtemp(prefix="juki-bench-", dir=args.dir)
    try:
        print("generating %d people under %s" % (n, workdir), flush=True)
        files = generate(n, args.file_rows, workdir)
        with open(os.path.join(workdir, "rows.tsv"), encoding="utf-8") as f:
            codes = [line.split("\t", 1)[0] for line in f]
        os.unlink(os.path.join(workdir, "rows.tsv"))
        random.Random(2026).shuffle(codes)

        def conf(net):
            tp.configure(net)
            for d in net.daemons.values():
                d.extra["log_level"] = "notice"

        os.environ["TMPDIR"] = workdir
        tempfile.tempdir = workdir
        with Network(["fwgate:east", "cs:131016", "pref:13", "jlis:0"],
                     extra_identities=[tp.NENKIN, tp.SATO], configure=conf) as net:
            cs, jlis = net["cs:131016"], net["jlis:0"]
            incoming = os.path.join(cs.spool, "incoming")
            print("loading %d records into the national server ..." % n, flush=True)
            t0 = time.monotonic()
            for path in files:
                name = os.path.basename(path)
                shutil.copy(path, os.path.join(incoming, "." + name))
                os.rename(os.path.join(incoming, "." + name), os.path.join(incoming, name))
            wait_until("%d records at jlis" % n,
                       lambda: count(jlis.store, "SELECT count(*) FROM honnin") >= n,
                       timeout=3600, interval=0.5)
            print("  loaded in %.0f s" % (time.monotonic() - t0), flush=True)

            tp.active(net, "jlis:0", AGREEMENT, cap=n + args.single + args.commands + 10,
                      bulk=1000, jimu="1-3")
            staff = tc.Card(net, tc.OTHER)
            boss = tc.Card(net, tc.BOSS)
            body = tc.Body(net, staff, gateways=[net["fwgate:east"].address], deadline="4h")
            # The body file names the prefecture: point it at the nation.
            with open(body.path) as f:
                text = f.read().replace("server: urn:juki:pref:13", "server: urn:juki:jlis:0")
            with open(body.path, "w") as f:
                f.write(text)

            qfile = os.path.join(workdir, "queries.jsonl")
            with open(qfile, "w") as f:
                for c in codes:
                    f.write('{"code":"%s"}\n' % c)
            approval = tc.approve(net, boss, qfile)

            print("batch of %d queries by code ..." % n, flush=True)
            daemons = (("csd", cs), ("prefd", net["pref:13"]), ("jlisd", jlis),
                       ("fwgated", net["fwgate:east"]))
            cpu0 = {name: cpu_s(d.proc.pid) for name, d in daemons}
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            load0 = os.getloadavg()[0]
            t0 = time.monotonic()
            out = body.ctl("batch", "--agreement", AGREEMENT, "--jimu", "1-3", "--purpose",
                           tp.PURPOSE, "--approval", approval, qfile, timeout=4 * 3600)
            batch_s = time.monotonic() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            load1 = os.getloadavg()[0]
            cpu = {name: cpu_s(d.proc.pid) - cpu0[name] for name, d in daemons}
            cpu["juki-ctl"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
            with open(out["file"], encoding="utf-8") as f:
                answers = sum(1 for line in f if '"found":true' in line.replace(" ", ""))
            provided = count(jlis.store, "SELECT count(*) FROM provisions")

            # Single online queries, one after another on one link.
            rtt = []
            with tp.Body(net, tp.NENKIN, tp.SATO, "jlis:0") as link:
                for c in codes[:args.single]:
                    t1 = time.perf_counter()
                    ack = link.query(AGREEMENT, code=c)
                    rtt.append((time.perf_counter() - t1) * 1000)
                    assert ack["status"] == "accepted" and ack["result"]["found"], ack
            # Whole commands: a new process, a new link, both handshakes, the card.
            cmd = []
            for c in codes[:args.commands]:
                t1 = time.perf_counter()
                body.ctl("query", "--agreement", AGREEMENT, "--jimu", "1-3", "--purpose",
                         tp.PURPOSE, "--code", c)
                cmd.append((time.perf_counter() - t1) * 1000)

            rss = {name: hwm_kib(d.proc.pid) for name, d in daemons}

            print("reference: plain C loop of point lookups ...", flush=True)
            cfile = os.path.join(workdir, "codes.txt")
            with open(cfile, "w") as f:
                f.write("\n".join(codes) + "\n")
            with open(cfile, "rb") as f:
                ref_out = subprocess.run(
                    [os.path.join(BUILD, "tests", "bench", "lookup_ceiling"), jlis.store],
                    stdin=f, capture_output=True, text=True, check=True).stdout
            ref = float(ref_out.split("lookups_per_s")[1])
            sync = fsync_ms(workdir)

        rate = n / batch_s
        print()
        print("records at the national server: %d; one agency through the gateway; load "
              "average %.1f before the batch, %.1f after, on %d CPUs"
              % (n, load0, load1, os.cpu_count()))
        print("batch: %d queries by code in %.1f s, %.0f answers/s (found %d, provision "
              "records %d)" % (n, batch_s, rate, answers, provided))
        print("online query on one link: p50 %.2f ms, p99 %.2f ms (%d queries)"
              % (percentile(rtt, 50), percentile(rtt, 99), len(rtt)))
        print("CPU during the batch: " + ", ".join(
            "%s %.1f s (%.1f us/answer)" % (k, v, v * 1e6 / n) for k, v in cpu.items()))
        print("fdatasync of 4 KiB on the same disk: p50 %.2f ms, p99 %.2f ms (%d)"
              % (percentile(sync, 50), percentile(sync, 99), len(sync)))
        print("whole juki-ctl provide query (new link, handshakes): p50 %.1f ms, p99 %.1f ms "
              "(%d commands)" % (percentile(cmd, 50), percentile(cmd, 99), len(cmd)))
        print("peak RSS: " + ", ".join("%s %.1f MiB" % (k, v / 1024) for k, v in rss.items()))
        print("reference (plain C point lookups, same codes, same store): %.0f lookups/s" % ref)
        print("ratio: %.2f" % (rate / ref))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
