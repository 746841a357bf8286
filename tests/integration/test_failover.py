"""Redundant lines (第3-3(2)): a node lists a primary and a backup gateway.

When the primary is down (refused connections) or hung (no answer within
the connect timeout), deliveries go through the backup; when the primary
answers again, links move back to it.
"""

import json
import signal

from jukitest import Network, run_cases, wait_until
from jukitest.synth import Synth

A, B, PREF = "cs:131016", "cs:271004", "pref:13"
EAST, WEST = "fwgate:east", "fwgate:west"


def link(net, node, dest):
    for l in net[node].status()["outbound"]["links"]:
        if l["dest"] == dest:
            return l
    return None


def movein(net, s, person):
    net[B].ctl("movein", "--file", "-", input=json.dumps(s.moved(person, "271004")))


def accepted(net, code):
    return [r for r in net[B].ctl("movein", "list")["moveins"]
            if r["code"] == code and r["status"] == "accepted"]


def case_failover_and_back():
    s = Synth(seed=21)
    with Network([EAST, WEST, A, B, PREF, "pref:27", "jlis:0"]) as net:
        east, west = net[EAST], net[WEST]
        people = [s.person("131016") for _ in range(3)]
        net[A].ctl("resident", "add", "--file", "-",
                   input="\n".join(json.dumps(p) for p in people))

        # 1. Primary down: the notice goes through the backup.
        east.stop()
        movein(net, s, people[0])
        wait_until("delivery through the backup", lambda: accepted(net, people[0]["code"]))
        assert link(net, B, "urn:juki:cs:131016")["gateway"] == west.address
        assert west.status()["counters"]["tunnels"] >= 1
        wait_until("A's confirmation through the backup", lambda: net[PREF].ctl(
            "confirmations")["total"] == 1)

        # 2. Primary back: links return to it within the failback interval.
        east.start()
        wait_until("B back on the primary", lambda: (link(net, B, "urn:juki:cs:131016") or
                   {}).get("gateway") == east.address, timeout=20)
        movein(net, s, people[1])
        wait_until("delivery through the primary again", lambda: accepted(net, people[1]["code"]))
        assert east.status()["counters"]["tunnels"] >= 1


def case_hung_primary_times_out():
    """A primary that accepts TCP but never answers: the connect timeout moves on."""
    s = Synth(seed=22)
    with Network([EAST, WEST, A, B, PREF, "pref:27", "jlis:0"]) as net:
        for n in (A, B):
            net[n].delivery["connect_timeout"] = "1s"
            net[n].delivery["failback"] = "0"
            net[n].write_config()
            net[n].signal(signal.SIGHUP)
        wait_until("reloaded", lambda: all("reloaded" in net[n].log_text() for n in (A, B)))
        person = s.person("131016")
        net[A].ctl("resident", "add", "--file", "-", input=json.dumps(person))
        net[EAST].signal(signal.SIGSTOP)
        try:
            movein(net, s, person)
            wait_until("delivery despite the hung primary",
                       lambda: accepted(net, person["code"]), timeout=20)
            assert link(net, B, "urn:juki:cs:131016")["gateway"] == net[WEST].address
        finally:
            net[EAST].signal(signal.SIGCONT)


if __name__ == "__main__":
    run_cases([case_failover_and_back, case_hung_primary_times_out])
