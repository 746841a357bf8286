"""The nation's peak day, small (docs/benchmarks.md, "The nation's peak day").

The simulated municipalities of scripts/sim-nation.sh (tests/bench/sim_cs.c) speak the node
protocol to a real gateway and real prefectural servers: what they send is recorded and
reconciled, a revoked certificate is refused at the gateway, and the whole simulation run small
finds nothing lost or doubled.
"""

import json
import os
import signal
import subprocess
import sys

from jukitest import BUILD, SOURCE, Network, run_cases, run_ctl, store_rows, wait_until

SIM = os.path.join(BUILD, "tests", "bench", "sim_cs")
A, B = "131016", "131024"  # 千代田区, 中央区


def run_sim(net, plan_lines, tmp):
    plan = os.path.join(tmp, "plan.tsv")
    with open(plan, "w", encoding="utf-8") as f:
        f.write("".join(plan_lines))
    p = subprocess.run([SIM, "--gateway", net["fwgate:sim"].address, "--pki", net.pki,
                        "--plan", plan, "--batch-records", "100", "--concurrency", "2"],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, {r["lgcode"]: r for r in map(json.loads, p.stdout.splitlines())}, \
        p.stderr


def case_records_acked_and_counts_agree():
    with Network(["fwgate:sim", "pref:13", "jlis:0"],
                 extra_identities=["cs:" + A, "cs:" + B]) as net:
        rc, out, err = run_sim(net, ["%s\t250\t0\t東京都千代田区本町\n" % A,
                                     "%s\t7\t250\t東京都中央区本町\n" % B], net.dir)
        assert rc == 0, err
        for lg, n in ((A, 250), (B, 7)):
            r = out[lg]
            assert r["status"] == "ok" and r["changes"] == n, r
            # The prefecture's answer to the count query is what the CS sent.
            assert r["pref_total"] == n and r["pref_digest"] == r["digest"], r
        rows = store_rows(net["pref:13"].store,
                          "SELECT lgcode, count(*), count(DISTINCT code) FROM honnin "
                          "GROUP BY lgcode ORDER BY lgcode")
        assert rows == [(A, 250, 250), (B, 7, 7)], rows
        # 250 records in batches of 100: three messages, each forwarded on to the nation.
        wait_until("the nation holds them", lambda: store_rows(
            net["jlis:0"].store, "SELECT count(*) FROM honnin")[0][0] == 257)


def case_revoked_municipality_refused():
    with Network(["fwgate:sim", "pref:13", "jlis:0"],
                 extra_identities=["cs:" + A, "cs:" + B]) as net:
        run_ctl("pki", "revoke", net.pki, "urn:juki:cs:" + B)
        gw = net["fwgate:sim"]
        before = gw.log_text().count(": reloaded")
        gw.signal(signal.SIGHUP)
        wait_until("the gateway reloaded", lambda: gw.log_text().count(": reloaded") > before)
        rc, out, _ = run_sim(net, ["%s\t5\t0\t東京都千代田区本町\n" % A,
                                   "%s\t5\t5\t東京都中央区本町\n" % B], net.dir)
        assert rc == 1
        assert out[A]["status"] == "ok", out[A]
        assert out[B]["status"] == "failed" and out[B]["attempts"] >= 2, out[B]
        # Refused in the outer handshake by the gateway, which holds the new CRL (in TLS 1.3
        # the client sees only the connection closed: docs/protocol.md §4).
        assert "alert: revoked-certificate" in gw.log_text()
        rows = store_rows(net["pref:13"].store,
                          "SELECT lgcode, count(*) FROM honnin GROUP BY lgcode")
        assert rows == [(A, 5)], rows


def case_small_nation_nothing_lost():
    p = subprocess.run([sys.executable, os.path.join(SOURCE, "tests", "bench",
                                                     "sim_nation.py"),
                        "--municipalities", "5", "--changes", "400", "--procs", "2", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:] + p.stdout[-3000:]
    out = json.loads(p.stdout)
    assert out["municipalities"] == 5 and out["changes"] == 400, out
    assert out["check"]["nproblems"] == 0, out["check"]
    assert out["check"]["municipalities_ok"] == 5, out["check"]
    # Every store was counted and digested: each prefecture of the five and the centre.
    assert out["check"]["stores_checked"] == out["prefectures"] + 1, out
    assert out["check"]["pref_centre_days_ok"] == out["prefectures"], out
    assert set(out["usage"]) >= {"juki-fwgated", "juki-prefd", "juki-jlisd", "sim_cs"}
    assert out["reconciled_s"] >= out["cs_acked_and_reconciled_s"] > 0


def case_bad_arguments():
    p = subprocess.run([sys.executable, os.path.join(SOURCE, "tests", "bench",
                                                     "sim_nation.py"),
                        "--municipalities", "10", "--changes", "5"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "at least one per municipality" in p.stderr, p.stderr


if __name__ == "__main__":
    run_cases([case_records_acked_and_counts_agree, case_revoked_municipality_refused,
               case_small_nation_nothing_lost, case_bad_arguments])
