"""Hardening: defects a review found, each shown from what a user would check.

Each topic is a block of cases with a comment header naming it; run_cases at
the end lists them all.
"""

import json
import os

from jukitest import Network, run_cases, wait_until
from jukitest.synth import Synth, change_row, import_csv


# ---------------------------------------------------------------------------
# Double registration (二重登録) and the refusals of a 転入通知
#
# A refused 転入通知 leaves the person current at the former municipality
# while the new one's 転入 reaches pref and jlis: they list the conflict and
# raise double-registration; the new municipality's clerk sees a task to
# resolve.  The former municipality tells the sender only no-match, keeps
# the precise reason for its own clerks, and alerts on a burst of refusals.
# ---------------------------------------------------------------------------

DR_GW, DR_A, DR_B, DR_C = "fwgate:east", "cs:131016", "cs:131024", "cs:131032"
DR_PREF, DR_JLIS = "pref:13", "jlis:0"
DR_NET = [DR_GW, DR_A, DR_B, DR_C, DR_PREF, DR_JLIS]


def dr_grace(grace):
    def configure(net):
        for n in (DR_PREF, DR_JLIS):
            net[n].extra["conflict_grace"] = grace
    return configure


def dr_register(net, node, people):
    net[node].ctl("resident", "add", "--file", "-",
                  input="\n".join(json.dumps(p, ensure_ascii=False) for p in people))


def dr_movein(net, node, move):
    return net[node].ctl("movein", "--file", "-", input=json.dumps(move, ensure_ascii=False))


def dr_answered(net, node, code):
    """The move-in rows of code at node once every notice has its answer."""
    def rows():
        r = [m for m in net[node].ctl("movein", "list")["moveins"] if m["code"] == code]
        return r if r and all(m["status"] != "queued" for m in r) else None
    return wait_until("the answer to the notice of %s" % code, rows)


def dr_conflicts(net, node):
    """`juki-ctl conflicts` as a supervisor of node (made on first use)."""
    d = net[node]
    sup = d.operators.get("super") or d.add_operator("super", ["supervisor"])
    return sup.ctl("conflicts")


def dr_at(net, node, code, lgcode):
    """Whether node holds lgcode's latest record of code."""
    try:
        recs = net[node].ctl("person", "show", code)["records"]
    except AssertionError:
        return False
    return any(r["lgcode"] == lgcode for r in recs)


def dr_refused_movein(net, s):
    """A's resident moves to B; B's clerk names C as the former municipality: refused."""
    p = s.person("131016")
    dr_register(net, DR_A, [p])
    for n in (DR_PREF, DR_JLIS):
        wait_until("A's record at %s" % n, lambda: dr_at(net, n, p["code"], "131016"))
    move = s.moved(p, "131024")
    move["from"] = "131032"
    dr_movein(net, DR_B, move)
    row = dr_answered(net, DR_B, p["code"])[0]
    return p, row


def case_refused_movein_is_a_double_registration():
    """pref and jlis list the person current at A and B, alert once, B sees a task."""
    s = Synth(seed=101)
    with Network(DR_NET, configure=dr_grace("0s")) as net:
        p, row = dr_refused_movein(net, s)
        # B's clerk sees the refusal as a task, with what C told: no-match.
        assert row["status"] == "rejected" and row["reason"] == "no-match", row
        assert row["task"] == "to resolve", row
        # C, the wrong municipality, knows why: it has no such code.
        refused = net[DR_C].clerk().ctl("tennyu", "refused")["refused"]
        assert [(r["reason"], r["told"], r["code"]) for r in refused] == \
            [("unknown-person", "no-match", p["code"])], refused
        for n in (DR_PREF, DR_JLIS):
            got = wait_until("the conflict at %s" % n,
                             lambda: dr_conflicts(net, n)["total"] == 1 and dr_conflicts(net, n))
            c = got["conflicts"][0]
            assert c["code"] == p["code"] and c["holders"] == ["131016", "131024"], c
            wait_until("double-registration at %s" % n,
                       lambda: net[n].alert_counts().get("double-registration") == 1)
            a = [r for r in net[n].alerts()["recent"] if r["code"] == "double-registration"]
            assert "131016,131024" in a[0]["detail"] and "conflict %d" % c["id"] in a[0]["detail"]
            # The alert names the conflict, never the person's code.
            assert p["code"] not in a[0]["detail"], a
        # B withdraws the move-in: the task is resolved, the conflict gone everywhere.
        out = net[DR_B].ctl("movein", "resolve", p["code"], "--withdraw")
        assert out["resolution"] == "withdrawn", out
        row = net[DR_B].ctl("movein", "list")["moveins"][0]
        assert (row["task"], row["resolution"]) == ("resolved", "withdrawn"), row
        assert net[DR_B].ctl("resident", "show", p["code"])["status"] == "removed"
        hist = net[DR_B].admin("audit", "show", "--limit", "1000")["entries"]
        assert [e for e in hist if e["action"] == "movein.resolve"
                and e["target"] == p["code"]], hist
        for n in (DR_PREF, DR_JLIS):
            wait_until("the conflict cleared at %s" % n,
                       lambda: dr_conflicts(net, n)["total"] == 0)
            assert net[n].alert_counts().get("double-registration") == 1


