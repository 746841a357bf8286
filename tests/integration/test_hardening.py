"""Hardening: what the network refuses when an attacker, a careless operator or a full disk
tries it.  Each topic is one block of cases under a comment header; run_cases() at the end
lists them all.
"""

import datetime
import json
import time

from jukitest import CTL_FAILED, CtlError, Network, run_cases, urn, wait_until
from jukitest.peer import Peer, now, uuid7
from jukitest.synth import Synth


# ---------------------------------------------------------------------------------------------
# Future dates: no birth date or change date after today (JST, the daemon's clock) enters the
# register, by any way in — the clerk's commands (resident add, resident correct, movein), a
# honnin.batch at a prefecture, a tennyu.notice at a CS, a tenshutsu.confirm at a prefecture
# (docs/protocol.md §9 `future-date`, docs/control.md §5.2).  Every node's clock is moved to
# noon (JST) of the host's tomorrow with clock_offset: "today" is then the daemons' day, one
# ahead of the host's, and far from the turn of the day for the whole case.
# ---------------------------------------------------------------------------------------------

FD_GW, FD_A, FD_B, FD_C = "fwgate:east", "cs:131016", "cs:271004", "cs:131024"
FD_PREF, FD_JLIS = "pref:13", "jlis:0"
JST = datetime.timezone(datetime.timedelta(hours=9))


def fd_clock(net):
    """Every node's clock at noon (JST) of the host's tomorrow in Japan, and running from there;
    that day, the daemons' today, is net.fd_today (fixed here, whatever the host's clock does
    during the case)."""
    net.fd_today = datetime.datetime.now(JST).date() + datetime.timedelta(days=1)
    noon = datetime.datetime.combine(net.fd_today, datetime.time(12, 0), tzinfo=JST)
    offset_ms = int((noon.timestamp() - time.time()) * 1000)
    for name in net.names:
        if not name.startswith("fwgate:"):
            net[name].extra["clock_offset"] = "%dms" % offset_ms


def fd_refused(fn, *args, **kw):
    """A juki-ctl call that must be refused as invalid: its error message."""
    try:
        fn(*args, **kw)
    except CtlError as e:
        assert e.code == CTL_FAILED, e
        assert json.loads(e.out)["error"] == "invalid", e.out
        return e.err
    raise AssertionError("juki-ctl %s succeeded" % (args,))


def fd_record(person, lgcode, reason_date, birth=None):
    """A change record as a municipality's CS sends it in a honnin.batch."""
    p = {k: person[k] for k in ("name", "birth", "sex", "address")}
    if birth is not None:
        p["birth"] = birth
    return {"code": person["code"], "lgcode": lgcode, "version": 1, "reason": "転入",
            "reason_date": reason_date, "recorded": now(), "person": p}


def case_future_dates_refused_at_the_clerk():
    """resident add, resident correct and movein refuse a birth date or a change date after
    today (the daemon's), with the item, the field and today named; nothing is recorded.
    Today itself — the host's tomorrow — is allowed and reaches the nation."""
    s = Synth(seed=9101)
    with Network([FD_GW, FD_A, FD_PREF, FD_JLIS], configure=fd_clock) as net:
        a = net[FD_A]
        today = net.fd_today
        today_s, tomorrow_s = today.isoformat(), (today + datetime.timedelta(days=1)).isoformat()
        after = "after today (%s, JST) (future-date)" % today_s

        # resident add: a birth date after today.
        p = dict(s.person("131016"), birth=tomorrow_s)
        err = fd_refused(a.ctl, "resident", "add", "--file", "-", input=json.dumps(p))
        assert "residents[0].birth: " + after in err, err
        assert tomorrow_s not in err, err  # the value refused is not repeated
        # movein: a birth date, then a move date, after today; and far in the future.
        m = s.moved(s.person("271004"), "131016", today_s)
        m["person"]["birth"] = tomorrow_s
        err = fd_refused(a.ctl, "movein", "--file", "-", input=json.dumps(m))
        assert "moves[0].person.birth: " + after in err, err
        for date in (tomorrow_s, "9999-12-31"):
            m = s.moved(s.person("271004"), "131016", date)
            err = fd_refused(a.ctl, "movein", "--file", "-", input=json.dumps(m))
            assert "moves[0].date: " + after in err, err
        # Nothing was recorded, queued or sent.
        st = a.status()
        assert st["residents"] == {} and st["moveins"] == {}, st
        assert st["outbound"]["queued"] == 0, st["outbound"]
        assert a.ctl("resident", "show", p["code"], check=False)[0] == CTL_FAILED

        # Today — by the daemon's clock, the host's tomorrow — is allowed.
        q = dict(s.person("131016"), birth=today_s)
        assert a.ctl("resident", "add", "--file", "-", input=json.dumps(q))["added"] == 1
        # resident correct: a birth date, then a correction date, after today.
        err = fd_refused(a.ctl, "resident", "correct", q["code"], "--birth", tomorrow_s)
        assert "person.birth: " + after in err, err
        err = fd_refused(a.ctl, "resident", "correct", q["code"], "--address",
                         s.address("131016"), "--date", tomorrow_s)
        assert "date: " + after in err, err
        rec = a.ctl("resident", "show", q["code"])
        assert rec["version"] == 1 and rec["person"]["birth"] == today_s, rec
        assert rec["reason_date"] == today_s, rec
        assert a.status()["residents"] == {"resident": 1}

        # The record dated today reaches the nation: every node counts the same day.
        wait_until("q at jlis", lambda: net[FD_JLIS].status()["records"]["current"] == 1)
        at_jlis = net[FD_JLIS].ctl("person", "show", q["code"])["records"]
        assert [r["person"]["birth"] for r in at_jlis] == [today_s], at_jlis
        assert net[FD_PREF].status()["inbound"]["rejected"] == {}
        assert net[FD_JLIS].status()["inbound"]["rejected"] == {}


