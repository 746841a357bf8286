#!/bin/bash
# The juki demo network and its scenario, on loopback:
#
#   gateway fwgate:east
#   CS 千代田区 (cs:131016) -> 東京都 (pref:13) -> national server (jlis:0)
#   CS 大阪市   (cs:271004) -> 大阪府 (pref:27) -> national server
#
# 千代田区's resident record system hands over a file of identity changes: the CS
# validates it whole, records it and sends it on to 東京都 and the nation; update
# counts (更新件数リスト) confirm every hop.  Then a person moves to 大阪市: the clerk
# in 大阪市 records the move-in, 大阪市 sends 転入通知 to 千代田区 through the gateway,
# 千代田区 ends the person's record and sends 転出確定通知 to 東京都, and the national
# server holds 大阪市's record as the current one.  Clerks work with a card (an
# encrypted key file, or a SoftHSM2 token for 千代田区's supervisor) and a PIN on each
# daemon's operator port: a lookup, a locked and unlocked operator, a correction
# approved by the supervisor, and the operation history verified.
#
# Then provision (第6-8): the national server's 事務 list (an example) and an agreement
# with 日本年金機構 (urn:juki:agency:nenkin), added by one supervisor and approved by
# another; the agency's staff member (a staff card in an encrypted key file) asks the
# national server, through the gateway, for a resident by 住民票コード and by the four
# items, then sends a batch over the agreement's bulk threshold that its 責任者 approves
# (their card on a SoftHSM2 token) and gets an answers file with its erase-by date; the
# national server's provision notices reach 東京都, whose 責任者 answers a disclosure
# request as text and as a PDF; and 千代田区 asks the agency for a management report,
# which passes 東京都 and is held at the national server for the agency, whose staff member
# fetches it and answers it (juki-ctl provide reports|reply) until 千代田区 holds the answer.
#
# Then 異動等情報 to the certification authority (第6-8(6)): the national server's agreement
# with the authority (urn:juki:ca:jpki), a resident of 千代田区 holding a signing
# certificate, and a death recorded at 千代田区 that reaches the authority through 東京都,
# the national server and the link server juki-authlinkd (authlink:0): the authority (the
# reference one of the tests, tests/integration/jukitest/authority.py: an OpenSSL CA and
# `openssl ocsp`) revokes the certificate; OCSP answers good before, revoked after.
# Then a wide-area copy (第6-4): a resident of 千代田区 asks at 大阪市's counter; 大阪市's CS
# sends the request to 千代田区's, whose resident record system (played here by a few lines
# of Python on its copy spool) answers; 大阪市's clerk reviews it and prints the certified
# copy on a serial-numbered form to the counter's printer, a queue of a private CUPS
# scheduler that files each job as a PDF in the demo's folder.
#
# Last, a card holder's special move (第6-5) from 千代田区 to 大阪市: the 付記転出 at 千代田区
# with the card checked in its register, the 最初の転入届 at 大阪市, the 転出証明書情報
# reviewed on screen and the card collected, marked so in 千代田区's register.
#
#   scripts/demo.sh            build, run the scenario, stop everything
#   scripts/demo.sh --keep     leave the network running (stop it with --stop)
#   scripts/demo.sh --stop     stop a network left running
#   JUKI_DEMO_DIR=DIR          where the network lives (default /tmp/juki-demo)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir=${JUKI_DEMO_DIR:-/tmp/juki-demo}
keep=0

