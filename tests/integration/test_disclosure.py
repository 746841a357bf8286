"""Disclosure of provision records (第6-8(5)): the national server's provision notices reach
the prefecture of the person's address through the gateway (provide.notice) and are
reconciled by counts; the prefecture's disclosure lists exactly what was provided and used,
as text, JSON and a printed PDF; a prefectural operator's lookup is a use; a person with no
provision gets an empty answer.

case_provided_through_the_gateway asks the national server and the prefecture as a state
agency's staff member does (provide.query through the gateway, test_provide.py's Body). The
other cases write the provision records at the national server straight into its store, a
test-only path (no daemon ships a way to write them by hand) that makes many records of chosen
times and texts cheaply: what the provide.query handler would have recorded."""

import json
import os
import re
import sqlite3
import stat
import subprocess
import time

from jukitest import (Network, add_residents, fails, history, run_cases, store_rows,
                      wait_until)
from jukitest.synth import Synth
from test_provide import BODIES, NENKIN, PURPOSE, SATO, active, ask
from test_provide import configure as provide_configure

GW, A, PREF, JLIS = "fwgate:east", "cs:131016", "pref:13", "jlis:0"
ISSUER = "東京都知事"
JLIS_URN, PREF_URN = "urn:juki:jlis:0", "urn:juki:pref:13"
YOSHI = "\U00020BB7"  # 𠮷, outside the BMP
KATSU = "\u845b\U000E0100"  # 葛󠄀, an ideographic variation sequence


