#!/bin/sh
# Check that every test docs/compliance.md names exists and runs, so that a
# renamed or removed test cannot leave a row that claims what nothing proves.
#
#   scripts/check-compliance.sh            check docs/compliance.md
#   scripts/check-compliance.sh FILE.md    check another page the same way
#
# In each table row, the names in backticks are read left to right:
#   `test_X.c`  must be tests/unit/test_X.c (CMake registers every such file);
#   `test_X.py` must be tests/integration/test_X.py (likewise);
#   `test_Y`    after a `test_X.c`: a function of that file, registered in
#               its cmocka test list (cmocka_unit_test*(test_Y ...));
#   `case_Y`    after a `test_X.py`: a `def case_Y` of that file, listed in
#               its run_cases([...]);
#   a path with a slash (`conf/cron.d/juki`, `tests/fixtures/...`) must exist;
#   a name with an underscore (`juki_open_regular`, `held_by()`, `secure_delete`)
#               must occur as a word in a file of the tree outside docs/ (code,
#               tests, conf, scripts), so that a row cannot name a function,
#               key or table that was renamed or removed.
# Exits 1 and names each stale reference, 0 when there is none.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
page=${1:-$top/docs/compliance.md}

exec python3 - "$top" "$page" <<'EOF'
import os
import re
import sys

top, page = sys.argv[1], sys.argv[2]
unit_dir = os.path.join(top, "tests", "unit")
it_dir = os.path.join(top, "tests", "integration")
cache = {}


def read(path):
    if path not in cache:
        with open(path, encoding="utf-8") as f:
            cache[path] = f.read()
    return cache[path]


def cmocka_registered(text, name):
    return re.search(r"cmocka_unit_test\w*\(\s*" + re.escape(name) + r"\b", text) is not None


def defined_c(text, name):
    return re.search(r"^" + re.escape(name) + r"\(", text, re.M) is not None


def run_cases_names(text):
    names = set()
    for m in re.finditer(r"run_cases\(\s*\[(.*?)\]", text, re.S):
        names.update(re.findall(r"\b(case_\w+)\b", m.group(1)))
    return names


def tree_words():
    """Every word of the tree's files outside docs/, the build trees and Markdown."""
    words = set()
    for root, dirs, files in os.walk(top):
        rel = os.path.relpath(root, top)
        dirs[:] = [d for d in dirs if not d.startswith(".") and not d.startswith("build")
                   and not (rel == "." and d == "docs")]
        for name in files:
            if name.endswith(".md"):
                continue
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                words.update(re.findall(r"\w+", f.read()))
    return words


words = None
errors = []
checked = 0
with open(page, encoding="utf-8") as f:
    lines = f.read().split("\n")

for lineno, line in enumerate(lines, 1):
    current = None  # the test file the names that follow belong to
    for token in re.findall(r"`([^`]+)`", line):
        token = token.strip()
        where = "%s:%d" % (os.path.relpath(page, top), lineno)
        if "<" in token or "*" in token or " " in token:
            continue
        m = re.fullmatch(r"(?:tests/unit/)?(test_\w+\.c)", token)
        if m:
            current = os.path.join(unit_dir, m.group(1))
            checked += 1
            if not os.path.isfile(current):
                errors.append("%s: %s: no such unit test" % (where, token))
                current = None
            continue
        m = re.fullmatch(r"(?:tests/integration/)?(test_\w+\.py)", token)
        if m:
            current = os.path.join(it_dir, m.group(1))
            checked += 1
            if not os.path.isfile(current):
                errors.append("%s: %s: no such integration test" % (where, token))
                current = None
            continue
        if re.fullmatch(r"test_\w+", token):
            checked += 1
            if current is None or not current.endswith(".c"):
                if line.startswith("|"):
                    errors.append("%s: %s: no unit test file named before it" % (where, token))
                continue
            text = read(current)
            rel = os.path.relpath(current, top)
            if not defined_c(text, token):
                errors.append("%s: %s: no function %s" % (where, rel, token))
            elif not cmocka_registered(text, token):
                errors.append("%s: %s: %s is not in its cmocka test list" % (where, rel, token))
            continue
        if re.fullmatch(r"case_\w+", token):
            checked += 1
            if current is None or not current.endswith(".py"):
                errors.append("%s: %s: no integration test file named before it" % (where, token))
                continue
            text = read(current)
            rel = os.path.relpath(current, top)
            if not re.search(r"^def " + re.escape(token) + r"\(", text, re.M):
                errors.append("%s: %s: no def %s" % (where, rel, token))
            elif token not in run_cases_names(text):
                errors.append("%s: %s: %s is not in its run_cases()" % (where, rel, token))
            continue
        m = re.fullmatch(r"([A-Za-z_]\w*_\w*)(?:\(\))?", token)
        if m:
            checked += 1
            if words is None:
                words = tree_words()
            if m.group(1) not in words:
                errors.append("%s: %s: named nowhere in the code, tests or conf" % (where, token))
            continue
        if "/" in token and re.fullmatch(r"[\w.@/-]+", token) and not token.startswith("/"):
            first = token.split("/")[0]
            if os.path.isdir(os.path.join(top, first)):
                checked += 1
                if not os.path.exists(os.path.join(top, token)):
                    errors.append("%s: %s: no such file" % (where, token))

for e in errors:
    print("check-compliance: " + e, file=sys.stderr)
if errors:
    sys.exit(1)
print("check-compliance: %s: %d references, all found" % (os.path.relpath(page, top), checked))
EOF
