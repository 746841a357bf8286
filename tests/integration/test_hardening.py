"""Hardening: defects a review found, each shown from what a user would check.

Each topic is a block of cases with a comment header naming it; run_cases at
the end lists them all.
"""

import json

from jukitest import Network, run_cases, wait_until
from jukitest.synth import Synth


# ---------------------------------------------------------------------------
# Double registration (二重登録) and the refusals of a 転入通知
#
# The former municipality tells the sender of a refused 転入通知 only
# no-match, keeps the precise reason for its own clerks, and alerts on a
# burst of refusals.
# ---------------------------------------------------------------------------

DR_GW, DR_A, DR_B = "fwgate:east", "cs:131016", "cs:131024"
DR_PREF, DR_JLIS = "pref:13", "jlis:0"


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
        case_tennyu_refusals_tell_the_sender_no_match,
        case_refusal_burst_alerts_once,
    ])
