"""The operating calendar (第6-1) with a real daemon: the national holidays juki-ctl computes
for 1955-2050 against Debian's python3-holidays, the Cabinet Office's list loaded in Shift_JIS
(and a bad one refused whole), the deadline alert of delivery moved past a holiday Monday and
the year-end closure, and `calendar check` for the daily jobs' units."""

import datetime
import json
import os
import re
import socket
import struct
import subprocess

from jukitest import (CTL_FAILED, SOURCE, Network, history, run_cases, run_ctl, set_clock)
from jukitest.synth import Synth

A = "cs:131016"
NET = [A]  # no gateway: what the CS queues stays queued, and its deadline passes
JST = datetime.timezone(datetime.timedelta(hours=9))

# Where python3-holidays 0.10 (Debian 12) is wrong, checked against the law and the Cabinet
# Office's list; every entry must still be a difference (so the list cannot rot).
PY_WRONG = {
    # 建国記念の日 was added by the amendment of 1966 (first kept 1967-02-11); 0.10 has it
    # every year from 1949.
    **{datetime.date(y, 2, 11): "建国記念の日 before 1967" for y in range(1955, 1967)},
    # 1974-05-05 was a Sunday: 振替休日 on Monday 5/6 by the rule of 1973; missing from
    # 0.10's hand-made table of substitute days.
    datetime.date(1974, 5, 6): "振替休日 missing",
    # 天皇誕生日 (2/23) on a Sunday gives 2/24; 0.10's table has only 2020.
    **{datetime.date(y, 2, 24): "振替休日 missing" for y in (2025, 2031, 2042, 2048)},
}
# The one-off days of special laws, which 0.10 knows and the rules, by design, do not: they
# come from the loaded list (case_load_cabinet_office_list loads them).
SPECIAL_LAWS = {
    datetime.date(2019, 4, 30): "国民の休日 around the enthronement day",
    datetime.date(2019, 5, 1): "天皇の即位の日 (平成29年法律第63号 附則)",
    datetime.date(2019, 5, 2): "国民の休日 around the enthronement day",
    datetime.date(2019, 10, 22): "即位礼正殿の儀の行われる日",
    datetime.date(2020, 7, 20): "海の日 moved to 7/23 (東京オリンピック特措法)",
    datetime.date(2020, 7, 23): "海の日 moved from 7/20",
    datetime.date(2020, 7, 24): "スポーツの日 moved from 10/12",
    datetime.date(2020, 8, 10): "山の日 moved from 8/11",
    datetime.date(2020, 8, 11): "山の日 moved to 8/10",
    datetime.date(2020, 10, 12): "スポーツの日 moved to 7/24",
}
# Not excluded, but known: 0.10 does not know the moves of 2021 either (海の日 7/22, スポーツの日
# 7/23, 山の日 8/8 and 振替休日 8/9), so for 2021 both sides give the days of the rules and
# agree; the loaded list corrects 2021 (case_load_cabinet_office_list).