def case_double_registration_cleared_by_the_former_tenshutsu():
    """The former municipality recording the 転出 clears the conflict at pref and jlis."""
    s = Synth(seed=102)
    with Network(DR_NET, configure=dr_grace("0s")) as net:
        p, row = dr_refused_movein(net, s)
        for n in (DR_PREF, DR_JLIS):
            wait_until("the conflict at %s" % n, lambda: dr_conflicts(net, n)["total"] == 1)
        path = os.path.join(net.dir, "moveout.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write(import_csv([change_row(p, "転出")]))
        assert net[DR_A].ctl("import", path)["state"] == "accepted"
        for n in (DR_PREF, DR_JLIS):
            wait_until("the conflict cleared at %s" % n,
                       lambda: dr_conflicts(net, n)["total"] == 0)
        # B's clerk closes the task; the move-in stands.
        assert net[DR_B].ctl("movein", "resolve", p["code"])["resolution"] == "resolved"
        assert net[DR_B].ctl("resident", "show", p["code"])["status"] == "resident"


def case_normal_movein_is_no_conflict_for_long():
    """A move-in whose 転出 arrives later is no conflict once it has, and raises no alert."""
    s = Synth(seed=103)
    with Network(DR_NET) as net:
        p = s.person("131016")
        dr_register(net, DR_A, [p])
        for n in (DR_PREF, DR_JLIS):
            wait_until("A's record at %s" % n, lambda: dr_at(net, n, p["code"], "131016"))
        dr_movein(net, DR_B, s.moved(p, "131024"))
        assert dr_answered(net, DR_B, p["code"])[0]["status"] == "accepted"
        for n in (DR_PREF, DR_JLIS):
            wait_until("B's 転入 and A's 転出 at %s" % n,
                       lambda: len(net[n].ctl("person", "show", p["code"])["records"]) == 3)
            assert dr_conflicts(net, n)["total"] == 0
            assert "double-registration" not in net[n].alert_counts()


def case_tennyu_refusals_tell_the_sender_no_match():
    """Unknown code and wrong birth date look the same to the sender; A keeps why."""
    s = Synth(seed=104)
    with Network([DR_GW, DR_A, DR_B, DR_PREF, DR_JLIS]) as net:
        resident, stranger = s.person("131016"), s.person("131016")
        dr_register(net, DR_A, [resident])
        wrong = s.moved(resident, "131024")
        wrong["person"]["birth"] = "1901-01-01" if resident["birth"] != "1901-01-01" \
            else "1902-02-02"
        dr_movein(net, DR_B, wrong)
        dr_movein(net, DR_B, s.moved(stranger, "131024"))
        a = dr_answered(net, DR_B, resident["code"])[0]
        b = dr_answered(net, DR_B, stranger["code"])[0]
        assert (a["reason"], a.get("detail")) == (b["reason"], b.get("detail")), (a, b)
        assert a["reason"] == "no-match", a
        # A's own clerk sees the precise reasons; its resident is untouched.
        refused = {r["code"]: r for r in net[DR_A].clerk().ctl("tennyu", "refused")["refused"]}
        assert refused[resident["code"]]["reason"] == "mismatch", refused
        assert refused[stranger["code"]]["reason"] == "unknown-person", refused
        assert {r["told"] for r in refused.values()} == {"no-match"}
        assert net[DR_A].ctl("resident", "show", resident["code"])["status"] == "resident"
        assert "refusal-burst" not in net[DR_A].alert_counts()


def case_refusal_burst_alerts_once():
    """Refused notices past the limit: refusal-burst once, then rate-limited."""
    s = Synth(seed=105)

    def configure(net):
        net[DR_A].extra["tennyu"] = "{refusal_limit: 3, refusal_window: 1h}"

    with Network([DR_GW, DR_A, DR_B, DR_PREF, DR_JLIS], configure=configure) as net:
        strangers = [s.person("131016") for _ in range(6)]
        for p in strangers:
            dr_movein(net, DR_B, s.moved(p, "131024"))
        reasons = [dr_answered(net, DR_B, p["code"])[0]["reason"] for p in strangers]
        assert reasons == ["no-match"] * 3 + ["rate-limited"] * 3, reasons
        assert net[DR_A].alert_counts().get("refusal-burst") == 1
        a = [r for r in net[DR_A].alerts()["recent"] if r["code"] == "refusal-burst"]
        assert a[0]["peer"] == "urn:juki:cs:131024", a
        assert all(p["code"] not in a[0]["detail"] for p in strangers)


if __name__ == "__main__":
    run_cases([
        # Double registration and the refusals of a 転入通知
        case_refused_movein_is_a_double_registration,
        case_double_registration_cleared_by_the_former_tenshutsu,
        case_normal_movein_is_no_conflict_for_long,
        case_tennyu_refusals_tell_the_sender_no_match,
        case_refusal_burst_alerts_once,
    ])
