#!/usr/bin/env python3
"""A receiving body's side of provision (第6-8(1)イ), through the real gateways.

juki-ctl provide query|batch|approve|purge as a state agency's staff member and 責任者 would
run them, against the real juki-prefd (residents imported at a real juki-csd), through real
juki-fwgated gateways: online queries by code and by the four items with a staff card on a
SoftHSM2 token, a batch of several parts with its progress and its answers file, a bulk batch
with the 責任者's approval and the approvals the server refuses, the erasure of answer files
after their period, a gateway down, and bad input refused before anything is sent.
"""

import json
import os
import subprocess

import ssl

from jukitest import (CARD_PIN, SOURCE, Network, fname, free_port, run_cases, run_ctl,
                      secret_fd, store_rows, wait_until)
from jukitest.peer import FakeNode, ack_of
from jukitest.synth import Synth, change_row, import_csv

GW1, GW2, CS, PREF, JLIS = "fwgate:east", "fwgate:west", "cs:131016", "pref:13", "jlis:0"
BODY = "agency:nenkin"
STAFF = "urn:juki:op:agency:nenkin:sato"
BOSS = "urn:juki:op:agency:nenkin:boss"
OTHER = "urn:juki:op:agency:nenkin:tanaka"
EXEC, EXEC27 = "exec:131016-zeimu", "exec:272001-zeimu"
NET = [GW1, GW2, CS, PREF]
DAY_MS = 86400_000
AGREEMENT = "nenkin-2026"
JIMU = "1-3"
PURPOSE = "年金給付の現況確認"


