"""The first flow of the standard end to end: 転入通知 (第6-2) and 転出確定通知 (第6-3).

A clerk at CS B (大阪市) records the move-in of a person who lived in CS A
(千代田区); B notifies A through the gateway; A marks the person as moved out
and notifies its prefecture (pref:13), which records the confirmation.
"""

from jukitest import Network, run_cases, wait_until, CtlError, CTL_FAILED
from jukitest.synth import Synth, wrong_check_digit

A, B = "cs:131016", "cs:271004"
NET = ["fwgate:east", A, B, "pref:13", "pref:27", "jlis:0"]


def movein_status(net, code):
    rows = net[B].ctl("movein", "list")["moveins"]
    return [r for r in rows if r["code"] == code]


def case_movein_end_to_end():
    s = Synth(seed=2)
    with Network(NET) as net:
        person = s.person("131016")
        net[A].ctl("resident", "add", "--file", "-", input=__import__("json").dumps(person))
        move = s.moved(person, "271004")
        p = move["person"]
        out = net[B].ctl("movein", "--code", p["code"], "--name", p["name"], "--birth",
                         p["birth"], "--sex", p["sex"], "--address", p["address"], "--from",
                         "131016", "--date", move["date"])
        assert out["queued"] == 1
        notice = out["notices"][0]
        assert notice["to"] == "urn:juki:cs:131016"

        # B hears A's answer: accepted.
        wait_until("the notice accepted", lambda: movein_status(net, p["code"])[0]["status"]
                   == "accepted")
        # A holds the person as moved out, with the notice and its confirmation.
        rec = net[A].ctl("resident", "show", p["code"])
        assert rec["status"] == "removed", rec
        assert rec["reason"] == "転出" and rec["reason_date"] == move["date"]
        assert rec["version"] == 2
        assert rec["moveouts"][0]["tennyu_id"] == notice["notice_id"]
        assert rec["moveouts"][0]["to"] == "271004"
        # The prefecture of A records the 転出確定通知 against the person...
        conf = wait_until("the confirmation at pref:13",
                          lambda: net["pref:13"].ctl("confirmations", "--code", p["code"])
                          ["confirmations"])
        assert len(conf) == 1
        c = conf[0]
        assert (c["code"], c["old_lgcode"], c["new_lgcode"], c["date"], c["tennyu_id"],
                c["sender"]) == (p["code"], "131016", "271004", move["date"],
                                 notice["notice_id"], "urn:juki:cs:131016")
        wait_until("A's confirmation acknowledged", lambda: net[A].ctl(
            "resident", "show", p["code"])["moveouts"][0]["confirm_status"] == "accepted")
        # ... and the other prefecture knows nothing of it.
        assert net["pref:27"].ctl("confirmations")["total"] == 0
        # B now holds the person as its resident, at the new address.
        rec_b = net[B].ctl("resident", "show", p["code"])
        assert rec_b["status"] == "resident" and rec_b["lgcode"] == "271004"
        assert rec_b["person"]["address"] == p["address"] and rec_b["person"]["name"] == p["name"]
        # Nothing waits anywhere.
        for n in (A, B):
            assert net[n].status()["outbound"]["queued"] == 0
        # The gateway relayed five tunnels (A and B to their prefectures, the
        # prefectures to the nation, B to A) and denied nothing.
        gw = net["fwgate:east"].status()["counters"]
        assert gw["tunnels"] == 5 and gw["denied"] == 0, gw


def case_unknown_person_is_answered():
    """A 転入通知 for someone A does not have is answered with a reason, not dropped."""
    s = Synth(seed=3)
    with Network(NET) as net:
        stranger = s.person("131016")  # never registered at A
        move = s.moved(stranger, "271004")
        net[B].ctl("movein", "--file", "-", input=__import__("json").dumps(move))
        row = wait_until("an answer to the notice",
                         lambda: [r for r in movein_status(net, stranger["code"])
                                  if r["status"] != "queued"])[0]
        # B is told no-match (A tells no more); the case is a task for B's clerk.
        assert row["status"] == "rejected" and row["reason"] == "no-match", row
        assert row["task"] == "to resolve", row
        # The refusal is kept at B with its reason; nothing waits; A and pref:13 unchanged.
        ob = net[B].ctl("outbox")
        assert [r["reason"] for r in ob["rejected"]] == ["no-match"]
        assert ob.get("queues", []) == []
        st = net[A].status()
        assert st["inbound"]["rejected"] == {"no-match": 1}
        # A's own clerk sees why.
        refused = net[A].clerk().ctl("tennyu", "refused")["refused"]
        assert [r["reason"] for r in refused] == ["unknown-person"], refused
        assert st["residents"] == {} and st["moveouts"] == 0
        assert net["pref:13"].ctl("confirmations")["total"] == 0


def case_bad_check_digit_refused_by_ctl():
    """A 住民票コード with a wrong check digit never enters the CS."""
    s = Synth(seed=4)
    with Network(["fwgate:east", A, "pref:13", "jlis:0"]) as net:
        p = s.person("131016")
        p["code"] = wrong_check_digit(p["code"])
        try:
            net[A].ctl("resident", "add", "--file", "-", input=__import__("json").dumps(p))
            raise AssertionError("accepted a bad check digit")
        except CtlError as e:
            assert e.code == CTL_FAILED
            assert "residents[0].code" in e.err and "check-digit" in e.err, e.err
        assert net[A].status()["residents"] == {}


def case_movein_all_or_nothing():
    """One bad move in a file: nothing recorded, nothing sent."""
    s = Synth(seed=5)
    with Network(["fwgate:east", A, B, "pref:13", "pref:27", "jlis:0"]) as net:
        people = [s.person("131016") for _ in range(3)]
        moves = [s.moved(p, "271004") for p in people]
        moves[2]["date"] = "2026-02-30"
        text = "\n".join(__import__("json").dumps(m) for m in moves)
        try:
            net[B].ctl("movein", "--file", "-", input=text)
            raise AssertionError("accepted a file with a bad date")
        except CtlError as e:
            assert "moves[2].date" in e.err, e.err
        st = net[B].status()
        assert st["residents"] == {} and st["moveins"] == {} and st["outbound"]["queued"] == 0


def case_movein_list_oldest_first():
    """`movein list` is oldest first (as recorded), and the move-ins of one request by
    住民票コード: a clerk finds a person's row in a file of moves, whatever the notice ids."""
    s = Synth(seed=6)
    with Network(["fwgate:east", B]) as net:
        people = sorted((s.person("131016") for _ in range(6)), key=lambda p: p["code"],
                        reverse=True)
        text = "\n".join(__import__("json").dumps(s.moved(p, "271004")) for p in people)
        first = net[B].ctl("movein", "--file", "-", input=text)["notices"]
        assert len(first) == 6
        later = s.person("131016")
        net[B].ctl("movein", "--file", "-",
                   input=__import__("json").dumps(s.moved(later, "271004")))
        rows = net[B].ctl("movein", "list")["moveins"]
        codes = [r["code"] for r in rows]
        assert codes == sorted(p["code"] for p in people) + [later["code"]], codes
        assert codes[:2] == [r["code"] for r in net[B].ctl("movein", "list", "--limit", 2)
                             ["moveins"]]


if __name__ == "__main__":
    run_cases([case_movein_end_to_end, case_unknown_person_is_answered,
               case_bad_check_digit_refused_by_ctl, case_movein_all_or_nothing,
               case_movein_list_oldest_first])
