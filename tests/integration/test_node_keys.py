"""Node keys on tokens (第4-5(1)): a daemon's TLS key, which also signs its history
checkpoints, on a PKCS#11 token (SoftHSM2 here, an HSM in production) through the same
libp11 engine as the operators' cards.

tls.key is a pkcs11: URI and tls.pin_file a 0600 file of the daemon's user; the key is used
on the token and never read: no key file on disk, no key bytes in the daemon's memory."""

import json
import os
import shutil
import signal
import subprocess

from cryptography.hazmat.primitives import serialization

from jukitest import (CTL_USAGE, CTL_WRONG_PIN, TOKEN_PIN, Network, add_residents, fname,
                      run_ctl, run_cases, secret_fd, urn, wait_until)
from jukitest.peer import Peer
from jukitest.synth import Synth

GW, A, PREF = "fwgate:east", "cs:131016", "pref:13"
OTHER = "cs:271004"  # a test peer with a key file: another municipality, over muni


def run(binary, *args, env=None):
    return subprocess.run([binary] + list(args), capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **env) if env else None)


def key_needles(pem):
    """What of a private key may sit in memory: its DER (PKCS#8 and SEC1), the start of its
    PEM, and the raw private scalar in either byte order (a BIGNUM's words are little-endian
    on this machine)."""
    key = serialization.load_pem_private_key(pem.encode(), None)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    body = "".join(pem.strip().splitlines()[1:-1])
    return {
        "der-pkcs8": key.private_bytes(serialization.Encoding.DER,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()),
        "der-sec1": key.private_bytes(serialization.Encoding.DER,
                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()),
        "pem": body[:48].encode(),
        "scalar": scalar,
        "scalar-le": scalar[::-1],
    }


# A mapping larger than this is an address-space reservation (AddressSanitizer's shadow
# memory and allocator space under JUKI_SANITIZE), not memory the daemon wrote a key into.
MAPPING_MAX = 1 << 30
CHUNK = 1 << 22


def found_in_memory(pid, needles):
    """The needles found anywhere in the readable memory of process pid (/proc/pid/mem, as
    a core dump would hold it), read a chunk at a time with an overlap, so that nothing
    across a chunk's edge is missed."""
    found = set()
    overlap = max(len(b) for b in needles.values()) - 1
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if (not parts[1].startswith("r") or hi - lo > MAPPING_MAX or
                    (len(parts) > 5 and parts[5].startswith("[v"))):
                continue
            for start in range(lo, hi, CHUNK):
                try:
                    mem.seek(start)
                    data = mem.read(min(CHUNK + overlap, hi - start))
                except OSError:
                    break
                found.update(name for name, b in needles.items() if b in data)
    return found


def auditor(d):
    return d.operators.get("kansa") or d.add_operator("kansa", ["auditor"])


def case_keys_on_tokens_pass_and_sign():
    """A CS (its key imported to a token), a prefecture (its key made on the token by
    `juki-ctl pki issue --token`) and the gateway (key on a token) pass identity information
    through the gateway's tunnels, and sign history checkpoints that audit verify accepts."""
    s = Synth(seed=401)

    def configure(net):
        net[A].key_on_token()
        net[PREF].key_on_token(generate=True)
        net[GW].key_on_token()
        for n in (A, PREF):
            net[n].extra["audit"] = "{checkpoint_every: 2}"

    with Network([GW, A, PREF], configure=configure) as net:
        # No key file of any of them: the PKI's were deleted, pki issue --token wrote none.
        for n in (GW, A, PREF):
            assert not os.path.exists(net.cert(n)[1]), n
        people = [s.person("131016") for _ in range(5)]
        add_residents(net[A], people)
        wait_until("5 records at pref:13",
                   lambda: net[PREF].status()["records"]["current"] == 5)
        rec = net[PREF].ctl("person", "show", people[2]["code"])["records"][0]
        assert rec["sender"] == urn(A) and rec["person"]["name"] == people[2]["name"], rec
        for n in (A, PREF):
            report = auditor(net[n]).ctl("audit", "verify")
            assert report["ok"] and report["checkpoints"] >= 1, (n, report)
            assert report["first_broken"] is None, report
        # The certificate pki issue --token made certifies the token's key: the same
        # checkpoints verify offline against it.
        net[PREF].stop()
        out = run_ctl("audit", "verify", "--file", net[PREF].store + ".audit", "--cert",
                      net.cert(PREF)[0])
        assert out["ok"] and out["checkpoints"] >= 1, out
        net[PREF].start()