def case_future_dates_refused_from_the_network():
    """Hand-made messages with a date after today: a honnin.batch at the prefecture, a
    tennyu.notice at a CS, a tenshutsu.confirm at the prefecture are refused `future-date`,
    the record index and field named; nothing is kept and nothing reaches the nation.  The
    same messages dated today are accepted."""
    s = Synth(seed=9102)
    with Network([FD_GW, FD_A, FD_PREF, FD_JLIS], extra_identities=[FD_B, FD_C],
                 configure=fd_clock) as net:
        pref, jlis, a = net[FD_PREF], net[FD_JLIS], net[FD_A]
        today = net.fd_today
        today_s, tomorrow_s = today.isoformat(), (today + datetime.timedelta(days=1)).isoformat()
        after = "after today (%s, JST)" % today_s

        def ack_of(p, m):
            ack = p.exchange(m)
            assert ack["type"] == "ack" and ack["corr"] == m["id"], ack
            return ack["body"]

        # honnin.batch from a municipality of the prefecture (cs:131024).
        people = [s.person("131024") for _ in range(3)]
        cert, key = net.cert(FD_C)
        with Peer(net[FD_GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn(FD_PREF), "honnin") == "OK"

            def batch(records):
                return p.message("honnin.batch", urn(FD_C), urn(FD_PREF), {"records": records})

            body = ack_of(p, batch([fd_record(people[0], "131024", today_s),
                                    fd_record(people[1], "131024", today_s, birth=tomorrow_s)]))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "records[1].person.birth: " + after}, body
            body = ack_of(p, batch([fd_record(people[1], "131024", tomorrow_s)]))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "records[0].reason_date: " + after}, body
            # tenshutsu.confirm dated after today.
            body = ack_of(p, p.message("tenshutsu.confirm", urn(FD_C), urn(FD_PREF),
                                       {"code": people[2]["code"], "old_lgcode": "131024",
                                        "new_lgcode": "271004", "move_date": tomorrow_s,
                                        "tennyu_id": uuid7()}))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "move_date: " + after}, body
            # Nothing of them is held at the prefecture, none forwarded.
            st = pref.status()
            assert st["inbound"]["rejected"] == {"future-date": 3}, st["inbound"]
            assert st["inbound"]["accepted"] == 0, st["inbound"]
            assert st["records"] == {"current": 0, "history": 0}, st["records"]
            assert st["outbound"]["queued"] == 0, st["outbound"]
            assert pref.ctl("confirmations")["total"] == 0
            # The same records dated today: accepted, and on to the nation.
            body = ack_of(p, batch([fd_record(people[0], "131024", today_s),
                                    fd_record(people[1], "131024", today_s)]))
            assert body == {"status": "accepted"}, body
        wait_until("the batch dated today at jlis",
                   lambda: jlis.status()["records"]["current"] == 2)
        # What came after the refused batches arrived, and the refused never did: the national
        # server holds the two records as dated today, and has refused nothing.
        for person in people[:2]:
            recs = jlis.ctl("person", "show", person["code"])["records"]
            assert len(recs) == 1 and recs[0]["reason_date"] == today_s, recs
            assert recs[0]["person"]["birth"] == person["birth"], recs
        assert jlis.status()["inbound"]["rejected"] == {}

        # tennyu.notice at a CS (cs:271004 tells 千代田区 its resident moved in).
        resident = s.person("131016")
        a.ctl("resident", "add", "--file", "-", input=json.dumps(resident))
        moved = s.moved(resident, "271004", today_s)["person"]
        cert, key = net.cert(FD_B)
        with Peer(net[FD_GW].address, cert, key, net.ca()) as p:
            assert p.connect(urn(FD_A), "muni") == "OK"

            def notice(person, date):
                return p.message("tennyu.notice", urn(FD_B), urn(FD_A),
                                 {"person": person, "old_lgcode": "131016", "move_date": date})

            body = ack_of(p, notice(moved, tomorrow_s))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "move_date: " + after}, body
            body = ack_of(p, notice(dict(moved, birth=tomorrow_s), today_s))
            assert body == {"status": "rejected", "reason": "future-date",
                            "detail": "person.birth: " + after}, body
            rec = a.ctl("resident", "show", resident["code"])
            assert rec["status"] == "resident" and rec["version"] == 1, rec
            assert rec["moveouts"] == [], rec
            assert a.status()["inbound"]["rejected"] == {"future-date": 2}
            # Dated today: the move-out is recorded.
            assert ack_of(p, notice(moved, today_s)) == {"status": "accepted"}
        rec = a.ctl("resident", "show", resident["code"])
        assert rec["status"] == "removed" and rec["reason_date"] == today_s, rec


run_cases([
    # Future dates
    case_future_dates_refused_at_the_clerk,
    case_future_dates_refused_from_the_network,
])