case "${1:-}" in
--keep) keep=1 ;;
--stop)
	for p in "$dir"/*.pid; do
		[ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
		rm -f "$p"
	done
	echo "demo network in $dir stopped"
	exit 0
	;;
"") ;;
*)
	echo "usage: $0 [--keep | --stop]" >&2
	exit 2
	;;
esac

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
# Ask, again and again, until the answer is yes: never a fixed sleep.
wait_for() { # what command...
	local what=$1 end=$((SECONDS + 60))
	shift
	for _ in $(seq 600); do
		"$@" && return 0
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.05
	done
	say "timed out waiting for $what"
	return 1
}

step "Installing what is needed and building"
"$top/scripts/deps.sh"
cmake -S "$top" -B "$top/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$top/build" >/dev/null
bin=$top/build
ctl=$bin/ctl/juki-ctl

if ls "$dir"/*.pid >/dev/null 2>&1; then
	say "a demo network seems to be running in $dir: stop it with $0 --stop"
	exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"
chmod 700 "$dir" # keys, and (synthetic) personal data: answers files, a disclosure PDF
cd "$dir"

declare -A port
for n in gw cs131016 cs271004 pref13 pref27 jlis authlink ca ocsp op-cs-131016 op-cs-271004 op-pref-13 op-pref-27 op-jlis-0 cups web; do
	port[$n]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
done

step "A development PKI for the topology (juki-ctl pki init)"
cat >topology.yaml <<EOF
ca: juki demo CA
nodes:
  - urn:juki:fwgate:east
  - urn:juki:cs:131016
  - urn:juki:cs:271004
  - urn:juki:pref:13
  - urn:juki:pref:27
  - urn:juki:jlis:0
  - urn:juki:agency:nenkin    # 日本年金機構, a receiving body (docs/body.md)
  - urn:juki:authlink:0       # the link server to the certification authority
  - urn:juki:ca:jpki          # the certification authority (played by the tests' one)
EOF
"$ctl" pki init --out pki topology.yaml >/dev/null
ls -l pki | sed 's/^/  /'
cp "$top/conf/policy.yaml" policy.yaml

step "Operators' cards: a certificate each, its key encrypted (or on a token)"
# Synthetic secrets for the demo; juki-ctl reads them from file descriptors, never argv.
PIN=246810
CARD_PIN=demo-card-1357
servers="cs-131016 cs-271004 pref-13 pref-27 jlis-0"
urn_of() { echo "urn:juki:$(echo "$1" | sed 's/-/:/')"; }
terminal() { # file node card-line
	cat >"$1" <<EOF
connect: 127.0.0.1:${port[op-$2]}
cert: pki/$3.crt
$4
ca: pki/ca.crt
crl: pki/crl.pem
EOF
}
for n in $servers; do
	"$ctl" pki issue --encrypt --pin-fd 3 pki "urn:juki:op:${n/-/:}:clerk" >/dev/null 3<<<"$CARD_PIN"
	terminal "term-$n-clerk.yaml" "$n" "op-$n-clerk" "key: pki/op-$n-clerk.key"
done
# 千代田区's supervisor has a real PKCS#11 token (SoftHSM2) for a card.
"$ctl" pki issue --encrypt --pin-fd 3 pki urn:juki:op:cs:131016:sato >/dev/null 3<<<"$CARD_PIN"
openssl pkey -in pki/op-cs-131016-sato.key -passin "pass:$CARD_PIN" -out sato.plain.key
eval "$("$top/tests/fixtures/softhsm-card.sh" token card-sato "$CARD_PIN" sato.plain.key 2>/dev/null |
	sed -n 's/^SOFTHSM2_CONF=\(.*\)/export SOFTHSM2_CONF="\1"/p;s/^URI=\(.*\)/card_uri="\1"/p')"
rm -f sato.plain.key pki/op-cs-131016-sato.key
terminal term-cs-131016-sato.yaml cs-131016 op-cs-131016-sato "card: '$card_uri'"
say "  clerks' cards: pki/op-*-clerk.{crt,key} (key encrypted, PKCS#8)"
say "  supervisor's card: $card_uri (SoftHSM2 token)"
# As an operator at a terminal: the card's and the operator's PINs through descriptors.
op() { # terminal-name juki-ctl-args...
	local t=$1
	shift
	"$ctl" --terminal "term-$t.yaml" --pin-fd 3 --card-pin-fd 4 "$@" 3<<<"$PIN" 4<<<"$CARD_PIN"
}

step "Configurations"
cat >fwgate-east.yaml <<EOF
node: urn:juki:fwgate:east
tls: {cert: pki/fwgate-east.crt, key: pki/fwgate-east.key, ca: pki/ca.crt, crl: pki/crl.pem}
listen: ['127.0.0.1:${port[gw]}']
policy: policy.yaml
control: fwgate-east.sock
directory:
  - {node: urn:juki:cs:131016, address: '127.0.0.1:${port[cs131016]}'}
  - {node: urn:juki:cs:271004, address: '127.0.0.1:${port[cs271004]}'}
  - {node: urn:juki:pref:13, address: '127.0.0.1:${port[pref13]}'}
  - {node: urn:juki:pref:27, address: '127.0.0.1:${port[pref27]}'}
  - {node: urn:juki:jlis:0, address: '127.0.0.1:${port[jlis]}'}
  - {node: urn:juki:authlink:0, address: '127.0.0.1:${port[authlink]}'}
  - {node: urn:juki:ca:jpki, address: '127.0.0.1:${port[ca]}'}
EOF
node_config() { # name urn port
	cat >"$1.yaml" <<EOF
node: $2
tls: {cert: pki/$1.crt, key: pki/$1.key, ca: pki/ca.crt, crl: pki/crl.pem}
listen: ['127.0.0.1:$3']
gateways: ['127.0.0.1:${port[gw]}']
policy: policy.yaml
store: $1.db
control: $1.sock
log_level: notice
operator:
  listen: ['127.0.0.1:${port[op-$1]}']
monitor: {interval: 5s}
EOF
}
node_config cs-131016 urn:juki:cs:131016 "${port[cs131016]}"
node_config cs-271004 urn:juki:cs:271004 "${port[cs271004]}"
node_config pref-13 urn:juki:pref:13 "${port[pref13]}"
node_config pref-27 urn:juki:pref:27 "${port[pref27]}"
node_config jlis-0 urn:juki:jlis:0 "${port[jlis]}"
for cs in cs-131016 cs-271004; do
	printf 'import:\n  spool: %s.spool\n  scan_interval: 200ms\n' "$cs" >>"$cs.yaml"
done
# Wide-area copies (第6-4): each CS's copy spool; 大阪市 prints under its mayor's title.
printf 'copy:\n  spool: cs-131016.copy\n  scan_interval: 200ms\n' >>cs-131016.yaml
printf 'copy:\n  spool: cs-271004.copy\n  scan_interval: 200ms\n  mayor: "%s"\n' \
	"大阪市長　大阪　一郎" >>cs-271004.yaml
# The special move-out/in (第6-5): each CS's special-move spool.
for cs in cs-131016 cs-271004; do
	printf 'tokurei:\n  spool: %s.tokurei\n  scan_interval: 200ms\n' "$cs" >>"$cs.yaml"
done
# Provision (第6-8): the national server's 事務 list (an EXAMPLE, not the law's text); it
# sends its provision notices when the scenario says so (juki-ctl notices send).  The
# prefectures issue disclosure answers under their governor's title.  千代田区 asks its
# prefecture about its report requests every second rather than every ten minutes.
cp "$top/conf/jimu-example.csv" jimu.csv
printf 'provide:\n  jimu: jimu.csv\nnotice_interval: 0\n' >>jlis-0.yaml
printf 'issuer: 東京都知事\n' >>pref-13.yaml
printf 'issuer: 大阪府知事\n' >>pref-27.yaml
printf 'report_poll: 1s\n' >>cs-131016.yaml
# 異動等情報 (第6-8(6)): the national server sends them to its link server for the authority;
# the link server feeds the authority through the gateway.
printf 'ninsho:\n  authlink: urn:juki:authlink:0\n  ca: urn:juki:ca:jpki\n' >>jlis-0.yaml
# The board's web page (operations.md §29): for the national server's operators' browsers.
printf "boardweb:\n  listen: ['127.0.0.1:%s']\n" "${port[web]}" >>jlis-0.yaml
cat >authlink-0.yaml <<EOF
node: urn:juki:authlink:0
tls: {cert: pki/authlink-0.crt, key: pki/authlink-0.key, ca: pki/ca.crt, crl: pki/crl.pem}
listen: ['127.0.0.1:${port[authlink]}']
gateways: ['127.0.0.1:${port[gw]}']
policy: policy.yaml
store: authlink-0.db
control: authlink-0.sock
log_level: notice
delivery: {backoff_min: 100ms, backoff_max: 2s}
authlink:
  ca: urn:juki:ca:jpki
  sources: [urn:juki:jlis:0]
EOF
for f in *.yaml; do
	[ "$f" = topology.yaml ] || [ "$f" = policy.yaml ] || say "  $f"
done

start() { # name binary
	"$bin/$2" -f "$1.yaml" >"$1.log" 2>&1 &
	echo $! >"$1.pid"
}
stop_all() {
	for p in "$dir"/*.pid; do
		[ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
		rm -f "$p"
	done
}
if [ "$keep" -eq 0 ]; then
	trap stop_all EXIT
fi

step "Starting the gateway, two CSs, two prefectural servers, the national server, the link server"
start fwgate-east fwgate/juki-fwgated
start cs-131016 cs/juki-csd
start cs-271004 cs/juki-csd
start pref-13 prefserver/juki-prefd
start pref-27 prefserver/juki-prefd
start jlis-0 jlisserver/juki-jlisd
start authlink-0 authlink/juki-authlinkd
for n in fwgate-east cs-131016 cs-271004 pref-13 pref-27 jlis-0 authlink-0; do
	# Ready when the daemon answers on its control socket.
	wait_for "$n" "$ctl" -s "$n.sock" status >/dev/null 2>&1
	"$ctl" --json -s "$n.sock" status |
		python3 -c 'import json,sys; s=json.load(sys.stdin); print("  %-22s %-13s ready" % (s["node"], s["daemon"]))'
done

step "The administrator (root, on the local socket) enrols the operators"
datasets() { case $1 in cs-*) echo honnin,tennyu ;; pref-*) echo honnin,kakutei ;; *) echo honnin ;; esac; }
for n in $servers; do
	"$ctl" -s "$n.sock" operator add clerk --roles clerk --datasets "$(datasets "$n")" \
		--new-pin-fd 3 >/dev/null 3<<<"$PIN"
done
"$ctl" -s cs-131016.sock operator add sato --roles supervisor --datasets honnin,tennyu \
	--new-pin-fd 3 >/dev/null 3<<<"$PIN"
"$ctl" --json -s cs-131016.sock operator list | python3 -c '
import json, sys
for o in json.load(sys.stdin)["operators"]:
    print("  %-6s roles %-12s data sets %s" % (o["id"], ",".join(o["roles"]), ",".join(o["datasets"])))'
say "  a clerk logs in with card and PIN:"
op cs-131016-clerk login | sed 's/^/    /'

step "千代田区's resident record system hands over a day's changes (synthetic people)"
PYTHONPATH="$top/tests/integration" python3 - >changes.csv <<'PY'
import json, sys
from jukitest.synth import Synth, import_csv, change_row
s = Synth(seed=2026)
people = [s.person("131016") for _ in range(1000)]
json.dump(people[0], open("first.json", "w"), ensure_ascii=False)
json.dump(people[1], open("second.json", "w"), ensure_ascii=False)
# Eight more, whose identity information the national server provides to 日本年金機構 later.
json.dump(people[2:10], open("provided.json", "w"), ensure_ascii=False)
# One who holds a signing certificate of the certification authority (the last scene).
json.dump([people[10]], open("holder.json", "w"), ensure_ascii=False)
reasons = ["出生", "職権記載", "転入"]
sys.stdout.write(import_csv([change_row(p, reasons[i % 3]) for i, p in enumerate(people)]))
# Another file, with mistakes: a wrong check digit, a reason not on the list, a sex of 3.
more = [change_row(s.person("131016"), "出生") for _ in range(5)]
more[1]["code"] = more[1]["code"][:-1] + str((int(more[1]["code"][-1]) + 1) % 10)
more[2]["reason"] = "誕生"
more[3]["sex"] = 3
open("mistakes.csv", "w").write(import_csv(more))
PY
say "  $(wc -l <changes.csv) lines of CSV; the first rows:"
head -3 changes.csv | sed 's/^/    /'
say "  juki-ctl --terminal term-cs-131016-clerk.yaml import changes.csv   (a clerk's work)"
op cs-131016-clerk import changes.csv | sed 's/^/  /'

step "A file with mistakes is refused whole: nothing recorded, every error reported"
op cs-131016-clerk import mistakes.csv | sed 's/^/  /' || true

step "The records reach 東京都 and the nation; update counts agree at every hop"
arrived() { "$ctl" --json -s jlis-0.sock status | grep -q '"current": 1000'; }
wait_for "the records at the national server" arrived
for n in pref-13 jlis-0; do
	"$ctl" --json -s "$n.sock" status |
		python3 -c 'import json,sys; s=json.load(sys.stdin); print("  %-18s %d current records" % (s["node"], s["records"]["current"]))'
done
"$ctl" -s cs-131016.sock reconcile | sed 's/^/  /'
"$ctl" -s pref-13.sock reconcile | sed 's/^/  /'

step "A clerk in 大阪市 records the move-in of one of them (juki-ctl movein)"
IFS=$'\t' read -r code name birth sex < <(python3 -c '
import json; p = json.load(open("first.json"))
print(p["code"], p["name"], p["birth"], p["sex"], sep="\t")')
today=$(TZ=Asia/Tokyo date +%F)
say "  juki-ctl --terminal term-cs-271004-clerk.yaml movein --code $code --name '$name' \\"
say "      --birth $birth --sex $sex \\"
say "      --address '大阪府大阪市北区梅田1丁目1番1号' --from 131016 --date $today"
op cs-271004-clerk movein --code "$code" --name "$name" --birth "$birth" --sex "$sex" \
	--address "大阪府大阪市北区梅田1丁目1番1号" --from 131016 --date "$today"

confirmed() { op pref-13-clerk --json confirmations --code "$code" | grep -q '"total": 1'; }
wait_for "the 転出確定通知 at 東京都" confirmed

step "大阪市: the notice and 千代田区's answer"
op cs-271004-clerk movein list

step "千代田区: the person's record now ends with 転出, with the notice received"
op cs-131016-clerk --json resident show "$code" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("  status %s, version %d, reason %s of %s" % (r["status"], r["version"], r["reason"], r["reason_date"]))
for m in r["moveouts"]:
    print("  転入通知 %s from %s; 転出確定通知 %s" % (m["tennyu_id"], m["to"], m["confirm_status"]))'

step "東京都: the 転出確定通知 marks the person's last record from 千代田区"
op pref-13-clerk --json person show "$code" | python3 -c '
import json, sys
r = json.load(sys.stdin)
for x in r["records"]:
    print("  %-8s %s v%d %s %s" % ("current" if x["current"] else "history", x["lgcode"], x["version"], x["reason"], x["reason_date"]))
for k in r["tenshutsu_kakutei"]:
    print("  転出確定通知 %s: moved to %s on %s" % (k["notice_id"], k["new_lgcode"], k["date"]))'

step "The national server: 大阪市's 転入 is the current record, 千代田区's are history"
nation() { op jlis-0-clerk --json person show "$code" 2>/dev/null | grep -q '"転入"'; }
wait_for "大阪市's record at the national server" nation
op jlis-0-clerk --json person show "$code" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["records"]:
    print("  %-8s %s v%d %s %s  (from %s)" % ("current" if r["current"] else "history", r["lgcode"], r["version"], r["reason"], r["reason_date"], r["sender"]))'

step "A move-in of someone 千代田区 does not have is answered with a reason"
PYTHONPATH="$top/tests/integration" python3 - >stranger.jsonl <<'PY'
import json
from jukitest.synth import Synth
s = Synth(seed=7)
print(json.dumps(s.moved(s.person("131016"), "271004"), ensure_ascii=False))
PY
op cs-271004-clerk movein --file stranger.jsonl
rejected() { op cs-271004-clerk movein list --status rejected | grep -q no-match; }
wait_for "the answer" rejected
op cs-271004-clerk movein list
say "  大阪市 is told only no-match (it learns nothing of who lives in 千代田区);"
say "  千代田区 keeps the precise reason:"
op cs-131016-clerk tennyu refused | sed 's/^/  /'

step "Lookups (第4-4(7)): by the full set of attributes, exactly, with a purpose"
IFS=$'\t' read -r code2 name2 birth2 sex2 address2 < <(python3 -c '
import json; p = json.load(open("second.json"))
print(p["code"], p["name"], p["birth"], p["sex"], p["address"], sep="\t")')
op cs-131016-clerk lookup --purpose certificate --name "$name2" --birth "$birth2" --sex "$sex2" \
	--address "$address2" | grep -E '^ *(code|reason|version|purpose|capped):' | sed 's/^/  /'
say "  a wildcard is refused, with the reason:"
op cs-131016-clerk lookup --purpose certificate --name "${name2%% *}*" --birth "$birth2" \
	--sex "$sex2" --address "$address2" 2>&1 | sed 's/^/    /' || true

step "A clerk mistypes the PIN three times: locked; the supervisor (token card) unlocks"
for i in 1 2 3; do
	rc=0
	"$ctl" --terminal term-cs-131016-clerk.yaml --pin-fd 3 --card-pin-fd 4 login \
		3<<<"000000" 4<<<"$CARD_PIN" >/dev/null 2>&1 || rc=$?
	say "  attempt $i with a wrong PIN: exit $rc"
done
rc=0
op cs-131016-clerk login >/dev/null 2>&1 || rc=$?
say "  the right PIN now: exit $rc (5: locked)"
op cs-131016-sato operator unlock clerk | sed 's/^/  /'
op cs-131016-clerk login | sed -n 's/^/  /;/id:/p'

step "職権修正 is important input (第4-8(2)): recorded, then approved (or refused) by the supervisor"
approval=$(op cs-131016-clerk --json resident correct "$code2" --address "${address2}の2" |
	python3 -c 'import json,sys; a = json.load(sys.stdin)["approval"]; print(a["id"]); print("  approval %d: %s" % (a["id"], a["state"]), file=sys.stderr)')
op cs-131016-sato approve pending "$approval" | sed 's/^/  /'
say "  a second correction, found wrong by the supervisor: refused, a correction must follow"
approval=$(op cs-131016-clerk --json resident correct "$code2" --address "${address2}の3" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["approval"]["id"])')
op cs-131016-sato refuse pending "$approval" | sed 's/^/  /'

step "The operation history: every request, who, what, target, outcome; no names"
"$ctl" -s cs-131016.sock audit show --since 10m | tail -n 8 | sed 's/^/  /'
"$ctl" -s cs-131016.sock audit verify | sed 's/^/  /'

step "The gateway: tunnels relayed, nothing denied"
"$ctl" -s fwgate-east.sock status | sed -n '/^counters:/,/^alerts:/p' | sed '$d' | sed 's/^/  /'

step "Someone tries the gateway without TLS: refused, counted, raised as an alert"
say "  printf 'CONNECT urn:juki:pref:13 muni\\n' > /dev/tcp/127.0.0.1/${port[gw]}"
exec 3<>"/dev/tcp/127.0.0.1/${port[gw]}"
printf 'CONNECT urn:juki:pref:13 muni\n' >&3
cat <&3 >/dev/null 2>&1 || true
exec 3<&-
alerted() { "$ctl" --json -s fwgate-east.sock alerts | grep -q '"not-tls"'; }
wait_for "the alert" alerted
"$ctl" -s fwgate-east.sock alerts | sed 's/^/  /'

# Provision of identity information to a state agency (第6-8): 日本年金機構 asks the
# national server, under an agreement, through the gateway.
AGENCY=urn:juki:agency:nenkin
AGREEMENT=nenkin-2026
JIMU=1-1
PURPOSE=年金給付の現況確認

step "The national server's 事務 list (conf/jimu-example.csv: an EXAMPLE, not the law's text)"
for s in ito kato; do
	"$ctl" pki issue --encrypt --pin-fd 3 pki "urn:juki:op:jlis:0:$s" >/dev/null 3<<<"$CARD_PIN"
	terminal "term-jlis-0-$s.yaml" jlis-0 "op-jlis-0-$s" "key: pki/op-jlis-0-$s.key"
	"$ctl" -s jlis-0.sock operator add "$s" --roles supervisor --datasets honnin,provide \
		--new-pin-fd 3 >/dev/null 3<<<"$PIN"
done
say "  two supervisors at the national server, ito and kato (cards: encrypted key files)"
say "  juki-ctl --terminal term-jlis-0-ito.yaml jimu"
op jlis-0-ito jimu | sed 's/^/    /'

step "An agreement (協議) with 日本年金機構: added by one supervisor, approved by another"
say "  juki-ctl --terminal term-jlis-0-ito.yaml agreement add $AGREEMENT --body $AGENCY \\"
say "      --jimu $JIMU --items code,name,birth,sex,address --methods online,batch \\"
say "      --daily-cap 1000 --bulk-threshold 5 --keep-days 30 \\"
say "      --responsible urn:juki:op:agency:nenkin:boss"
op jlis-0-ito --json agreement add "$AGREEMENT" --body "$AGENCY" --jimu "$JIMU" \
	--items code,name,birth,sex,address --methods online,batch --daily-cap 1000 \
	--bulk-threshold 5 --keep-days 30 --responsible urn:juki:op:agency:nenkin:boss |
	python3 -c 'import json,sys; a = json.load(sys.stdin); print("    %s: %s, added by %s" % (a["id"], a["state"], a["added_by"]))'
say "  ito approving his own agreement is refused (two persons):"
op jlis-0-ito agreement approve "$AGREEMENT" 2>&1 | sed 's/^/    /' || true
say "  juki-ctl --terminal term-jlis-0-kato.yaml agreement approve $AGREEMENT"
op jlis-0-kato agreement approve "$AGREEMENT" >/dev/null
op jlis-0-kato --json agreement show "$AGREEMENT" | python3 -c '
import json, sys
a = json.load(sys.stdin)
print("    %s: %s, body %s, 事務 %s, items %s" % (a["id"], a["state"], a["body"], ",".join(a["jimu"]), ",".join(a["items"])))
print("    daily cap %d, bulk threshold %d, keep %d days, 責任者 %s" % (a["daily_cap"], a["bulk_threshold"], a["keep_days"], a["responsible"]))
print("    added by %s, approved by %s" % (a["added_by"], a["approved_by"]))'

step "日本年金機構's terminal: the body's certificate, a staff card, the 責任者's card"
# The staff member's card is an encrypted key file; the 責任者's is on a SoftHSM2 token.
"$ctl" pki issue --encrypt --pin-fd 3 pki urn:juki:op:agency:nenkin:sato >/dev/null 3<<<"$CARD_PIN"
"$ctl" pki issue --encrypt --pin-fd 3 pki urn:juki:op:agency:nenkin:boss >/dev/null 3<<<"$CARD_PIN"
openssl pkey -in pki/op-agency-nenkin-boss.key -passin "pass:$CARD_PIN" -out boss.plain.key
boss_uri=$("$top/tests/fixtures/softhsm-card.sh" token card-nenkin-boss "$CARD_PIN" boss.plain.key 2>/dev/null |
	sed -n 's/^URI=//p')
rm -f boss.plain.key pki/op-agency-nenkin-boss.key
cat >body-nenkin.yaml <<EOF
body: $AGENCY
tls: {cert: pki/agency-nenkin.crt, key: pki/agency-nenkin.key, ca: pki/ca.crt, crl: pki/crl.pem}
gateways: ['127.0.0.1:${port[gw]}']
server: urn:juki:jlis:0
staff:
  cert: pki/op-agency-nenkin-sato.crt
  key: pki/op-agency-nenkin-sato.key
answers: answers
EOF
say "  body file body-nenkin.yaml (docs/body.md; conf/body.yaml is the example):"
sed 's/^/    /' body-nenkin.yaml
say "  the 責任者's card: $boss_uri (SoftHSM2 token)"
# As the agency's staff member at the terminal: the card's passphrase through a descriptor.
provide() { # [--json] subcommand args...: juki-ctl provide
	local json=()
	if [ "$1" = --json ]; then
		json=(--json)
		shift
	fi
	local sub=$1
	shift
	"$ctl" "${json[@]}" provide "$sub" --body-conf body-nenkin.yaml --card-pin-fd 4 "$@" \
		4<<<"$CARD_PIN"
}

step "The staff member asks the national server for one resident (juki-ctl provide query)"
IFS=$'\t' read -r code3 name3 birth3 sex3 address3 < <(python3 -c '
import json; p = json.load(open("provided.json"))[0]
print(p["code"], p["name"], p["birth"], p["sex"], p["address"], sep="\t")')
say "  by 住民票コード:"
say "  juki-ctl provide query --body-conf body-nenkin.yaml --agreement $AGREEMENT --jimu $JIMU \\"
say "      --purpose $PURPOSE --code $code3"
provide query --agreement "$AGREEMENT" --jimu "$JIMU" --purpose "$PURPOSE" --code "$code3" |
	sed 's/^/    /'
say "  by the four items (氏名, 生年月日, 性別, 住所), exactly:"
say "  juki-ctl provide query --body-conf body-nenkin.yaml --agreement $AGREEMENT --jimu $JIMU \\"
say "      --purpose $PURPOSE --name '$name3' --birth $birth3 --sex $sex3 \\"
say "      --address-code 131016 --address '$address3'"
provide query --agreement "$AGREEMENT" --jimu "$JIMU" --purpose "$PURPOSE" --name "$name3" \
	--birth "$birth3" --sex "$sex3" --address-code 131016 --address "$address3" | sed 's/^/    /'
say "  a 事務 the agreement does not name is refused, with the reason:"
provide query --agreement "$AGREEMENT" --jimu 1-2 --purpose "$PURPOSE" --code "$code3" 2>&1 |
	sed 's/^/    /' || true

step "A batch of 8 queries, over the bulk threshold of 5: the 責任者 approves it first"
PYTHONPATH="$top/tests/integration" python3 - >queries.jsonl <<'PY'
import json
from jukitest.synth import Synth
ps = json.load(open("provided.json"))
lines = [{"code": p["code"]} for p in ps[1:7]]
lines.append({k: ps[7][k] for k in ("name", "birth", "sex", "address", "lgcode")})
lines.append({"code": Synth(seed=99).person("131016")["code"]})  # nobody's
for q in lines:
    print(json.dumps(q, ensure_ascii=False))
PY
say "  queries.jsonl, one query a line (住民票コード, or the four items):"
sed -n '1p;7,8p' queries.jsonl | sed 's/^/    /'
say "  without the 責任者's approval the national server refuses it:"
provide batch --agreement "$AGREEMENT" --jimu "$JIMU" --purpose "$PURPOSE" queries.jsonl 2>&1 |
	sed 's/^/    /' || true
say "  the 責任者, with their own card:"
say "  juki-ctl --json provide approve --cert pki/op-agency-nenkin-boss.crt \\"
say "      --card '$boss_uri' --ca pki/ca.crt --crl pki/crl.pem queries.jsonl > approval.json"
"$ctl" --json provide approve --cert pki/op-agency-nenkin-boss.crt --card "$boss_uri" \
	--ca pki/ca.crt --crl pki/crl.pem --card-pin-fd 4 queries.jsonl 4<<<"$CARD_PIN" \
	2>&1 >approval.json | sed 's/^juki-ctl: /    /'
say "  juki-ctl provide batch --body-conf body-nenkin.yaml --agreement $AGREEMENT --jimu $JIMU \\"
say "      --purpose $PURPOSE --approval approval.json queries.jsonl"
answers=$(provide --json batch --agreement "$AGREEMENT" --jimu "$JIMU" --purpose "$PURPOSE" \
	--approval approval.json queries.jsonl 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("    batch %s: %d queries, %d found, %d not found, %d refused; erase by %s" % (r["batch"], r["count"], r["found"], r["not_found"], r["refused"], r["erase_by"]), file=sys.stderr)
print(r["file"])')
say "  the answers file, mode 0600 in a folder of mode 0700:"
stat -c '%A %s bytes %n' "$answers" | sed "s|$dir/||;s/^/    /"
python3 - "$answers" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    h = json.loads(f.readline())
    print("    header: batch %s, %d answers, staff %s, received %s, erase by %s"
          % (h["batch"], h["count"], h["staff"], h["received"], h["erase_by"]))
    for i, line in enumerate(f, 1):
        a = json.loads(line)
        if a.get("found"):
            r = a["record"]
            print("    %d: found    %s %s" % (i, r.get("code", ""), " ".join(sorted(r))))
        else:
            print("    %d: %s" % (i, "refused " + a["refused"] if "refused" in a else "not found"))
PY
say "  juki-ctl provide purge erases it after that day; today it keeps it:"
"$ctl" provide purge --body-conf body-nenkin.yaml --dry-run | sed 's/^/    /'

step "The provision notices reach 東京都 (第6-8(5)イ): juki-ctl notices send at the national server"
provided=$("$ctl" --json -s jlis-0.sock status |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["provide"]["provisions"])')
say "  $provided provision records at the national server"
say "  juki-ctl -s jlis-0.sock notices send"
"$ctl" -s jlis-0.sock notices send | sed 's/^/    /'
notified() {
	"$ctl" --json -s pref-13.sock status |
		python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["provide"]["provisions"] < '"$provided"')'
}
wait_for "the provision notices at 東京都" notified
say "  東京都 holds them; the counts per prefecture and day agree (juki-ctl notices reconcile):"
"$ctl" -s jlis-0.sock notices reconcile | sed 's/^/    /'

step "A disclosure request at 東京都 (第6-8(5)ア): to whom the person's information went"
"$ctl" pki issue --encrypt --pin-fd 3 pki urn:juki:op:pref:13:yamada >/dev/null 3<<<"$CARD_PIN"
terminal term-pref-13-yamada.yaml pref-13 op-pref-13-yamada "key: pki/op-pref-13-yamada.key"
"$ctl" -s pref-13.sock operator add yamada --roles supervisor --datasets honnin,provide \
	--new-pin-fd 3 >/dev/null 3<<<"$PIN"
say "  the prefecture's 責任者 yamada (a supervisor with the data set provide):"
say "  juki-ctl --terminal term-pref-13-yamada.yaml disclosure $code3"
op pref-13-yamada disclosure "$code3" | sed 's/^/    /'
pdf=$dir/kaiji-$code3.pdf
say "  juki-ctl --terminal term-pref-13-yamada.yaml disclosure $code3 --pdf $pdf"
op pref-13-yamada disclosure "$code3" --pdf "$pdf" >/dev/null
say "  the printed answer holds the person's data: made mode 0600, here in the demo's folder"
say "  (mode 0700; the next run erases it); at a real counter, print it, then erase it:"
stat -c '%A %s bytes %n' "$pdf" | sed "s/^/    /"
pdfinfo "$pdf" | grep -E '^(Pages|Page size):' | sed 's/^/    /' || true
pdftotext -layout "$pdf" - | grep -E '開示|住民票コード|知事' | grep -vE '^ *[0-9]{4}-' |
	sed 's/^ *//;s/^/    /' || true