def uuid7(ms):
    r = int.from_bytes(os.urandom(10), "big")
    v = ((ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (((r >> 64) & 0xFFF) << 64) | \
        (0b10 << 62) | (r & ((1 << 62) - 1))
    h = "%032x" % v
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def seed(store, code, body, jimu, items, purpose, ms, origin=JLIS_URN, staff=""):
    """A provision record as a provide handler records it (test-only: straight into the
    store the daemon has open; SQLite's locking keeps both writers apart)."""
    rid = uuid7(ms)
    db = sqlite3.connect(store, timeout=10)
    try:
        with db:
            db.execute("INSERT INTO provisions (id, kind, code, body, staff, agreement, jimu,"
                       " items, purpose, time_ms, request, origin, notified)"
                       " VALUES (?, 'provide', ?, ?, ?, 'ag-1', ?, ?, ?, ?, ?, ?, 0)",
                       (rid, code, body, staff, jimu, items, purpose, ms, uuid7(ms), origin))
    finally:
        db.close()
    return rid


def supervisor(net):
    """The prefecture's supervisor (責任者), who answers disclosure requests."""
    return net[PREF].operators.get("boss") or net[PREF].add_operator("boss", ["supervisor"])


def disclosure(net, code, *args, **kw):
    return supervisor(net).ctl("disclosure", code, *args, **kw)


def notices_reconcile(net):
    code, out, err = net[JLIS].admin("notices", "reconcile", check=False)
    return code, json.loads(out) if out.strip() else {"error": err}


def pdf_text(path):
    """The text of a PDF as poppler reads it back, without the line breaks and spaces that the
    layout puts in (a cell's text wraps within its column): every character, in order."""
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", path, "-"], capture_output=True,
                         text=True, check=True).stdout
    return re.sub(r"\s+", "", out)


def configure(net):
    net[PREF].extra["issuer"] = ISSUER
    net[JLIS].extra["notice_interval"] = "100ms"


def setup(net, s, n):
    people = [s.person("131016") for _ in range(n)]
    add_residents(net[A], people)
    wait_until("%d records at jlis" % n,
               lambda: net[JLIS].status()["records"]["current"] == n)
    return people


def case_provided_through_the_gateway():
    """The whole flow: a state agency's staff member asks the national server and then the
    prefecture for a resident; the national server's provision reaches the prefecture as a
    notice; the disclosure lists both, oldest first, each with who provided it."""
    def conf(net):
        provide_configure(net)
        configure(net)

    s = Synth(seed=65)
    with Network([GW, A, PREF, JLIS], extra_identities=BODIES, configure=conf) as net:
        (p,) = setup(net, s, 1)
        wait_until("the record at the prefecture",
                   lambda: net[PREF].status()["records"]["current"] == 1)
        active(net, JLIS, "nenkin-j")
        active(net, PREF, "nenkin-p")
        ack = ask(net, NENKIN, SATO, JLIS, "nenkin-j", code=p["code"])
        assert ack["status"] == "accepted" and ack["result"]["found"], ack
        ack = ask(net, NENKIN, SATO, PREF, "nenkin-p", code=p["code"])
        assert ack["status"] == "accepted" and ack["result"]["found"], ack
        got = wait_until("the national server's provision at the prefecture", lambda: (
            lambda d: d["total"] == 2 and d)(disclosure(net, p["code"])))
        rows = got["provisions"]
        assert [(x["origin"], x["agreement"], x["body"], x["staff"], x["jimu"], x["purpose"])
                for x in rows] == [
            (JLIS_URN, "nenkin-j", "urn:juki:" + NENKIN, "urn:juki:" + SATO, "1-3", PURPOSE),
            (PREF_URN, "nenkin-p", "urn:juki:" + NENKIN, "urn:juki:" + SATO, "1-3", PURPOSE),
        ], rows
        # The same record at both ends: the national server's id kept.
        at_jlis = store_rows(net[JLIS].store, "SELECT id, notified FROM provisions")
        assert at_jlis == [(rows[0]["id"], 1)], at_jlis
        code, out = notices_reconcile(net)
        assert code == 0 and out["days"][0]["sent"] == 1 == out["days"][0]["received"], out


def case_notices_reach_the_prefecture_and_reconcile():
    s = Synth(seed=61)
    with Network([GW, A, PREF, JLIS], configure=configure) as net:
        p, q, r = setup(net, s, 3)
        now = int(time.time() * 1000)
        ids = [
            seed(net[JLIS].store, p["code"], "urn:juki:agency:nenkin", "1-2",
                 "code,name,birth,sex,address", "年金給付の支給に関する事務", now - 3000,
                 staff="urn:juki:op:agency:nenkin:sato"),
            seed(net[JLIS].store, p["code"], "urn:juki:exec:13-kyoiku", "5-1", "code,address",
                 "就学の事務", now - 2000),
            seed(net[JLIS].store, q["code"], "urn:juki:agency:nenkin", "1-2", "code",
                 "年金給付の支給に関する事務", now - 1000),
        ]
        wait_until("3 notices at the prefecture", lambda: store_rows(
            net[PREF].store, "SELECT count(*) FROM provisions")[0][0] == 3)
        # Held once, with the national server as their origin; marked notified at jlis.
        rows = store_rows(net[PREF].store, "SELECT id, origin, code FROM provisions ORDER BY "
                          "time_ms")
        assert [x[0] for x in rows] == ids and {x[1] for x in rows} == {JLIS_URN}, rows
        assert store_rows(net[JLIS].store, "SELECT count(*) FROM provisions WHERE notified = 1"
                          )[0][0] == 3
        # The counts agree: one prefecture, one day, three records, the same digest.
        code, out = notices_reconcile(net)
        assert code == 0, out
        day = out["days"][0]
        assert len(out["days"]) == 1 and day["dest"] == PREF_URN, out
        assert day["status"] == "ok" and day["sent"] == 3 and day["received"] == 3, day
        assert day["sent_digest"] == day["received_digest"], day
        assert net[JLIS].alert_counts().get("count-mismatch") is None
        # A notice lost at the prefecture: the difference is alerted and the day sent again.
        db = sqlite3.connect(net[PREF].store, timeout=10)
        with db:
            db.execute("DELETE FROM provisions WHERE id = ?", (ids[1],))
        db.close()
        code, out = notices_reconcile(net)
        wait_until("count-mismatch at jlis",
                   lambda: net[JLIS].alert_counts().get("count-mismatch") == 1)
        alert = [a for a in net[JLIS].alerts()["recent"] if a["code"] == "count-mismatch"][0]
        assert "sent 3, recorded 2" in alert["detail"], alert
        assert p["code"] not in json.dumps(alert) and p["name"] not in json.dumps(alert)
        wait_until("the lost notice back", lambda: store_rows(
            net[PREF].store, "SELECT count(*) FROM provisions WHERE id = '%s'" % ids[1]
        )[0][0] == 1)
        code, out = notices_reconcile(net)
        assert code == 0, out
        day = out["days"][0]
        assert day["status"] == "ok" and day["received"] == 3 and day["resent"] == 1, day
        assert day["last_resend"]["records"] == 3, day
        # Sent again, still held once.
        assert store_rows(net[PREF].store, "SELECT count(*) FROM provisions")[0][0] == 3
        # Someone else's person: nothing of r went anywhere.
        assert disclosure(net, r["code"])["total"] == 0


def case_disclosure_lists_what_was_provided():
    s = Synth(seed=62)
    with Network([GW, A, PREF, JLIS], configure=configure) as net:
        p, q = setup(net, s, 2)
        now = int(time.time() * 1000)
        seed(net[JLIS].store, p["code"], "urn:juki:agency:nenkin", "1-2",
             "code,name,birth,sex,address", "年金給付の支給に関する事務", now - 5000)
        seed(net[JLIS].store, p["code"], "urn:juki:exec:13-kyoiku", "5-1", "code,address",
             "就学の事務（" + YOSHI + "田さんの照会）", now - 4000)
        wait_until("2 notices at the prefecture", lambda: disclosure(net, p["code"])["total"]
                   == 2)
        # A prefectural operator's lookup is a use of the information (第6-8(5)ア 利用).
        clerk = net[PREF].clerk()
        found = clerk.ctl("lookup", "--purpose", "inquiry", p["code"])
        assert found["records"][0]["code"] == p["code"]
        got = disclosure(net, p["code"])
        assert got["code"] == p["code"] and got["issuer"] == ISSUER and got["total"] == 3, got
        assert got["prefecture"] == PREF_URN
        rows = got["provisions"]
        # Exactly what was provided and used, oldest first.
        assert [(x["kind"], x["body"], x["jimu"], x["items"], x["origin"]) for x in rows] == [
            ("provide", "urn:juki:agency:nenkin", "1-2",
             ["code", "name", "birth", "sex", "address"], JLIS_URN),
            ("provide", "urn:juki:exec:13-kyoiku", "5-1", ["code", "address"], JLIS_URN),
            ("use", clerk.urn, "", ["code", "name", "birth", "sex", "address", "change"],
             PREF_URN),
        ], rows
        assert rows[0]["purpose"] == "年金給付の支給に関する事務"
        assert rows[1]["purpose"] == "就学の事務（" + YOSHI + "田さんの照会）"
        assert rows[2]["purpose"] == "inquiry"
        assert [x["time"] for x in rows] == sorted(x["time"] for x in rows)
        # The officer's disclosure is in the operation history, by the code alone.
        asked = [e for e in history(net[PREF]) if e["action"] == "disclosure"]
        assert asked and asked[-1]["target"] == p["code"], asked
        assert asked[-1]["operator"] == supervisor(net).urn, asked
        # As text: a line a row.
        text = disclosure(net, p["code"], json_out=False)
        assert "provisions and uses of %s recorded at %s: 3" % (p["code"], PREF_URN) in text
        assert text.count("urn:juki:agency:nenkin") == 1 and clerk.urn in text, text
        # The printed answer: a new file of mode 0600, the exact text read back.
        pdf = os.path.join(net.dir, "answer.pdf")
        disclosure(net, p["code"], "--pdf", pdf, json_out=False)
        assert stat.S_IMODE(os.stat(pdf).st_mode) == 0o600
        back = pdf_text(pdf)
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 9 * 3600))
        y, m, d = (int(x) for x in today.split("-"))
        for want in ("本人確認情報の提供状況の開示", "住民票コード　" + p["code"],
                     "提供及び利用の記録　3件", "年金給付の支給に関する事務",
                     "就学の事務（" + YOSHI + "田さんの照会）", "urn:juki:exec:13-kyoiku",
                     "指定情報処理機関", "利用", "inquiry", "%d年%d月%d日" % (y, m, d), ISSUER):
            assert re.sub(r"\s+", "", want) in back, (want, back)
        fonts = subprocess.run(["pdffonts", pdf], capture_output=True, text=True,
                               check=True).stdout.splitlines()[2:]
        assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts
        # A file that exists is never overwritten.
        before = open(pdf, "rb").read()
        code, _, err = disclosure(net, p["code"], "--pdf", pdf, json_out=False, check=False)
        assert code == 1 and "exists" in err and open(pdf, "rb").read() == before
        # A person with nothing provided: an empty answer, also on paper.
        none = disclosure(net, q["code"])
        assert none["total"] == 0 and none["provisions"] == [], none
        empty = os.path.join(net.dir, "empty.pdf")
        disclosure(net, q["code"], "--pdf", empty, json_out=False)
        back = pdf_text(empty)
        assert "本人確認情報の提供又は利用の記録はありません。" in back, back
        assert "住民票コード" + q["code"] in back, back