# The Cabinet Office's syukujitsu.csv for 2018-2021, as published (the header and names).
CABINET_OFFICE = """国民の祝日・休日月日,国民の祝日・休日名称
2018/1/1,元日
2018/1/8,成人の日
2018/2/11,建国記念の日
2018/2/12,休日
2018/3/21,春分の日
2018/4/29,昭和の日
2018/4/30,休日
2018/5/3,憲法記念日
2018/5/4,みどりの日
2018/5/5,こどもの日
2018/7/16,海の日
2018/8/11,山の日
2018/9/17,敬老の日
2018/9/23,秋分の日
2018/9/24,休日
2018/10/8,体育の日
2018/11/3,文化の日
2018/11/23,勤労感謝の日
2018/12/23,天皇誕生日
2018/12/24,休日
2019/1/1,元日
2019/1/14,成人の日
2019/2/11,建国記念の日
2019/3/21,春分の日
2019/4/29,昭和の日
2019/4/30,休日
2019/5/1,休日（祝日扱い）
2019/5/2,休日
2019/5/3,憲法記念日
2019/5/4,みどりの日
2019/5/5,こどもの日
2019/5/6,休日
2019/7/15,海の日
2019/8/11,山の日
2019/8/12,休日
2019/9/16,敬老の日
2019/9/23,秋分の日
2019/10/14,体育の日（スポーツの日）
2019/10/22,休日（祝日扱い）
2019/11/3,文化の日
2019/11/4,休日
2019/11/23,勤労感謝の日
2020/1/1,元日
2020/1/13,成人の日
2020/2/11,建国記念の日
2020/2/23,天皇誕生日
2020/2/24,休日
2020/3/20,春分の日
2020/4/29,昭和の日
2020/5/3,憲法記念日
2020/5/4,みどりの日
2020/5/5,こどもの日
2020/5/6,休日
2020/7/23,海の日
2020/7/24,スポーツの日
2020/8/10,山の日
2020/9/21,敬老の日
2020/9/22,秋分の日
2020/11/3,文化の日
2020/11/23,勤労感謝の日
2021/1/1,元日
2021/1/11,成人の日
2021/2/11,建国記念の日
2021/2/23,天皇誕生日
2021/3/20,春分の日
2021/4/29,昭和の日
2021/5/3,憲法記念日
2021/5/4,みどりの日
2021/5/5,こどもの日
2021/7/22,海の日
2021/7/23,スポーツの日
2021/8/8,山の日
2021/8/9,休日
2021/9/20,敬老の日
2021/9/23,秋分の日
2021/11/3,文化の日
2021/11/23,勤労感謝の日
"""

_net = None


def net():
    """One CS for every case (started at the first)."""
    global _net
    if _net is None:
        _net = Network(NET).__enter__()
    return _net