step "A management report (第6-8(1)エ): 千代田区 asks 日本年金機構, which the nation provided to"
cat >report-request.txt <<'EOF'
本人確認情報の適切な管理のために講じている措置の実施状況を報告してください。
EOF
due=$(TZ=Asia/Tokyo date -d '+30 days' +%F)
say "  juki-ctl --terminal term-cs-131016-sato.yaml report request --to $AGENCY \\"
say "      --kind report --provider national --subject 管理状況の報告 \\"
say "      --text-file report-request.txt --due $due"
rid=$(op cs-131016-sato --json report request --to "$AGENCY" --kind report --provider national \
	--subject 管理状況の報告 --text-file report-request.txt --due "$due" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("    request %s: %s, next %s" % (r["id"], r["state"], r["next"]), file=sys.stderr)
print(r["id"])')
report_state() { # socket state
	"$ctl" --json -s "$1" report list | python3 -c '
import json, sys
sys.exit(not any(r["id"] == sys.argv[1] and r["state"] == sys.argv[2] for r in json.load(sys.stdin)["reports"]))' "$rid" "$2"
}
wait_for "the request at the national server" report_state jlis-0.sock received
wait_for "千代田区 to learn that it was received" report_state cs-131016.sock received
for n in cs-131016 pref-13 jlis-0; do
	"$ctl" --json -s "$n.sock" report show "$rid" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("  %-10s %-9s %-8s to %s (asked by %s, due %s)" % (sys.argv[1], r["role"], r["state"], r["to"], r["requester"], r["due"]))' "$n"
done
say "  the national server holds it for 日本年金機構's staff to fetch and answer there"

step "日本年金機構's staff member fetches the request and answers it (juki-ctl provide reports|reply)"
say "  juki-ctl provide reports --body-conf body-nenkin.yaml"
provide reports | sed 's/^/    /'
cat >report-answer.txt <<'EOF'
本人確認情報の取扱者を限定し、大量提供は責任者の承認を得て行っています。
EOF
say "  juki-ctl provide reply --body-conf body-nenkin.yaml $rid --file report-answer.txt"
provide reply "$rid" --file report-answer.txt | sed 's/^/    /'
wait_for "千代田区 to hold the answer" report_state cs-131016.sock answered
say "  at 千代田区 (juki-ctl report show $rid):"
"$ctl" -s cs-131016.sock report show "$rid" | sed 's/^/    /'

step "異動等情報 to the certification authority (第6-8(6)): the authority and its agreement"
authority() { python3 "$top/tests/integration/jukitest/authority.py" "$@"; }
say "  the authority urn:juki:ca:jpki is the reference one of the tests (NOT a product):"
say "  an OpenSSL CA (openssl ca: index.txt, serial, crlnumber) and openssl ocsp as responder"
authority create ca "127.0.0.1:${port[ca]}" pki/ca-jpki.crt pki/ca-jpki.key pki/ca.crt \
	pki/crl.pem "${port[ocsp]}" | sed 's/^/    /'
python3 "$top/tests/integration/jukitest/authority.py" responder ca >ca-ocsp.log 2>&1 &
echo $! >ca-ocsp.pid
python3 "$top/tests/integration/jukitest/authority.py" serve ca >ca-serve.log 2>&1 &
echo $! >ca-serve.pid
wait_for "the OCSP responder" grep -qs "waiting for OCSP" ca/ocsp.log
wait_for "the authority's node port" test -e ca/serve.ready
say "  the national server's agreement with it (method feed), by two supervisors:"
say "  juki-ctl --terminal term-jlis-0-ito.yaml agreement add ca-jpki --body urn:juki:ca:jpki \\"
say "      --methods feed --items code,name,birth,sex,address,change --keep-days 30 \\"
say "      --responsible urn:juki:op:ca:jpki:boss"
op jlis-0-ito --json agreement add ca-jpki --body urn:juki:ca:jpki --methods feed \
	--items code,name,birth,sex,address,change --keep-days 30 \
	--responsible urn:juki:op:ca:jpki:boss >/dev/null
op jlis-0-kato agreement approve ca-jpki >/dev/null
op jlis-0-kato --json agreement show ca-jpki | python3 -c '
import json, sys
a = json.load(sys.stdin)
print("    %s: %s, body %s, methods %s, items %s" % (a["id"], a["state"], a["body"], ",".join(a["methods"]), ",".join(a["items"])))'

step "A resident of 千代田区 holds a signing certificate; OCSP answers good"
read -r serial holder_cert < <(authority issue ca holder.json)
holder_key=ca/people/$(python3 -c 'import json; print(json.load(open("holder.json"))[0]["code"])').key
say "  certificate $serial (the subject has the basic items, never the 住民票コード):"
openssl x509 -in "$holder_cert" -noout -subject -nameopt utf8,sep_comma_plus_space | sed 's/^/    /'
say "  openssl ocsp -issuer ca/ca.crt -cert ${holder_cert#"$dir"/} -url http://127.0.0.1:${port[ocsp]}"
authority ocsp ca "$holder_cert" | sed "s|$dir/||;s/^/    /"
printf '申請書 (a document the resident signs)\n' |
	authority sign ca "$holder_cert" "$holder_key" signed.pem
say "  a document signed with it, checked with openssl cms -verify -crl_check:"
authority verify ca signed.pem | sed 's/^/    /'

step "The resident dies: 千代田区 records it (死亡) by import; the authority revokes"
PYTHONPATH="$top/tests/integration" python3 - >death.csv <<'PY'
import json, sys
from jukitest.synth import import_csv, change_row
sys.stdout.write(import_csv([change_row(json.load(open("holder.json"))[0], "死亡")]))
PY
op cs-131016-clerk import death.csv | sed 's/^/  /'
revoked() { authority ocsp ca "$holder_cert" | grep -q ': revoked'; }
wait_for "OCSP to answer revoked" revoked
acked() {
	"$ctl" --json -s authlink-0.sock status |
		python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["feed"]["acked_seq"] < 1)'
}
wait_for "the authority's ack at authlink:0" acked
say "  CS -> 東京都 -> the national server (異動等情報 derived) -> authlink:0 -> the authority:"
"$ctl" --json -s jlis-0.sock status | python3 -c '
import json, sys
n = json.load(sys.stdin)["ninsho"]
print("    national server: %d entries sent to %s for %s" % (n["sent_entries"], n["authlink"], n["ca"]))'
"$ctl" --json -s authlink-0.sock status | python3 -c '
import json, sys
f = json.load(sys.stdin)["feed"]
print("    authlink:0: feed last seq %d, acknowledged by the authority up to %d" % (f["last_seq"], f["acked_seq"]))'
authority state ca | sed 's/^/    the authority: /'
say "  openssl ocsp now:"
authority ocsp ca "$holder_cert" | sed "s|$dir/||;s/^/    /"
say "  the signature, against the CRL the authority issued with the revocation:"
authority verify ca signed.pem | sed 's/^/    /' || true
step "A wide-area copy (第6-4): a resident of 千代田区 asks at 大阪市's counter"
# The counter's printer: a queue of a private CUPS scheduler (its own folder and port, never
# the system's) whose backend files each job it prints as a PDF in cups/out.
c=$dir/cups
mkdir -p "$c"/{spool,tmp,state,cache,log,out,bin/backend}
for d in filter daemon cgi-bin notifier monitor driver; do ln -s "/usr/lib/cups/$d" "$c/bin/$d"; done
printf '%s\n' '#!/bin/sh' \
	"if [ \$# -eq 0 ]; then echo 'direct jukifile \"Unknown\" \"juki demo printer\"'; exit 0; fi" \
	'dir=${DEVICE_URI#jukifile:}' \
	'if [ -n "$6" ]; then cat "$6" >"$dir/.job-$1"; else cat >"$dir/.job-$1"; fi' \
	'mv "$dir/.job-$1" "$dir/job-$1.pdf"' >"$c/bin/backend/jukifile"
