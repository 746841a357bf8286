"""Crash test: nothing lost, nothing twice (docs/design.md §4).

1,000 move-ins are queued at CS B for people living in CS A.  While the
notices flow, CS A is killed with SIGKILL and restarted; then the prefecture
of A is killed the same way.  In the end every 転入通知 has been applied once
at A (each person moved out exactly once, version 2), every move-in at B is
acknowledged as accepted, and pref:13 holds exactly 1,000 転出確定通知, one
per person and per notice.
"""

import json
import time

from jukitest import Network, run_cases, wait_until
from jukitest.synth import Synth

A, B, PREF = "cs:131016", "cs:271004", "pref:13"
N = 1000


def count_moveouts(net):
    return net[A].status()["moveouts"]


def case_kill_a_midway():
    s = Synth(seed=11)
    with Network(["fwgate:east", A, B, PREF, "pref:27", "jlis:0"]) as net:
        people = [s.person("131016") for _ in range(N)]
        net[A].ctl("resident", "add", "--file", "-",
                   input="\n".join(json.dumps(p) for p in people))
        assert net[A].status()["residents"] == {"resident": N}
        moves = [s.moved(p, "271004") for p in people]
        # The move-ins are recorded and queued while A is down, so that the
        # kill lands in the middle of the stream however fast the machine is.
        net[A].stop()
        out = net[B].ctl("movein", "--file", "-", input="\n".join(json.dumps(m) for m in moves))
        assert out["queued"] == N
        net[A].start()
        wait_until("A midway", lambda: count_moveouts(net) > 0, timeout=60, interval=0.001)
        net[A].kill9()
        at_kill = None
        net[A].start()
        at_kill = count_moveouts(net)
        assert at_kill < N, "A finished before the kill (%d); the test proves nothing" % at_kill
        # Kill the prefecture while confirmations still flow.
        wait_until("pref midway", lambda: net[PREF].ctl("confirmations", "--limit", 0)
                   ["total"] > 0, timeout=60, interval=0.001)
        net[PREF].kill9()
        net[PREF].start()

        wait_until("all confirmations at pref", lambda: net[PREF].ctl(
            "confirmations", "--limit", 0)["total"] >= N, timeout=120)
        wait_until("every move-in answered", lambda: net[B].status()["moveins"] ==
                   {"accepted": N}, timeout=120)
        wait_until("A's outbox empty", lambda: net[A].status()["outbound"]["queued"] == 0,
                   timeout=60)

        # Exactly once at A: every person moved out once.
        st = net[A].status()
        assert st["residents"] == {"removed": N}, st["residents"]
        assert st["moveouts"] == N
        for p in people[:: N // 20]:
            rec = net[A].ctl("resident", "show", p["code"])
            assert rec["version"] == 2 and len(rec["moveouts"]) == 1, rec
        # Exactly once at the prefecture: 1,000 confirmations, one per person and notice.
        rows = net[PREF].ctl("confirmations", "--limit", 2 * N)["confirmations"]
        assert len(rows) == N
        assert len({r["code"] for r in rows}) == N
        assert len({r["tennyu_id"] for r in rows}) == N
        assert {r["code"] for r in rows} == {p["code"] for p in people}
        # Nothing was refused anywhere; redeliveries were recognised as duplicates.
        assert net[B].ctl("outbox")["rejected"] == []
        assert net[A].ctl("outbox")["rejected"] == []
        assert net[A].status()["inbound"]["rejected"] == {}
        assert net[PREF].status()["inbound"]["rejected"] == {}
        print("A had applied %d notices when it was killed" % at_kill)


if __name__ == "__main__":
    run_cases([case_kill_a_midway])