def python_holidays(first, last):
    """The holidays python3-holidays (Debian's, for the system Python) gives for the years."""
    code = ("import holidays, json; print(json.dumps(sorted(str(d) for y in range(%d, %d) "
            "for d in holidays.JP(years=y))))" % (first, last + 1))
    out = subprocess.run(["/usr/bin/python3", "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return {datetime.date.fromisoformat(d) for d in json.loads(out)}


def year_days(d, year):
    return d.ctl("calendar", "--year", year)["days"]


def holidays_of(d, first, last, source=None):
    """{date: name} of the holidays of the years first..last, in one call."""
    out = {}
    for day in d.ctl("calendar", "--holidays", "--year", "%d..%d" % (first, last))["days"]:
        assert day["holiday"] is not None, day
        if source in (None, day["source"]):
            out[datetime.date.fromisoformat(day["date"])] = day["holiday"]
    return out


def case_law_against_python_holidays():
    """1955-2050 by the law's rules (nothing loaded) equal python3-holidays 0.10, but for the
    days listed above, each of which still differs."""
    d = net()[A]
    ours = holidays_of(d, 1955, 2050)
    theirs = python_holidays(1955, 2050)
    assert len(ours) > 1400, len(ours)
    diff = set(ours) ^ theirs
    excluded = {**PY_WRONG, **SPECIAL_LAWS}
    unexplained = sorted(diff - set(excluded))
    assert not unexplained, ["%s ours=%s python=%s" % (x, ours.get(x), x in theirs)
                             for x in unexplained]
    stale = sorted(set(excluded) - diff)
    assert not stale, stale
    # The law's days, not only their dates: a few names across their history.
    assert ours[datetime.date(1988, 4, 29)] == "天皇誕生日"
    assert ours[datetime.date(1989, 4, 29)] == "みどりの日"
    assert ours[datetime.date(2007, 4, 29)] == "昭和の日"
    assert ours[datetime.date(2009, 9, 22)] == "国民の休日"
    assert ours[datetime.date(2015, 9, 22)] == "国民の休日"
    assert ours[datetime.date(2008, 5, 6)] == "振替休日"
    assert ours[datetime.date(2020, 2, 23)] == "天皇誕生日"
    assert ours[datetime.date(2022, 10, 10)] == "スポーツの日"


def write_sjis(path, text):
    with open(path, "wb") as f:
        f.write(text.replace("\n", "\r\n").encode("cp932"))


def case_load_cabinet_office_list():
    """syukujitsu.csv in Shift_JIS puts the one-off days of 2019-2021 in, and those years are
    then the list's alone; a file with one bad line is refused whole, naming the line, and
    the list loaded before stays."""
    n = net()
    d = n[A]
    path = os.path.join(n.dir, "syukujitsu.csv")
    write_sjis(path, CABINET_OFFICE)
    r = d.ctl("calendar", "load", path)
    assert r["days"] == CABINET_OFFICE.count("\n") - 1, r
    assert (r["first"], r["last"], r["source"]) == ("2018-01-01", "2021-11-23",
                                                    "syukujitsu.csv"), r
    want = {}
    for line in CABINET_OFFICE.splitlines()[1:]:
        date, name = line.split(",")
        want[datetime.datetime.strptime(date, "%Y/%m/%d").date()] = name
    got = holidays_of(d, 2018, 2021)
    assert got == want, sorted(set(got.items()) ^ set(want.items()))
    days = {x["date"]: x for x in year_days(d, 2019) + year_days(d, 2020)}
    assert days["2019-05-01"]["open"] is False
    assert days["2019-05-01"]["why"] == "holiday: 休日（祝日扱い）"
    assert days["2019-05-01"]["source"] == "list"
    # 2020: the Olympic moves. The Monday of the rules' スポーツの日 is an operating day.
    assert days["2020-07-24"]["open"] is False
    assert days["2020-10-12"]["open"] is True, days["2020-10-12"]
    # python3-holidays knows 2019 and 2020's one-off days: now they agree.
    py = {x for x in python_holidays(2019, 2020)}
    assert py == {x for x in want if x.year in (2019, 2020)}, py ^ set(want)
    # The years around are the rules' again.
    assert holidays_of(d, 2022, 2022, source="list") == {}
    assert holidays_of(d, 2017, 2017)[datetime.date(2017, 12, 23)] == "天皇誕生日"

    # A bad file: line 5 names 31 February. Nothing of it is loaded.
    bad = os.path.join(n.dir, "bad.csv")
    lines = CABINET_OFFICE.splitlines()
    lines[4] = "2018/2/31,休日"
    write_sjis(bad, "\n".join(lines) + "\n")
    code, out, err = run_ctl("-s", d.socket, "calendar", "load", bad, check=False,
                             json_out=False)
    assert code == CTL_FAILED, (code, out, err)
    assert "bad.csv:5: no such day 2018/2/31" in err, err
    # The same day twice, in UTF-8 this time: refused at its second line.
    dup = os.path.join(n.dir, "dup.csv")
    with open(dup, "w", encoding="utf-8") as f:
        f.write("2030/1/1,元日\n2030/5/1,臨時\n2030/05/01,again\n")
    code, out, err = run_ctl("-s", d.socket, "calendar", "load", dup, check=False,
                             json_out=False)
    assert code == CTL_FAILED and "dup.csv:3: the same day as line 2" in err, (code, err)
    # Bytes that are neither UTF-8 nor Shift_JIS.
    with open(bad, "wb") as f:
        f.write(b"2030/1/1,\x82\xa0\n2030/1/2,\xff\xff\xff\n")
    code, out, err = run_ctl("-s", d.socket, "calendar", "load", bad, check=False,
                             json_out=False)
    assert code == CTL_FAILED and "bad.csv:2: neither UTF-8 nor Shift_JIS" in err, (code, err)
    cal = d.ctl("calendar", "--year", 2019)
    assert cal["list"]["days"] == r["days"] and cal["list"]["source"] == "syukujitsu.csv"
    assert holidays_of(d, 2030, 2030, source="list") == {}
    assert holidays_of(d, 2019, 2019) == {k: v for k, v in want.items() if k.year == 2019}


def control(d, cmd, args):
    """One request on the control socket, as any client may send it (control.md §2)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(d.socket)
        req = json.dumps({"v": 1, "cmd": cmd, "args": args}).encode()
        s.sendall(struct.pack(">I", len(req)) + req)
        n, = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))
        return json.loads(s.recv(n, socket.MSG_WAITALL))


def case_daemon_checks_loaded_days():
    """The daemon checks what any client sends, not only what juki-ctl has checked: a bad day,
    a day twice, a bad name or too many days refuse the whole list, naming the entry."""
    d = net()[A]
    before = d.ctl("calendar")["list"]
    good = [{"date": "2031-01-01", "name": "元日"}]
    for days, why in (
            (good + [{"date": "2031-02-30", "name": "x"}], "days[1].date"),
            (good + [{"date": "2031-01-01", "name": "again"}], "days[1].date: given twice"),
            (good + [{"date": "2031-05-01", "name": "a,b"}], "days[1].name"),
            (good + [{"date": "2031-05-01", "name": "tab\there"}], "days[1].name"),
            (good + [{"date": "2100-05-01", "name": "x"}], "years 1900..2099"),
            ([{"date": "2031-01-%02d" % (i % 28 + 1), "name": "x"} for i in range(20001)],
             "days: an array"),
            ([], "days: an array")):
        r = control(d, "calendar-load", {"days": days, "source": "raw"})
        assert r["ok"] is False and r["error"]["code"] == "invalid", r
        assert why in r["error"]["message"], (why, r)
    assert d.ctl("calendar")["list"] == before
    assert holidays_of(d, 2031, 2031, source="list") == {}
    r = control(d, "calendar-set", {"date": "2031-01-06", "state": "shut", "reason": "x"})
    assert r["ok"] is False and "open, closed or clear" in r["error"]["message"], r


def jst_ms(day, hh, mm):
    t = datetime.datetime(day.year, day.month, day.day, hh, mm, tzinfo=JST)
    return int(t.timestamp() * 1000)


def move_to(d, day, hh, mm):
    """Set the daemon's clock to day hh:mm JST (in the future: clock_offset is not negative)."""
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
    set_clock(d, jst_ms(day, hh, mm) - now)


def open_days(d, year, month):
    r = d.ctl("calendar", "--month", "%04d-%02d" % (year, month))
    return [datetime.date.fromisoformat(x["date"]) for x in r["days"] if x["open"]]


def deadline_days(d):
    """The operating days the deadline alerts named so far."""
    out = set()
    for a in d.alerts()["recent"]:
        if a["code"] == "deadline-missed":
            m = re.search(r"operating day of (\d{4}-\d\d-\d\d) began", a["detail"])
            out.add(datetime.date.fromisoformat(m.group(1)))
    return out


def second_monday(year, month):
    first = datetime.date(year, month, 1)
    return first + datetime.timedelta(days=(7 - first.weekday()) % 7 + 7)


def case_deadline_follows_calendar():
    """A message queued on the last evening before the year-end closure is late when the
    first operating day of January begins, not before; one queued on the Friday before
    成人の日 is late on Tuesday, not on the holiday Monday."""
    d = net()[A]
    s = Synth(seed=611)
    year = datetime.date.today().year + 1
    last = max(x for x in open_days(d, year, 12) if x.day < 29)
    first = min(open_days(d, year + 1, 1))
    assert first >= datetime.date(year + 1, 1, 4), first
    before = deadline_days(d)
    move_to(d, last, 19, 0)
    d.ctl("resident", "add", "--file", "-", input=json.dumps(s.person("131016")))
    # Through the closure and the holidays: the operating day of `last` is still on.
    move_to(d, datetime.date(year + 1, 1, 2), 12, 0)
    assert d.ctl("calendar")["operating_day_began"].startswith(
        "%sT23:30:00" % (last - datetime.timedelta(days=1)))
    assert deadline_days(d) - before <= {last}, deadline_days(d)
    move_to(d, first, 8, 29)
    assert first not in deadline_days(d)
    move_to(d, first, 8, 31)
    assert first in deadline_days(d), deadline_days(d)

    # The Friday before 成人の日 (the second Monday of January), then the holiday, then Tuesday.
    monday = second_monday(year + 1, 1)
    friday = monday - datetime.timedelta(days=3)
    move_to(d, friday, 19, 0)
    d.ctl("resident", "add", "--file", "-", input=json.dumps(s.person("131016")))
    move_to(d, monday, 12, 0)
    cal = d.ctl("calendar")
    assert cal["open_today"] is False and cal["why_today"] == "holiday: 成人の日", cal
    seen = deadline_days(d)
    assert not seen & {friday + datetime.timedelta(days=i) for i in (1, 2, 3)}, seen
    move_to(d, monday + datetime.timedelta(days=1), 8, 31)
    assert monday + datetime.timedelta(days=1) in deadline_days(d)


def run(d, *args):
    return run_ctl("-s", d.socket, *args, check=False, json_out=False)


def case_check_for_daily_jobs():
    """`calendar check JOB` exits 1 for a daily job on a holiday and 0 on the next operating
    day; an immediate kind runs any day; the counters' hours; overrides; the units and the
    cron lines ask it for the jobs the configuration calls daily."""
    d = net()[A]
    year = datetime.date.today().year + 2
    monday = second_monday(year, 1)  # 成人の日
    move_to(d, monday, 10, 0)
    code, out, err = run(d, "calendar", "check", "purge")
    assert code == CTL_FAILED and "holiday: 成人の日" in out, (code, out, err)
    assert run(d, "calendar", "check", "backup")[0] == CTL_FAILED
    assert run(d, "calendar", "check", "messages")[0] == 0
    assert run(d, "calendar", "check")[0] == CTL_FAILED  # the counters are closed
    code, out, err = run(d, "calendar", "check", "no-such-job")
    assert code == CTL_FAILED and "not-found" in err, (code, out, err)
    tuesday = monday + datetime.timedelta(days=1)
    move_to(d, tuesday, 10, 0)
    assert run(d, "calendar", "check", "purge")[0] == 0
    assert run(d, "calendar", "check")[0] == 0
    # An override closes Tuesday (and shows in the history), then is cleared.
    r = d.ctl("calendar", "set", str(tuesday), "closed", "--reason", "system maintenance")
    assert r["open"] is False and r["why"] == "override: system maintenance", r
    code, out, err = run(d, "calendar", "check", "purge")
    assert code == CTL_FAILED and "override: system maintenance" in out, out
    code, out, err = run(d, "calendar", "set", str(tuesday), "closed")
    assert code == CTL_FAILED and "reason" in err, (code, err)
    d.ctl("calendar", "set", str(tuesday), "clear")
    # The operation history names the day and what was done to it.
    entries = [e for e in history(d) if e.get("action") == "calendar-set"]
    assert any(e.get("target") == str(tuesday) and
               e.get("detail") == "closed: system maintenance" for e in entries), entries
    assert run(d, "calendar", "check", "purge")[0] == 0
    move_to(d, tuesday, 18, 0)
    assert run(d, "calendar", "check")[0] == CTL_FAILED  # after calendar.hours
    assert run(d, "calendar", "check", "purge")[0] == 0

    # The shipped units and cron lines skip the daily jobs on days that are not operating days.
    daily = d.ctl("calendar")["processing"]["daily"]
    for job, unit in (("purge", "juki-purge@.service"), ("backup", "juki-backup@.service"),
                      ("audit-verify", "juki-audit-verify@.service")):
        assert job in daily
        text = open(os.path.join(SOURCE, "conf", "systemd", unit)).read()
        assert ("ExecCondition=/usr/bin/juki-ctl -s /run/juki/%%i.sock calendar check %s"
                % job) in text, unit
    cron = open(os.path.join(SOURCE, "conf", "cron.d", "juki")).read()
    for line in cron.splitlines():
        if line.lstrip("#").startswith("0 ") and "juki-ctl" in line:
            job = ("purge" if " purge" in line else "backup" if " backup" in line
                   else "audit-verify")
            assert "calendar check %s >/dev/null &&" % job in line, line


def main():
    try:
        run_cases([case_law_against_python_holidays, case_load_cabinet_office_list,
                   case_daemon_checks_loaded_days, case_deadline_follows_calendar, case_check_for_daily_jobs])
    finally:
        if _net is not None:
            _net.__exit__(None, None, None)


if __name__ == "__main__":
    main()