chmod 700 "$c/bin/backend/jukifile"
printf 'Listen 127.0.0.1:%s\nWebInterface No\nBrowsing No\n<Location />\n  Order allow,deny\n  Allow all\n</Location>\n<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n' \
	"${port[cups]}" >"$c/cupsd.conf"
for kv in "ServerRoot $c" "RequestRoot $c/spool" "TempDir $c/tmp" "StateDir $c/state" \
	"CacheDir $c/cache" "ServerBin $c/bin" "ErrorLog $c/log/error_log" \
	"AccessLog $c/log/access_log" "PageLog $c/log/page_log" "Printcap $c/printcap"; do
	echo "$kv"
done >"$c/cups-files.conf"
cupsd -f -c "$c/cupsd.conf" -s "$c/cups-files.conf" >"$c/log/stdout" 2>&1 &
echo $! >cupsd.pid
export CUPS_SERVER=127.0.0.1:${port[cups]}
wait_for "cupsd" lpstat -r >/dev/null 2>&1
lpadmin -p osaka-counter-1 -v "jukifile:$c/out" -E
echo "printer: osaka-counter-1" >>term-cs-271004-clerk.yaml
say "  the counter's printer: osaka-counter-1 (CUPS at $CUPS_SERVER), named in the clerk's"
say "  terminal file (printer: osaka-counter-1); no option names another"
# 大阪市's supervisor receives the serial-numbered forms.
"$ctl" pki issue --encrypt --pin-fd 3 pki urn:juki:op:cs:271004:kimura >/dev/null 3<<<"$CARD_PIN"
terminal term-cs-271004-kimura.yaml cs-271004 op-cs-271004-kimura "key: pki/op-cs-271004-kimura.key"
"$ctl" -s cs-271004.sock operator add kimura --roles supervisor --datasets honnin,tennyu \
	--new-pin-fd 3 >/dev/null 3<<<"$PIN"
