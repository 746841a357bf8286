"""juki-ctl's command line, as a person mistypes it: no PIN rides in on it, none is echoed back,
an option is named whole and given once, and nothing crashes the program (exit 2, a usage error,
for all of it). No daemon is needed: every line here is refused before one would be asked.

tests/unit/test_ctl_args.c tries every command and option of the table the same way."""

import os
import subprocess
import tempfile

from jukitest import CTL, CTL_USAGE, SANITIZER_MARKERS, run_cases

SECRET = "86420"  # digits: an old getopt took "--pin 86420" for --pin-fd 86420
SOCK = "/nonexistent/juki.sock"


def ctl(*args):
    p = subprocess.run([CTL] + list(args), capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    assert not any(m in out for m in SANITIZER_MARKERS), out
    return p.returncode, out


def refused(*args, says=None):
    code, out = ctl(*args)
    assert code == CTL_USAGE, (args, code, out)
    assert SECRET not in out, (args, out)
    if says is not None:
        assert says in out, (args, says, out)
    return out


def case_no_abbreviation_takes_a_pin():
    """--pin is no option (getopt took it for --pin-fd), and what follows it is not shown."""
    refused("-s", SOCK, "--pin", SECRET, "status", says="unknown option --pin")
    refused("-s", SOCK, "--pin=" + SECRET, "status", says="unknown option --pin")
    refused("-s", SOCK, "--card-pin", SECRET, "status", says="unknown option --card-pin")
    refused("-s", SOCK, "operator", "set-pin", "tanaka", "--new-pin", SECRET + "x",
            says="unknown option --new-pin")
    refused("-s", SOCK, "operator", "add", "tanaka", "--roles", "clerk", "--datasets",
            "honnin", "--new-pin-fd", SECRET + "x", says="--new-pin-fd: a file descriptor")


def case_card_uri_with_a_pin_refused():
    """A card PIN in the --card URI (pin-value, pin-source) is refused like any PIN in argv."""
    with tempfile.TemporaryDirectory() as d:
        pinfile = os.path.join(d, "pin")
        with open(pinfile, "w") as f:
            f.write(SECRET)
        term = ["--connect", "127.0.0.1:9", "--cert", os.path.join(d, "op.crt"), "--ca",
                os.path.join(d, "ca.crt")]
        for uri in ("pkcs11:token=card;object=op;type=private;pin-value=" + SECRET,
                    "pkcs11:token=card;object=op?pin-value=" + SECRET,
                    "pkcs11:token=card;object=op?pin-source=file:" + pinfile,
                    "PKCS11:token=card?module-path=/x.so&pin-value=" + SECRET):
            out = refused(*term, "--card", uri, "login", says="--card")
            assert "PIN" in out and "card-pin-fd" in out, out


def case_unknown_option_no_crash():
    """operator add|list|set-pin|set-roles crashed on an unknown option."""
    for cmd in (["operator", "add", "tanaka", "--roles", "clerk", "--datasets", "honnin"],
                ["operator", "list"], ["operator", "set-pin", "tanaka"],
                ["operator", "set-roles", "tanaka", "--roles", "clerk", "--datasets", "honnin"],
                ["approve", "pending", "1"], ["purge"], ["pki", "crl", "/nonexistent"]):
        refused("-s", SOCK, *cmd, "--bogus", SECRET, says="unknown option --bogus")


def case_repeated_option_refused():
    """An option given twice is a usage error: which of the two was meant cannot be told."""
    refused("-s", SOCK, "alerts", "--max", "1", "--max", "2", says="--max: given twice")
    refused("-s", SOCK, "approvals", "--state", SECRET, "--state", SECRET,
            says="--state: given twice")
    refused("-s", SOCK, "-s", SOCK, "status", says="--socket: given twice")
    refused("-s", SOCK, "purge", "-n", "--dry-run", says="--dry-run: given twice")


def case_values_checked_alike():
    """--sex and --limit mean the same in every command that has them."""
    refused("-s", SOCK, "lookup", "--purpose", "tax", "--sex", "3", "--name", "x", "--birth",
            "2000-01-01", "--address", "y", says="--sex: 1 (male) or 2 (female)")
    for cmd in (["approvals"], ["movein", "list"], ["audit", "show"]):
        for bad in ("0", "-1", "", "1x", SECRET + "x"):
            refused("-s", SOCK, *cmd, "--limit", bad, says="--limit: a number")


if __name__ == "__main__":
    run_cases([case_no_abbreviation_takes_a_pin, case_card_uri_with_a_pin_refused,
               case_unknown_option_no_crash, case_repeated_option_refused,
               case_values_checked_alike])