def case_disclosure_refusals():
    s = Synth(seed=63)
    with Network([GW, A, PREF, JLIS], configure=configure) as net:
        (p,) = setup(net, s, 1)
        now = int(time.time() * 1000)
        # A character no installed font has (private use): the answer is not printed, the
        # clerk is told where, and the text itself is not shown.
        seed(net[JLIS].store, p["code"], "urn:juki:agency:nenkin", "1-2", "code",
             "照会\ue000の事務", now - 1000)
        wait_until("the notice at the prefecture",
                   lambda: disclosure(net, p["code"])["total"] == 1)
        pdf = os.path.join(net.dir, "refused.pdf")
        code, _, err = disclosure(net, p["code"], "--pdf", pdf, json_out=False, check=False)
        assert code == 1 and "row 1, column 7, character 3" in err, err
        assert "照会" not in err and not os.path.exists(pdf)
        # Roles: a clerk may not ask for a disclosure; a supervisor may.
        clerk = net[PREF].clerk()
        assert fails(clerk.ctl, "disclosure", p["code"])[1] == "forbidden"
        assert fails(net[PREF].admin, "disclosure", p["code"])[1] == "forbidden"
        auditor = net[PREF].add_operator("audit", ["auditor"])
        assert auditor.ctl("disclosure", p["code"])["total"] == 1
        # A malformed code is refused, never looked up.
        assert fails(disclosure, net, p["code"][:-1] + "x")[1] == "usage"


def case_issuer_required():
    s = Synth(seed=64)
    with Network([GW, A, PREF, JLIS]) as net:
        (p,) = setup(net, s, 1)
        assert fails(disclosure, net, p["code"])[1] == "config"


if __name__ == "__main__":
    run_cases([case_provided_through_the_gateway, case_notices_reach_the_prefecture_and_reconcile,
               case_disclosure_lists_what_was_provided, case_disclosure_refusals,
               case_issuer_required])
