"""scripts/check-compliance.sh, the check that docs/compliance.md names only what exists.

A page of rows that each name something stale (a unit test file, a test function, an
integration case, a file, a function of the code) is refused with each of them named; the
same page with real names passes. Runs the script as scripts/test.sh does.
"""

import os
import subprocess
import tempfile

from jukitest import run_cases

SOURCE = os.environ.get("JUKI_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(SOURCE, "scripts", "check-compliance.sh")

HEAD = "| clause | requirement | status | code | tests |\n|---|---|---|---|---|\n"
GOOD = [
    "| 1 | a | met | `base/dir.c` `juki_open_regular()` | `test_store.c` `test_pragmas` |",
    "| 2 | b | met | `conf/csd.yaml`, `secure_delete` | `test_load.py`"
    " `case_load_at_pref_and_jlis_reconcile` |",
]
# Put together here: the name itself must not occur in the tree, this file included.
GONE = "juki_no_such" + "_function"
STALE = {
    "| 3 | c | met | x | `test_no_such_module.c` |": "test_no_such_module.c: no such unit test",
    "| 4 | d | met | x | `test_store.c` `test_no_such_function` |":
        "no function test_no_such_function",
    "| 5 | e | met | x | `test_load.py` `case_no_such_case` |": "no def case_no_such_case",
    "| 6 | f | met | `conf/no-such-file.yaml` | x |": "conf/no-such-file.yaml: no such file",
    "| 7 | g | met | `tls.c` `%s()` | x |" % GONE:
        GONE + "(): named nowhere in the code, tests or conf",
}


def check(rows):
    with tempfile.NamedTemporaryFile("w", suffix=".md", encoding="utf-8", delete=False) as f:
        f.write(HEAD + "\n".join(rows) + "\n")
    try:
        return subprocess.run([SCRIPT, f.name], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)


def case_real_names_pass():
    r = check(GOOD)
    assert r.returncode == 0, r.stderr
    assert "all found" in r.stdout, r.stdout


def case_each_stale_name_refused():
    r = check(GOOD + list(STALE))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    errors = r.stderr.strip().split("\n")
    assert len(errors) == len(STALE), errors
    for want in STALE.values():
        assert any(want in e for e in errors), (want, errors)


def case_the_repository_page_passes():
    r = subprocess.run([SCRIPT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


if __name__ == "__main__":
    run_cases([case_real_names_pass, case_each_stale_name_refused,
               case_the_repository_page_passes])