def case_token_missing_or_locked_refused_at_start():
    """The daemon refuses to start, saying why: the token is not there, its PIN is wrong,
    the PIN file is open to others or not given, the URI carries a PIN, a PIN file beside
    a key file.  The same from the gateway."""
    def configure(net):
        net[A].key_on_token()
        net[GW].key_on_token()

    with Network([GW, A], configure=configure) as net:
        for n in (A, GW):
            d = net[n]
            d.stop()
            tok = d.token
            config = open(d.config).read()

            def refused(expect, text=None):
                with open(d.config, "w") as f:
                    f.write(text if text is not None else config)
                p = run(d.binary, "-f", d.config, env=d.env)
                assert p.returncode == 1 and expect in p.stderr, (n, expect, p.stderr)
                with open(d.config, "w") as f:
                    f.write(config)

            # The token removed.
            shutil.move(os.path.join(tok["dir"], "tokens"), os.path.join(tok["dir"], "away"))
            refused("no token")
            shutil.move(os.path.join(tok["dir"], "away"), os.path.join(tok["dir"], "tokens"))
            # The wrong PIN.
            with open(tok["pin_file"], "w") as f:
                f.write("9999-wrong\n")
            refused("the token refused the token PIN")
            with open(tok["pin_file"], "w") as f:
                f.write(TOKEN_PIN + "\n")
            # The PIN file readable by others; no PIN file at all.
            os.chmod(tok["pin_file"], 0o644)
            refused("must not be accessible by group or others")
            os.chmod(tok["pin_file"], 0o600)
            refused("its PIN file (tls.pin_file) is not given",
                    config.replace("  pin_file: %s\n" % tok["pin_file"], ""))
            # A PIN in the URI (the configuration is no place for it).
            refused("carries a PIN", config.replace(
                ";type=private'", ";type=private?pin-value=%s'" % TOKEN_PIN))
            # A PIN file with a key file.
            refused("goes with a key on a token", config.replace(
                "'%s'" % tok["uri"], net.cert(n)[1]))
            # -n (check mode) says the same without starting.
            shutil.move(os.path.join(tok["dir"], "tokens"), os.path.join(tok["dir"], "away"))
            p = run(d.binary, "-n", "-f", d.config, env=d.env)
            assert p.returncode == 1 and "no token" in p.stderr, p.stderr
            shutil.move(os.path.join(tok["dir"], "away"), os.path.join(tok["dir"], "tokens"))
            d.start()


def case_token_gone_while_running():
    """The token goes away under a running CS: its status says so and raises the alert
    key-unavailable at once (the minute's check does the same unasked); handshakes that need
    the key fail (operator port, node port through the gateway), each with the alert; the
    daemon keeps running and answers on its local socket; a reload is refused with the
    reason.  The same status check at the gateway."""
    def configure(net):
        net[A].key_on_token()
        net[GW].key_on_token()

    with Network([GW, A, PREF], extra_identities=[OTHER], configure=configure) as net:
        d = net[A]
        op = auditor(d)
        op.ctl("alerts")  # the operator port works with the key on the token
        assert d.status()["key"] == {"on_token": True, "usable": True}
        assert net[PREF].status()["key"] == {"on_token": False, "usable": True}
        tok = d.token
        shutil.move(os.path.join(tok["dir"], "tokens"), os.path.join(tok["dir"], "away"))
        assert d.status()["key"] == {"on_token": True, "usable": False}
        assert d.alert_counts().get("key-unavailable") == 1
        assert d.status()["key"]["usable"] is False
        assert d.alert_counts().get("key-unavailable") == 1  # once per outage, not per look
        # The gateway's token, likewise.
        gtok = net[GW].token
        shutil.move(os.path.join(gtok["dir"], "tokens"), os.path.join(gtok["dir"], "away"))
        assert net[GW].status()["key"] == {"on_token": True, "usable": False}
        assert net[GW].alert_counts().get("key-unavailable") == 1
        shutil.move(os.path.join(gtok["dir"], "away"), os.path.join(gtok["dir"], "tokens"))
        net[GW].stop()  # back again: a restart picks the token up
        net[GW].start()
        assert net[GW].status()["key"] == {"on_token": True, "usable": True}
        code, out, err = op.ctl("alerts", check=False)
        assert code == 3 and "handshake" in err, (code, err)
        wait_until("key-unavailable at the operator port", lambda: any(
            r["code"] == "key-unavailable" and "operator port" in r["detail"]
            for r in d.alerts()["recent"]))
        # A peer through the gateway: the gateway's session to the node port needs A's key.
        cert, key = net.cert(OTHER)
        with Peer(net[GW].address, cert, key, net.ca()) as p:
            try:
                answer = p.connect(urn(A), "muni")
            except Exception as e:  # the inner handshake fails: A cannot sign
                answer = "failed: %s" % e
        assert answer != "OK" or p.inner is None, answer
        wait_until("key-unavailable at the node port", lambda: any(
            r["code"] == "key-unavailable" and "node port" in r["detail"]
            for r in d.alerts()["recent"]))
        assert d.running() and d.status()["ready"]
        # No personal data, and nothing of the PIN, in the alerts.
        assert TOKEN_PIN not in json.dumps(d.alerts())
        before = d.log_text().count("reload refused")
        d.signal(signal.SIGHUP)
        wait_until("reload refused", lambda: d.log_text().count("reload refused") > before)
        assert "the token does not sign with it" in d.log_text()
        assert d.running()
        shutil.move(os.path.join(tok["dir"], "away"), os.path.join(tok["dir"], "tokens"))
        # Back again: a restart picks the token up.
        d.stop()
        d.start()
        op.ctl("alerts")