say "  juki-ctl --terminal term-cs-271004-kimura.yaml forms receive --first 50001 --last 50100"
op cs-271004-kimura forms receive --first 50001 --last 50100 --note 納品書12-1 |
	grep -E '^ *(received|unused|next):' | sed 's/^ */    /'
# 千代田区's resident record system, played here by a few lines of Python: it reads the
# request in its copy spool and answers with the copy (docs/import.md, "The copy spool").
python3 -c '
import json, os, sys, time
spool, end = "cs-131016.copy", time.time() + 60
while time.time() < end:
    for name in sorted(os.listdir(spool + "/outgoing")):
        if name.startswith(".") or not name.endswith(".json"):
            continue
        req = json.load(open(os.path.join(spool, "outgoing", name)))
        p = req["person"]
        person = {"name": p["name"], "birth": p["birth"], "sex": 1,
                  "resident_since": "2015-04-01", "relation": "世帯主"}
        answer = {"format": "juki-copy-answer/1", "request_id": req["request_id"],
                  "status": "answered",
                  "copy": {"address": "東京都千代田区千代田1番1号", "householder": p["name"],
                           "persons": [person]}}
        tmp = os.path.join(spool, "answers", "." + name)
        with open(tmp, "w") as f:
            json.dump(answer, f, ensure_ascii=False)
        os.rename(tmp, os.path.join(spool, "answers", name))
        sys.exit(0)
    time.sleep(0.1)