def write(net, name, text):
    path = os.path.join(net.dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class Card:
    """A card of the body: a certificate and its key, on a SoftHSM2 token or in an encrypted
    key file (as jukitest.Operator makes an operator's)."""

    def __init__(self, net, urn, token=False):
        self.urn = urn
        stem = os.path.join(net.pki, fname(urn))
        self.cert, self.key = stem + ".crt", stem + ".key"
        self.uri, self.env = None, None
        fd = secret_fd(CARD_PIN)
        run_ctl("pki", "issue", "--encrypt", "--pin-fd", fd, net.pki, urn, fds=(fd,))
        if token:
            plain = stem + ".plain.key"
            subprocess.run(["openssl", "pkey", "-in", self.key, "-passin", "pass:" + CARD_PIN,
                            "-out", plain], check=True, capture_output=True)
            out = subprocess.run([os.path.join(SOURCE, "tests", "fixtures", "softhsm-card.sh"),
                                  stem + ".token", "card-" + urn.split(":")[-1], CARD_PIN,
                                  plain], check=True, capture_output=True, text=True).stdout
            os.unlink(plain)
            vals = dict(line.split("=", 1) for line in out.split())
            self.uri = vals["URI"]
            self.env = {"SOFTHSM2_CONF": vals["SOFTHSM2_CONF"]}


class Body:
    """The terminal of the body: its body file and its staff member's card."""

    def __init__(self, net, card, gateways=None, name="body.yaml", body=BODY, server=PREF,
                 **keys):
        self.net, self.card = net, card
        self.answers = os.path.join(net.dir, "answers")
        gws = gateways or [net[g].address for g in (GW1, GW2)]
        lines = ["body: urn:juki:%s" % body, "tls:",
                 "  cert: %s/%s.crt" % (net.pki, fname(body)),
                 "  key: %s/%s.key" % (net.pki, fname(body)),
                 "  ca: %s/ca.crt" % net.pki, "  crl: %s/crl.pem" % net.pki,
                 "gateways: [%s]" % ", ".join("'%s'" % g for g in gws),
                 "server: urn:juki:%s" % server, "staff:", "  cert: %s" % card.cert,
                 ("  card: '%s'" % card.uri) if card.uri else ("  key: %s" % card.key),
                 "answers: %s" % self.answers, "connect_timeout: 2s", "part_timeout: 60s"]
        lines += ["%s: %s" % kv for kv in keys.items()]
        self.path = write(net, name, "\n".join(lines) + "\n")

    def ctl(self, *args, card_pin=CARD_PIN, **kw):
        fd = secret_fd(card_pin)
        return run_ctl("provide", args[0], "--body-conf", self.path, "--card-pin-fd", fd,
                       *args[1:], fds=(fd,), env=self.card.env, **kw)

    def query(self, *args, **kw):
        return self.ctl("query", "--agreement", AGREEMENT, "--jimu", JIMU, "--purpose",
                        PURPOSE, *args, **kw)

    def batch(self, queries_file, *args, **kw):
        return self.ctl("batch", "--agreement", AGREEMENT, "--jimu", JIMU, "--purpose",
                        PURPOSE, *args, queries_file, **kw)

    def purge(self, *args, **kw):
        return run_ctl("provide", "purge", "--body-conf", self.path, *args, **kw)


def approve(net, card, queries_file, *args, json_out=False, **kw):
    """juki-ctl provide approve by card's holder; returns the approval file's path.  The file
    is its standard output as it is, as docs/body.md §5 makes it (`> approval.json`), with or
    without --json: the approval is JSON either way, the message to the holder on stderr."""
    fd = secret_fd(CARD_PIN)
    opts = ["--cert", card.cert, "--ca", net.ca(), "--crl", os.path.join(net.pki, "crl.pem")]
    opts += ["--card", card.uri] if card.uri else ["--key", card.key]
    code, out, err = run_ctl("provide", "approve", *opts, "--card-pin-fd", fd, *args,
                             queries_file, fds=(fd,), env=card.env, json_out=json_out,
                             check=False, **kw)
    assert code == 0 and "approved by" in err and "approved by" not in out, (code, out, err)
    path = os.path.join(net.dir, "approval-%s.json" % json.loads(out)["batch"])
    with open(path, "w") as f:
        f.write(out)
    return path


def residents(net, people):
    """people imported at the CS, and waited for at the prefectural server."""
    for i in range(0, len(people), 2000):
        net[CS].ctl("import", write(net, "residents-%d.csv" % i, import_csv(
            [change_row(p, "職権記載") for p in people[i:i + 2000]])))
    wait_until("the prefecture holds every resident",
               lambda: net[PREF].status()["records"]["current"] >= len(people), timeout=120)


def agreement(net, bulk_threshold=100000, keep_days=30,
              items=("code", "name", "birth", "sex", "address"), body=BODY, responsible=BOSS,
              server=PREF):
    """The body's agreement at the providing server: added by one supervisor, approved by
    another (juki-ctl agreement, part of the providing server)."""
    s1 = net[server].add_operator("s1", ["supervisor"])
    s2 = net[server].add_operator("s2", ["supervisor"])
    s1.ctl("agreement", "add", AGREEMENT, "--body", "urn:juki:" + body, "--jimu", JIMU,
           "--items", ",".join(items), "--methods", "online,batch", "--daily-cap", 1000000,
           "--bulk-threshold", bulk_threshold, "--keep-days", keep_days, "--responsible",
           responsible)
    s2.ctl("agreement", "approve", AGREEMENT)


def provisions(net, code=None):
    sql = "SELECT code, body, staff, agreement, jimu FROM provisions"
    if code:
        sql += " WHERE code = '%s'" % code
    return store_rows(net[PREF].store, sql)


def configure(net):
    """The shipped example 事務 list at the providing servers."""
    src = os.path.join(SOURCE, "conf", "jimu-example.csv")
    path = os.path.join(net.dir, "jimu.csv")
    with open(src, encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        out.write(f.read())
    for node in (PREF, JLIS):
        if node in net.daemons:
            net[node].extra["provide"] = "{jimu: '%s'}" % path


def network(names=NET, **kw):
    return Network(names, extra_identities=[BODY, EXEC, EXEC27], configure=configure, **kw)


def queries_file(net, name, people, by_four=()):
    lines = []
    for i, p in enumerate(people):
        if i in by_four:
            lines.append({k: p[k] for k in ("name", "birth", "sex", "address", "lgcode")})
        else:
            lines.append({"code": p["code"]})
    return write(net, name, "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in lines))


def days_after(day, n):
    import datetime
    return (datetime.date.fromisoformat(day) + datetime.timedelta(days=n)).isoformat()


def read_answers(path):
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    return lines[0], lines[1:]


# -- cases ------------------------------------------------------------------------------------


def case_online_query_token():
    """One person by code and by the four items, with a staff card on a SoftHSM2 token: the
    answer holds the agreed items, and the server records the provision with the staff."""
    s = Synth(seed=61)
    with network() as net:
        people = [s.person("131016") for _ in range(5)]
        residents(net, people)
        agreement(net)
        body = Body(net, Card(net, STAFF, token=True))
        p = people[2]
        r = body.query("--code", p["code"])
        assert r["found"] is True, r
        assert r["record"]["name"] == p["name"] and r["record"]["birth"] == p["birth"], r
        r = body.query("--name", p["name"], "--birth", p["birth"], "--sex", p["sex"],
                       "--address-code", p["lgcode"], "--address", p["address"])
        assert r["found"] is True and r["record"]["code"] == p["code"], r
        text = body.query("--code", p["code"], json_out=False)
        assert text.startswith("found: yes\n") and "name: %s\n" % p["name"] in text, text
        # Only the items asked for (a subset of the agreed ones) come back.
        r = body.query("--code", p["code"], "--items", "name,birth")
        assert r["found"] is True and set(r["record"]) <= {"code", "name", "birth"}, r
        assert "address" not in r["record"] and "sex" not in r["record"], r
        # A partial name is no match: the four items are compared exactly.
        r = body.query("--name", p["name"].split(" ")[0], "--birth", p["birth"], "--sex",
                       p["sex"], "--address-code", p["lgcode"], "--address", p["address"])
        assert r["found"] is False, r
        rows = provisions(net, p["code"])
        assert len(rows) == 4 and all(row[2] == STAFF for row in rows), rows
        assert all(row[1] == "urn:juki:" + BODY and row[3] == AGREEMENT for row in rows), rows
        # Nothing of the person in the text output's stderr, nor a wrong card PIN accepted.
        code, out, err = body.query("--code", p["code"], card_pin="0000", check=False)
        assert code == 4, (code, out, err)


def case_batch_parts_and_answers_file():
    """A batch of 2,500 queries in three parts: progress per part, one answer per query in
    order, a header with the batch id, the agreement and the erase-by date."""
    s = Synth(seed=62)
    with network() as net:
        people = [s.person("131016") for _ in range(2400)]
        residents(net, people)
        agreement(net, keep_days=7)
        body = Body(net, Card(net, STAFF), keep="30d")
        strangers = [s.person("131016") for _ in range(100)]  # not residents
        asked = people + strangers
        qf = queries_file(net, "q.jsonl", asked, by_four={5, 1500})
        code, out, err = body.batch(qf, check=False)
        assert code == 0, (code, out, err)
        r = json.loads(out)
        assert [l for l in err.splitlines() if "done" in l] == [
            "juki-ctl: provide batch %s: part %d/3 done (%d/2500)" % (r["batch"], i, n)
            for i, n in ((1, 1000), (2, 2000), (3, 2500))], err
        assert (r["count"], r["found"], r["not_found"]) == (2500, 2400, 100), r
        header, answers = read_answers(r["file"])
        assert header["batch"] == r["batch"] and header["agreement"] == AGREEMENT, header
        assert header["staff"] == STAFF and header["count"] == 2500, header
        today = run_ctl("provide", "purge", "--body-conf", body.path, "--dry-run")["today"]
        # The agreement's period (7 days) is shorter than the body file's (30): it holds.
        assert header["erase_by"] == r["erase_by"] == days_after(today, 7), (header, today)
        assert len(answers) == 2500
        assert [a["record"]["code"] for a in answers[:2400]] == [p["code"] for p in people]
        assert all(a == {"found": False} for a in answers[2400:]), answers[2400:2403]
        assert os.stat(r["file"]).st_mode & 0o777 == 0o600
        assert len(provisions(net)) == 2400


def case_bulk_needs_the_responsible_officer():
    """Over the bulk threshold: refused without an approval; accepted with the 責任者's; refused
    with another batch's, with a staff member's signature, or with the queries changed — and
    a refused batch leaves no answers file."""
    s = Synth(seed=63)
    with network() as net:
        people = [s.person("131016") for _ in range(1200)]
        residents(net, people)
        agreement(net, bulk_threshold=500)
        boss, other = Card(net, BOSS, token=True), Card(net, OTHER)
        body = Body(net, Card(net, STAFF))
        qf = queries_file(net, "bulk.jsonl", people)
        before = len(provisions(net))

        code, out, err = body.batch(qf, check=False)
        assert code == 1 and "approval-required" in err, (code, err)
        assert "no answers file written" in err, err

        # Another batch's approval (the same people in another order), then one over the
        # first 1,100 of these queries (part 1 is the same: the count differs), then someone
        # else's signature.
        qf2 = queries_file(net, "bulk2.jsonl", people[::-1])
        code, out, err = body.batch(qf, "--approval", approve(
            net, boss, queries_file(net, "bulk3.jsonl", people[:1100])), check=False)
        assert code == 1 and "approval-invalid" in err and "bad signature" in err, (code, err)
        for approval, why in ((approve(net, boss, qf2), "part hash mismatch"),
                              (approve(net, other, qf), "wrong signer")):
            code, out, err = body.batch(qf, "--approval", approval, check=False)
            assert code == 1 and "approval-invalid" in err and why in err, (code, err)
            assert "(part 1/2)" in err, err
        assert not [f for f in os.listdir(body.answers) if not f.startswith(".")] if \
            os.path.isdir(body.answers) else True
        assert len(provisions(net)) == before

        good = approve(net, boss, qf)
        r = body.batch(qf, "--approval", good)
        with open(good) as f:
            assert r["batch"] == json.load(f)["batch"]
        assert (r["count"], r["found"]) == (1200, 1200), r
        # An approval is for one batch: the same one again is refused at once.
        code, out, err = body.batch(qf, "--approval", good, check=False)
        assert code == 1 and "answered already" in err, (code, err)


def case_purge_after_the_period():
    """provide purge keeps an answers file until its erase-by date and erases it after."""
    s = Synth(seed=64)
    with network() as net:
        people = [s.person("131016") for _ in range(20)]
        residents(net, people)
        agreement(net, keep_days=10)
        body = Body(net, Card(net, STAFF))  # keep: as the server's answer says
        r = body.batch(queries_file(net, "q.jsonl", people))
        name = os.path.basename(r["file"])
        # A file that is not an answers file is never touched.
        junk = write(net, "answers/notes.jsonl", "{}\n")
        p = body.purge()
        assert p["count"] == 0 and p["kept"] == 1, p
        assert r["erase_by"] == days_after(p["today"], 10), (r, p)
        assert p["skipped"] == [{"file": "notes.jsonl", "why": p["skipped"][0]["why"]}], p
        later = Body(net, body.card, name="later.yaml",
                     clock_offset="%dms" % (11 * DAY_MS))
        p = later.purge("--dry-run")
        assert [e["file"] for e in p["removed"]] == [name] and p["dry_run"], p
        assert os.path.exists(r["file"])
        p = later.purge()
        assert [e["file"] for e in p["removed"]] == [name], p
        assert p["removed"][0]["erase_by"] == r["erase_by"], p
        assert not os.path.exists(r["file"]) and os.path.exists(junk)
        # On the erase-by day itself the file is still kept.
        r2 = body.batch(queries_file(net, "q2.jsonl", people[:3]))
        on_day = Body(net, body.card, name="onday.yaml",
                      clock_offset="%dms" % (10 * DAY_MS))
        assert on_day.purge()["count"] == 0 and os.path.exists(r2["file"])


def case_gateway_down_next_gateway():
    """The first gateway is down: the link goes through the next one."""
    s = Synth(seed=65)
    with network() as net:
        people = [s.person("131016") for _ in range(3)]
        residents(net, people)
        agreement(net)
        net[GW1].stop()
        body = Body(net, Card(net, STAFF))
        code, out, err = body.query("--code", people[0]["code"], check=False)
        assert code == 0 and json.loads(out)["found"] is True, (code, out, err)
        assert "gateway %s" % net[GW1].address in err and "trying the next" in err, err
        r = body.batch(queries_file(net, "q.jsonl", people))
        assert r["gateway"] == net[GW2].address, r
        # Every gateway down: unreachable (exit 3), naming the last one tried.
        net[GW2].stop()
        code, out, err = body.query("--code", people[0]["code"], check=False)
        assert code == 3 and net[GW2].address in err, (code, err)


def case_bad_input():
    """Refused before anything is sent: a malformed queries file (the line named), an
    oversized line or file, a partial four-item query, a missing or locked card."""
    with network() as net:
        body = Body(net, Card(net, STAFF), file_max="8KiB")
        ok = '{"code":"24727059608"}\n'
        for text, want in ((ok + '{"code":"24727059609"}\n', "bad.jsonl:2: code"),
                           (ok + ok + "{not json\n", "bad.jsonl:3: not JSON"),
                           (ok + '{"name":"x","birth":"1990-01-01"}\n', "bad.jsonl:2: query"),
                           (ok + '{"code":"%s"}\n' % ("1" * 5000), "bad.jsonl:2: line over"),
                           (ok * 400, "over the limit"),
                           ("\n# nothing\n", "no queries")):
            path = write(net, "bad.jsonl", text)
            code, out, err = body.batch(path, check=False)
            assert code == 2 and want in err, (text[:60], code, err)
            assert "24727059608" not in err
        code, out, err = body.query("--name", "山田 花子", "--birth", "1990-04-01", check=False)
        assert code == 2 and "no partial match" in err, (code, err)
        # The card's key file gone: a clear error, nothing sent.
        card = Card(net, "urn:juki:op:agency:nenkin:gone")
        os.unlink(card.key)
        code, out, err = Body(net, card, name="gone.yaml").query("--code", "24727059608",
                                                                   check=False)
        assert code == 1 and "card" in err and card.key in err, (code, err)
        # A locked token (its PIN refused): exit 4.
        tok = Card(net, "urn:juki:op:agency:nenkin:tok", token=True)
        code, out, err = Body(net, tok, name="tok.yaml").query("--code", "24727059608",
                                                                 card_pin="1111", check=False)
        assert code == 4, (code, err)
        # A token that is not there (the card not inserted): a clear error, exit 1.
        tok.uri = "pkcs11:token=card-nosuch;object=op;type=private"
        code, out, err = Body(net, tok, name="nosuch.yaml").query("--code", "24727059608",
                                                                    check=False)
        assert code == 1 and "card" in err and "card-nosuch" in err, (code, err)
        # A card of another body is not this body's staff.
        other = Card(net, "urn:juki:op:pref:13:clerk9")
        code, out, err = Body(net, other, name="other.yaml").query("--code", "24727059608",
                                                                     check=False)
        assert code == 1 and "not a staff member of" in err, (code, err)


def case_exec_body():
    """An executive body of a municipality of the prefecture asks with its own staff card and
    its 責任者's approval; one of another prefecture is refused by the gateway's policy, and
    that refusal is not taken to the next gateway."""
    s = Synth(seed=68)
    with network() as net:
        people = [s.person("131016") for _ in range(30)]
        residents(net, people)
        agreement(net, body=EXEC, responsible="urn:juki:op:%s:boss" % EXEC, bulk_threshold=10)
        body = Body(net, Card(net, "urn:juki:op:%s:suzuki" % EXEC, token=True), body=EXEC)
        r = body.query("--code", people[0]["code"])
        assert r["found"] is True, r
        qf = queries_file(net, "q.jsonl", people, by_four={3})
        boss = Card(net, "urn:juki:op:%s:boss" % EXEC)
        r = body.batch(qf, "--approval", approve(net, boss, qf))
        assert (r["count"], r["found"]) == (30, 30), r
        rows = provisions(net)
        assert {row[1] for row in rows} == {"urn:juki:" + EXEC}, rows
        assert {row[2] for row in rows} == {"urn:juki:op:%s:suzuki" % EXEC}, rows

        far = Body(net, Card(net, "urn:juki:op:%s:ono" % EXEC27), body=EXEC27, name="far.yaml")
        code, out, err = far.query("--code", people[0]["code"], check=False)
        assert code == 1 and "denied" in err and "policy" in err, (code, err)
        assert "trying the next" not in err, err


def case_national_server():
    """The body asks the national server (J-LIS) instead: the same link and commands, the
    body file naming urn:juki:jlis:0."""
    s = Synth(seed=69)
    with network(NET + [JLIS]) as net:
        people = [s.person("131016") for _ in range(12)]
        residents(net, people)
        wait_until("the national server holds every resident",
                   lambda: net[JLIS].status()["records"]["current"] >= len(people), timeout=60)
        agreement(net, server=JLIS, keep_days=5)
        body = Body(net, Card(net, STAFF), server=JLIS)
        r = body.query("--code", people[0]["code"])
        assert r["found"] is True and r["record"]["code"] == people[0]["code"], r
        r = body.batch(queries_file(net, "q.jsonl", people, by_four={1}))
        assert (r["count"], r["found"]) == (12, 12), r
        header, _ = read_answers(r["file"])
        assert header["server"] == "urn:juki:" + JLIS, header
        assert len(store_rows(net[JLIS].store, "SELECT id FROM provisions")) == 13
        assert provisions(net) == []  # nothing was provided by the prefecture


class FakeServer(FakeNode):
    """The providing server played by the test (its outer certificate names it, as the gateway
    requires); inner: another identity whose certificate it shows in the inner session."""

    def __init__(self, net, name, answer, inner=None):
        cert, key = net.cert(inner or name)
        self.inner_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.inner_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.inner_ctx.verify_mode = ssl.CERT_REQUIRED
        self.inner_ctx.load_verify_locations(net.ca())
        self.inner_ctx.load_cert_chain(cert, key)
        self.inner_ctx.num_tickets = 0
        outer_cert, outer_key = net.cert(name)
        super().__init__(net.fake_nodes[name], outer_cert, outer_key, net.ca(), answer)

    def _inner(self, outer, conn):
        ctx, self.ctx = self.ctx, self.inner_ctx
        try:
            super()._inner(outer, conn)
        finally:
            self.ctx = ctx


def fake_network():
    def configure(net):
        net.fake_nodes[PREF] = "127.0.0.1:%d" % free_port()
    return Network([GW1, GW2], extra_identities=[BODY, PREF, "pref:14"], configure=configure)


def case_wrong_server_refused():
    """The inner certificate names another server than the one asked for: the link is
    closed before any query is sent."""
    with fake_network() as net:
        with FakeServer(net, PREF, lambda conn, doc: [ack_of(doc)], inner="pref:14") as fake:
            body = Body(net, Card(net, STAFF))
            code, out, err = body.query("--code", "24727059608", check=False)
            assert code == 1 and "wrong-peer" in err and "urn:juki:pref:14" in err, (code, err)
            assert fake.received == [], fake.received


def case_refused_part_leaves_nothing():
    """The server refuses the second part of three: no answers file, nothing of the first
    part left in the answer directory, and the message says so (the third part was in
    flight behind it: a window of four)."""
    def answer(conn, doc):
        body = doc["body"]
        if doc["type"] != "provide.batch":
            return [ack_of(doc, body={"status": "rejected", "reason": "bad-batch"})]
        if body["batch"]["part"] == 1:
            return [ack_of(doc, body={"status": "rejected", "reason": "over-cap",
                                      "detail": "daily cap of 1500 queries reached"})]
        return [ack_of(doc, body={"status": "accepted", "result": {
            "answers": [{"found": False} for _ in body["queries"]]}})]

    s = Synth(seed=66)
    with fake_network() as net:
        with FakeServer(net, PREF, answer) as fake:
            body = Body(net, Card(net, STAFF), part_size=1000)
            qf = queries_file(net, "q.jsonl", [s.person("131016") for _ in range(2500)])
            code, out, err = body.batch(qf, check=False)
            assert code == 1 and "over-cap" in err and "(part 2/3)" in err, (code, err)
            assert "no answers file written" in err, err
            assert "part 1/3 done" in err, err
            assert os.listdir(body.answers) == [], os.listdir(body.answers)
            parts = [d["body"]["batch"] for _, d in fake.received]
            # Up to four parts in flight (docs/body.md): the third went out before the
            # second's refusal came back.
            assert [p["part"] for p in parts] == [0, 1, 2], parts
            assert {p["id"] for p in parts} == {parts[0]["id"]}, parts
            assert all(p["count"] == 2500 and p["parts"] == 3 for p in parts), parts
            # The answers are checked one for one: fewer answers than queries is no answer.
            fake.answer = lambda conn, doc: [ack_of(doc, body={
                "status": "accepted", "result": {"answers": [{"found": False}]}})]
            code, out, err = body.batch(qf, check=False)
            assert code == 1 and "bad-response" in err and "1 answers for 1000" in err, err
            assert os.listdir(body.answers) == []


def query_line(q):
    """The canonical line of a query, as docs/protocol.md §13.1 writes it."""
    if "code" in q:
        return "code:%s\n" % q["code"]
    return "four:%s\t%s\t%d\t%s\t%s\n" % (q["name"], q["birth"], q["sex"], q["lgcode"],
                                           q["address"])


def case_approval_as_documented():
    """What approve signs is what docs/protocol.md §13.2 says, checked apart from libjuki: the
    part hashes recomputed here, the signature verified with openssl(1); and every part of the
    batch carries that approval under its batch id."""
    import base64
    import hashlib
    s = Synth(seed=67)
    with fake_network() as net:
        answer = lambda conn, doc: [ack_of(doc, body={"status": "accepted", "result": {
            "answers": [{"found": False} for _ in doc["body"]["queries"]], "keep_days": 7}})]
        with FakeServer(net, PREF, answer) as fake:
            boss = Card(net, BOSS)
            body = Body(net, Card(net, STAFF), keep="30d")
            people = [s.person("131016") for _ in range(250)]
            qf = queries_file(net, "q.jsonl", people, by_four=set(range(0, 250, 7)))
            # With --json the same document: the file of either is one provide batch reads.
            with open(approve(net, boss, qf, "--part-size", 100, json_out=True)) as f:
                with_json = json.load(f)
            path = approve(net, boss, qf, "--part-size", 100)
            with open(path) as f:
                af = json.load(f)
            assert sorted(with_json) == sorted(af) and with_json["batch"] != af["batch"], (
                with_json, af)
            assert (af["body"], af["count"], af["part_size"], af["parts"]) == (
                "urn:juki:" + BODY, 250, 100, 3), af
            with open(qf, encoding="utf-8") as f:
                queries = [json.loads(line) for line in f]
            parts = [hashlib.sha256("".join(query_line(q) for q in queries[i:i + 100])
                                    .encode()).hexdigest() for i in range(0, 250, 100)]
            a = af["approval"]
            assert a["parts"] == parts and a["responsible"] == BOSS, a
            text = "juki-provide-approval/1\n%s\n%s\n250\n%s" % (
                af["body"], af["batch"], "".join(h + "\n" for h in parts))
            files = {n: os.path.join(net.dir, n) for n in ("signed", "sig", "cert", "pub")}
            with open(files["signed"], "w", encoding="utf-8") as f:
                f.write(text)
            with open(files["sig"], "wb") as f:
                f.write(base64.b64decode(a["sig"]))
            with open(files["cert"], "w") as f:
                f.write(a["cert"])
            subprocess.run(["openssl", "x509", "-in", files["cert"], "-pubkey", "-noout",
                            "-out", files["pub"]], check=True)
            v = subprocess.run(["openssl", "dgst", "-sha256", "-verify", files["pub"],
                                "-signature", files["sig"], files["signed"]],
                               capture_output=True, text=True)
            assert v.returncode == 0 and "Verified OK" in v.stdout, v

            r = body.batch(qf, "--approval", path)
            assert r["batch"] == af["batch"] and r["parts"] == 3, r
            got = [d["body"] for _, d in fake.received]
            assert [b["batch"]["part"] for b in got] == [0, 1, 2]
            assert all(b["approval"] == a and b["batch"]["id"] == af["batch"] for b in got)
            # The server's period (7 days) is shorter than the body file's: it wins.
            header, _ = read_answers(r["file"])
            assert header["erase_by"] == r["erase_by"], header
            today = body.purge("--dry-run")["today"]
            assert r["erase_by"] == days_after(today, 7), (r, today)


if __name__ == "__main__":
    run_cases([case_bad_input, case_online_query_token, case_batch_parts_and_answers_file,
               case_bulk_needs_the_responsible_officer, case_purge_after_the_period,
               case_gateway_down_next_gateway, case_exec_body, case_national_server,
               case_wrong_server_refused,
               case_refused_part_leaves_nothing, case_approval_as_documented])