def case_no_key_bytes_in_memory():
    """The memory of a daemon whose key is on a token holds no byte of that key (DER, PEM,
    the private scalar), after handshakes and checkpoints; the same search over a daemon with
    a key file finds its key (the search can fail)."""
    s = Synth(seed=402)

    def configure(net):
        net[A].key_on_token()
        net[A].extra["audit"] = "{checkpoint_every: 1}"

    with Network([GW, A, PREF], configure=configure) as net:
        add_residents(net[A], [s.person("131016") for _ in range(2)])
        wait_until("at pref:13", lambda: net[PREF].status()["records"]["current"] == 2)
        auditor(net[PREF]).ctl("alerts")
        assert auditor(net[A]).ctl("audit", "verify")["checkpoints"] >= 1
        on_token = found_in_memory(net[A].proc.pid, key_needles(net[A].token["key"]))
        assert on_token == set(), on_token
        with open(net.cert(PREF)[1]) as f:
            in_file = found_in_memory(net[PREF].proc.pid, key_needles(f.read()))
        assert in_file, "the search did not find the key of the key-file daemon"


def case_pki_issue_on_token_refusals():
    """juki-ctl pki issue --token: a wrong token PIN (exit 4), a label already taken on
    the token, a URI with a PIN in it (usage), --token with --encrypt (usage)."""
    with Network([GW]) as net:
        d = net[GW]
        tdir = os.path.join(net.dir, "spare.token")
        fixture = os.path.join(os.path.dirname(__file__), "..", "fixtures", "softhsm-card.sh")
        out = subprocess.run([fixture, tdir, "spare", TOKEN_PIN, "-"], check=True,
                             capture_output=True, text=True).stdout
        env = dict(line.split("=", 1) for line in out.split())
        uri = "pkcs11:token=spare;object=node-key;type=private"
        who = "urn:juki:cs:132012"

        def issue(*extra, pin=TOKEN_PIN, u=uri):
            fd = secret_fd(pin)
            return run_ctl("pki", "issue", "--token", u, "--pin-fd", fd, *extra, net.pki,
                           who, fds=(fd,), env=env, check=False)

        code, _, err = issue(pin="0000-wrong")
        assert code == CTL_WRONG_PIN and "refused the token PIN" in err, (code, err)
        code, out, err = issue()
        assert code == 0 and json.loads(out)["token"] == uri, (code, err)
        assert os.path.exists(os.path.join(net.pki, fname(who) + ".crt"))
        assert not os.path.exists(os.path.join(net.pki, fname(who) + ".key"))
        run_ctl("pki", "revoke", net.pki, who)
        code, _, err = issue()
        assert code == 1 and "already holds a private key labelled node-key" in err, err
        code, _, err = issue(u=uri + "?pin-value=" + TOKEN_PIN)
        assert code == CTL_USAGE, (code, err)
        code, _, err = issue("--encrypt")
        assert code == CTL_USAGE and "not both" in err, (code, err)
        assert d.running()


if __name__ == "__main__":
    run_cases([case_keys_on_tokens_pass_and_sign, case_token_missing_or_locked_refused_at_start,
               case_token_gone_while_running, case_no_key_bytes_in_memory,
               case_pki_issue_on_token_refusals])