' &
IFS=$'\t' read -r code4 name4 birth4 < <(python3 -c '
import json; p = json.load(open("provided.json"))[7]
print(p["code"], p["name"], p["birth"], sep="\t")')
say "  the resident shows a document (運転免許証); the clerk enters the request:"
say "  juki-ctl --terminal term-cs-271004-clerk.yaml copy request --code $code4 --name '$name4' \\"
say "      --birth $birth4 --home 131016 --requester '$name4' --relation self \\"
say "      --identity document --document 運転免許証 --items householder,relation"
cid=$(op cs-271004-clerk --json copy request --code "$code4" --name "$name4" --birth "$birth4" \
	--home 131016 --requester "$name4" --relation self --identity document \
	--document 運転免許証 --items householder,relation | python3 -c '
import json, sys; r = json.load(sys.stdin); print(r["id"])
print("    request %s: %s to %s" % (r["id"], r["state"], r["to"]), file=sys.stderr)')
copy_state() {
	op cs-271004-clerk --json copy show --id "$cid" |
		python3 -c 'import json, sys; sys.exit(json.load(sys.stdin)["state"] != "answered")'
}
wait_for "千代田区's answer" copy_state
say "  on screen for review (juki-ctl copy show --id ...):"
op cs-271004-clerk copy show --id "$cid" | sed 's/^/    /'
say "  juki-ctl --terminal term-cs-271004-clerk.yaml copy print --id ..."
op cs-271004-clerk copy print --id "$cid" | sed 's/^/    /'
job() { ls "$c"/out/job-*.pdf >/dev/null 2>&1; }
wait_for "the printed copy" job
say "  what the printer received (cups/out; juki-ctl wrote no PDF to disk):"
pdftotext -layout "$c"/out/job-*.pdf - | grep -E '写し|住所|世帯主|証明|大阪市長|用紙番号' |
	sed 's/^ *//;s/^/    /' || true
say "  the forms stock, counted (juki-ctl forms count --on-hand 99):"
op cs-271004-kimura forms count --on-hand 99 | sed 's/^/    /'
say "  大阪市's history names the request and the form, never the person:"
"$ctl" --json -s cs-271004.sock audit show --limit 1000 | python3 -c '
import json, sys
for e in json.load(sys.stdin)["entries"]:
    if e["action"].startswith(("copy.", "forms.")) and e["action"] not in ("copy.show",):
        print("    %-34s %-14s %s %s" % (e["operator"], e["action"], e.get("target") or "",
                                      e.get("detail") or ""))'

step "A card holder's special move (第6-5): 付記転出 at 千代田区, 最初の転入届 at 大阪市"
IFS=$'\t' read -r code5 name5 birth5 < <(python3 -c '
import json; p = json.load(open("provided.json"))[5]
print(p["code"], p["name"], p["birth"], sep="\t")')
say "  千代田区 issued the resident a card (juki-ctl card issue --code ... --serial C1001):"
op cs-131016-clerk --json card issue --code "$code5" --serial C1001 >/dev/null
op cs-131016-clerk --json card show --serial C1001 |
	python3 -c 'import json, sys; c = json.load(sys.stdin); print("    card %s: %s" % (c["serial"], c["state"]))'
say "  the 付記転出届 at 千代田区, the card checked in the register:"
say "  juki-ctl --terminal term-cs-131016-clerk.yaml tokurei moveout --code ... --card C1001 \\"
say "      --to 271004 --new-address '大阪府大阪市北区中之島一丁目3番20号' --date 2026-12-10"
op cs-131016-clerk --json tokurei moveout --code "$code5" --card C1001 --to 271004 \
	--new-address '大阪府大阪市北区中之島一丁目3番20号' --date 2026-12-10 |
	python3 -c 'import json, sys; r = json.load(sys.stdin); print("    付記転出 %s: %s" % (r["id"], r["state"]))'
say "  the 最初の転入届 at 大阪市 (the card shown):"
say "  juki-ctl --terminal term-cs-271004-clerk.yaml tokurei movein --code ... --name ... \\"
say "      --birth ... --card C1001 --from 131016"
tid=$(op cs-271004-clerk --json tokurei movein --code "$code5" --name "$name5" \
	--birth "$birth5" --card C1001 --from 131016 | python3 -c '
import json, sys; r = json.load(sys.stdin); print(r["id"])
print("    request %s: %s to %s" % (r["id"], r["state"], r["to"]), file=sys.stderr)')
tokurei_answered() {
	op cs-271004-clerk --json tokurei show --id "$tid" |
		python3 -c 'import json, sys; sys.exit(json.load(sys.stdin)["state"] != "answered")'
}
wait_for "千代田区's 転出証明書情報" tokurei_answered
say "  the 転出証明書情報 on 大阪市's screen, for review against the 転入届 (tokurei show):"
op cs-271004-clerk tokurei show --id "$tid" | sed 's/^/    /'
say "  the card collected (juki-ctl tokurei collect --id ...):"
op cs-271004-clerk --json tokurei collect --id "$tid" |
	python3 -c 'import json, sys; r = json.load(sys.stdin); print("    %s, card %s" % (r["state"], r["card"]))'
card_collected() {
	op cs-131016-clerk --json card show --serial C1001 |
		python3 -c 'import json, sys; sys.exit(json.load(sys.stdin)["state"] != "collected")'
}
wait_for "千代田区's card register to say collected" card_collected
say "  千代田区's card register:"
op cs-131016-clerk --json card show --serial C1001 |
	python3 -c 'import json, sys; c = json.load(sys.stdin); print("    card %s: %s" % (c["serial"], c["state"]))'
say "  the files for each resident record system (the tokurei spools):"
ls cs-131016.tokurei/moveout cs-271004.tokurei/movein 2>/dev/null | sed 's/^/    /'

step "The national board (第4-7(3)): every node's heartbeat, its state and open alerts"
board_full() {
	"$ctl" --json -s jlis-0.sock board | python3 -c 'import json, sys
b = json.load(sys.stdin)
sys.exit(0 if sum(n["state"] != "down" for n in b["nodes"]) >= 5 else 1)'
}
wait_for "every node on the national board" board_full
say "  juki-ctl board   (at the national server; --pref 13 for one prefecture, --json for scripts)"
"$ctl" -s jlis-0.sock board | sed 's/^/    /'
say "  the same board as a web page: https://127.0.0.1:${port[web]}/ (TLS 1.3, an operator's"
say "  certificate of jlis-0 in the browser, docs/operations.md §29; try --keep to open it)"
say "  a notice from the national server to 千代田区 (第4-7(3)), acknowledged there:"
notice=$("$ctl" --json -s jlis-0.sock notice send --to urn:juki:cs:131016 --severity info \
	--text "定期保守: 12月10日 02:00-04:00 に全国サーバを停止します" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
notice_in() { "$ctl" --json -s cs-131016.sock status | grep -q "$notice"; }
wait_for "the notice at 千代田区" notice_in
"$ctl" -s cs-131016.sock notice ack "$notice" | sed 's/^/    /'
say "  the witnessed history: 東京都 holds 千代田区's signed checkpoints"
"$ctl" -s pref-13.sock witness show | sed 's/^/    /'

step "Logs (no personal data in them)"
tail -n 4 cs-131016.log | sed 's/^/  /'
grep -E 'provide|agreement|notice' jlis-0.log | tail -n 3 | sed 's/^/  /' || true

if [ "$keep" -eq 1 ]; then
	step "The network keeps running in $dir"
	say "  try:   $ctl -s $dir/cs-131016.sock status"
	say "  the board's web page: https://127.0.0.1:${port[web]}/ (an operator's certificate of"
	say "         jlis-0 in the browser: docs/operations.md §29)"
	say "  stop:  $0 --stop"
else
	step "Stopping everything"
fi
