"""The resident card register of a CS (住民基本台帳カード, the first piece of 第6-5): cards
issued to residents, suspended when reported lost, resumed, collected and invalidated, by
operators with their roles on the real operator port; every change in the operation history
under the card's serial; the register survives a restart."""

from jukitest import CTL_FAILED, CTL_USAGE, Network, add_residents, fails, history, run_cases
from jukitest.synth import Synth, wrong_check_digit

GW, A, PREF = "fwgate:east", "cs:131016", "pref:13"
NET = [GW, A, PREF]


def refused(op, *args):
    """(error code, message) of a card command that must fail."""
    code, err, msg = fails(op.ctl, "card", *args)
    assert code == CTL_FAILED, (code, err, msg)
    return err, msg


def case_transitions_roles_and_history():
    """Each transition, by the role allowed to make it, with its date, who and why."""
    s = Synth(seed=301)
    with Network(NET) as net:
        p, q = s.person("131016"), s.person("131016")
        add_residents(net[A], [p, q])
        clerk = net[A].clerk()
        sup = net[A].add_operator("sato", ["supervisor"])
        card = clerk.ctl("card", "issue", "--code", p["code"], "--serial", "A1")
        assert (card["serial"], card["code"], card["state"]) == ("A1", p["code"], "issued"), card
        assert clerk.ctl("card", "show", "--code", p["code"])["serial"] == "A1"
        card = clerk.ctl("card", "suspend", "--serial", "A1", "--reason", "reported lost")
        assert card["state"] == "suspended" and card["events"][-1]["reason"] == "reported lost"
        card = clerk.ctl("card", "resume", "--serial", "A1")
        assert card["state"] == "issued", card
        card = clerk.ctl("card", "collect", "--serial", "A1")
        assert card["state"] == "collected", card
        assert [e["action"] for e in card["events"]] == ["issue", "suspend", "resume", "collect"]
        assert all(e["who"] == clerk.urn and e["at_ms"] > 0 for e in card["events"]), card
        # A new card once the old one is final; invalidation is a supervisor's.
        clerk.ctl("card", "issue", "--code", p["code"], "--serial", "A2")
        err, msg = refused(clerk, "invalidate", "--serial", "A2", "--reason", "damaged")
        assert err == "forbidden", msg
        card = sup.ctl("card", "invalidate", "--serial", "A2", "--reason", "damaged")
        assert card["state"] == "invalidated" and card["events"][-1]["who"] == sup.urn, card
        clerk.ctl("card", "issue", "--code", q["code"], "--serial", "B1")
        clerk.ctl("card", "suspend", "--serial", "B1", "--reason", "lost")
        listed = sup.ctl("card", "list")["cards"]
        assert [(c["serial"], c["state"]) for c in listed] == \
            [("A1", "collected"), ("A2", "invalidated"), ("B1", "suspended")], listed
        assert [c["serial"] for c in clerk.ctl("card", "list", "--state", "suspended")["cards"]] \
            == ["B1"]
        # The history names the serial, never the holder's code.
        entries = [e for e in history(net[A]) if e["action"].startswith("card.")]
        assert [(e["action"], e["target"]) for e in entries
                if e["action"] != "card.list" and e["outcome"] == "ok"] == [
            ("card.issue", "A1"), ("card.show", "A1"), ("card.suspend", "A1"),
            ("card.resume", "A1"), ("card.collect", "A1"), ("card.issue", "A2"),
            ("card.invalidate", "A2"), ("card.issue", "B1"), ("card.suspend", "B1")], entries
        assert (clerk.urn, "card.invalidate", "forbidden") in [
            (e["operator"], e["action"], e["outcome"]) for e in entries], entries
        for e in entries:
            assert p["code"] not in (e.get("target") or "") + (e.get("detail") or ""), e
            assert q["code"] not in (e.get("target") or "") + (e.get("detail") or ""), e
        # A restart keeps the register.
        net[A].stop()
        net[A].start()
        assert sup.ctl("card", "show", "--serial", "B1")["state"] == "suspended"
        assert len(sup.ctl("card", "list")["cards"]) == 3
        err, msg = refused(clerk, "issue", "--code", q["code"], "--serial", "B2")
        assert err == "conflict" and "already has a valid card" in msg, msg


def case_refusals():
    """Each refusal with its reason; nothing recorded by a refusal."""
    s = Synth(seed=302)
    with Network(NET) as net:
        p, stranger = s.person("131016"), s.person("131016")
        add_residents(net[A], [p])
        clerk = net[A].clerk()
        clerk.ctl("card", "issue", "--code", p["code"], "--serial", "C1")
        err, msg = refused(clerk, "issue", "--code", stranger["code"], "--serial", "C9")
        assert err == "conflict" and "not a resident here" in msg, msg
        err, msg = refused(clerk, "issue", "--code", wrong_check_digit(p["code"]), "--serial",
                           "C9")
        assert err == "invalid" and "code" in msg, msg
        err, msg = refused(clerk, "issue", "--code", p["code"], "--serial", "C2")
        assert err == "conflict" and "already has a valid card" in msg, msg
        for bad in ("c1", "A-1", "0123456789ABCDEFG", ""):
            err, msg = refused(clerk, "suspend", "--serial", bad, "--reason", "x")
            assert err == "invalid" and "serial" in msg, (bad, msg)
        err, msg = refused(clerk, "collect", "--serial", "NOPE")
        assert err == "not-found" and "no such card" in msg, msg
        err, msg = refused(clerk, "resume", "--serial", "C1")
        assert err == "conflict" and "is issued: cannot resume" in msg, msg
        net[A].add_operator("sato", ["supervisor"]).ctl(
            "card", "invalidate", "--serial", "C1", "--reason", "damaged")
        err, msg = refused(clerk, "collect", "--serial", "C1")
        assert err == "conflict" and "is invalidated: cannot collect" in msg, msg
        # A serial used before, even for a card now final and for another holder.
        err, msg = refused(clerk, "issue", "--code", p["code"], "--serial", "C1")
        assert err == "conflict" and "serial used before" in msg, msg
        err, msg = refused(clerk, "show", "--code", p["code"])
        assert err == "not-found", msg
        # A reason is required for suspension and invalidation (juki-ctl checks it first).
        code, _, msg = fails(clerk.ctl, "card", "suspend", "--serial", "C1")
        assert code == CTL_USAGE, msg
        # The administrator on the socket does no clerical work.
        code, err, msg = fails(net[A].admin, "card", "list")
        assert err == "forbidden", msg
        card = clerk.ctl("card", "show", "--serial", "C1")
        assert [e["action"] for e in card["events"]] == ["issue", "invalidate"], card
        refusals = [(e["action"], e["outcome"]) for e in history(net[A])
                    if e["action"].startswith("card.") and e["outcome"] != "ok"]
        assert ("card.issue", "conflict") in refusals and \
            ("card.collect", "not-found") in refusals, refusals


if __name__ == "__main__":
    run_cases([case_transitions_roles_and_history, case_refusals])
