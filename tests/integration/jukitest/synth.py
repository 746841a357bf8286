"""Synthetic identity data: generated names and addresses, valid check digits.

Nothing here describes a real person: surnames and given names are drawn
independently from short lists of common words, birth dates and codes at
random, addresses from the open list of municipalities (shared/data,
copied to tests/data) with made-up block numbers.
"""

import csv
import os
import random
import time

SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
            "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水",
            "髙橋", "齋藤", "渡邊", "𠮷田"]  # also names outside everyday kanji sets
GIVEN = ["花子", "太郎", "陽菜", "蓮", "結衣", "湊", "葵", "大翔", "凛", "悠真", "美咲",
         "翔太", "さくら", "健一", "由美", "直樹", "恵子", "誠", "彩", "翼"]
TOWNS = ["本町", "中央", "栄町", "緑町", "旭町", "東町", "西町", "南町", "北町", "朝日町",
         "若葉", "桜木町", "幸町", "寿町", "宮前"]

_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data")


def jumin_check_digit(first10):
    weights = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2]
    r = sum(int(d) * w for d, w in zip(first10, weights)) % 11
    return "0" if r <= 1 else str(11 - r)


def lgcode_check_digit(first5):
    s = sum(int(d) * w for d, w in zip(first5, [6, 5, 4, 3, 2]))
    return str((11 - s % 11) % 10)


def jumin_code(rng):
    first = "".join(rng.choice("0123456789") for _ in range(10))
    return first + jumin_check_digit(first)


def wrong_check_digit(code):
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def municipalities():
    with open(os.path.join(_DATA, "localgov.csv"), encoding="utf-8") as f:
        return {r["lgcode"]: r for r in csv.DictReader(f) if r["kind"] != "ward"}


class Synth:
    def __init__(self, seed=1):
        self.rng = random.Random(seed)
        self.munis = municipalities()
        self.used = set()

    def code(self):
        while True:
            c = jumin_code(self.rng)
            if c not in self.used:
                self.used.add(c)
                return c

    def address(self, lgcode):
        m = self.munis[lgcode]
        r = self.rng
        return "%s%s%s%d丁目%d番%d号" % (m["pref"], m["name"].replace(" ", ""),
                                        r.choice(TOWNS), r.randint(1, 9), r.randint(1, 30),
                                        r.randint(1, 20))

    def person(self, lgcode):
        r = self.rng
        y, mo = r.randint(1930, 2024), r.randint(1, 12)
        d = r.randint(1, 28)
        return {
            "code": self.code(),
            "name": "%s %s" % (r.choice(SURNAMES), r.choice(GIVEN)),
            "birth": "%04d-%02d-%02d" % (y, mo, d),
            "sex": r.choice([1, 2]),
            "address": self.address(lgcode),
            "lgcode": lgcode,
        }

    def moved(self, person, new_lgcode, date=None):
        """The move-in record a clerk at new_lgcode enters for person (today in Japan)."""
        if date is None:
            date = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 9 * 3600))
        p = dict(person)
        p["address"] = self.address(new_lgcode)
        p["lgcode"] = new_lgcode
        return {"person": p, "from": person["lgcode"], "date": date}


IMPORT_COLUMNS = ["code", "reason", "reason_date", "name", "kana", "birth", "sex", "address"]


def import_csv(rows):
    """rows of dicts (IMPORT_COLUMNS, plus version/old_code) as a CSV import file."""
    import csv as _csv
    import io
    cols = list(IMPORT_COLUMNS)
    for extra in ("version", "old_code"):
        if any(extra in r for r in rows):
            cols.append(extra)
    out = io.StringIO()
    w = _csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    return out.getvalue()


def change_row(person, reason, date=None, **extra):
    """An import row for person: a change of reason dated date (today in Japan)."""
    if date is None:
        date = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 9 * 3600))
    row = {"code": person["code"], "reason": reason, "reason_date": date,
           "name": person["name"], "birth": person["birth"], "sex": person["sex"],
           "address": person["address"]}
    row.update(extra)
    return row
