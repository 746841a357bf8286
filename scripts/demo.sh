#!/bin/bash
# The juki demo network and its scenario, on loopback:
#
#   gateway fwgate:east
#   CS 千代田区 (cs:131016) -> 東京都 (pref:13)
#   CS 大阪市   (cs:271004) -> 大阪府 (pref:27)
#
# A person registered in 千代田区 moves to 大阪市: the clerk in 大阪市 records the
# move-in, 大阪市 sends 転入通知 to 千代田区 through the gateway, 千代田区 marks the
# person as moved out and sends 転出確定通知 to 東京都, which records it.
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
cd "$dir"

declare -A port
for n in gw cs131016 cs271004 pref13 pref27; do
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
EOF
"$ctl" pki init --out pki topology.yaml >/dev/null
ls -l pki | sed 's/^/  /'
cp "$top/conf/policy.yaml" policy.yaml

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
EOF
}
node_config cs-131016 urn:juki:cs:131016 "${port[cs131016]}"
node_config cs-271004 urn:juki:cs:271004 "${port[cs271004]}"
node_config pref-13 urn:juki:pref:13 "${port[pref13]}"
node_config pref-27 urn:juki:pref:27 "${port[pref27]}"
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

step "Starting the gateway, two CSs and two prefectural servers"
start fwgate-east fwgate/juki-fwgated
start cs-131016 cs/juki-csd
start cs-271004 cs/juki-csd
start pref-13 prefserver/juki-prefd
start pref-27 prefserver/juki-prefd
for n in fwgate-east cs-131016 cs-271004 pref-13 pref-27; do
	# Ready when the daemon answers on its control socket.
	for _ in $(seq 200); do
		"$ctl" -s "$n.sock" status >/dev/null 2>&1 && break
		sleep 0.05
	done
	"$ctl" --json -s "$n.sock" status |
		python3 -c 'import json,sys; s=json.load(sys.stdin); print("  %-22s %-13s ready" % (s["node"], s["daemon"]))'
done

step "千代田区 registers three residents (synthetic data, valid 住民票コード)"
PYTHONPATH="$top/tests/integration" python3 - >residents.jsonl <<'EOF'
import json
from jukitest.synth import Synth
s = Synth(seed=2026)
for _ in range(3):
    print(json.dumps(s.person("131016"), ensure_ascii=False))
EOF
sed 's/^/  /' residents.jsonl
"$ctl" -s cs-131016.sock resident add --file residents.jsonl

step "A clerk in 大阪市 records the move-in of the first of them (juki-ctl movein)"
IFS=$'\t' read -r code name birth sex < <(python3 -c '
import json; p = json.loads(open("residents.jsonl").readline())
print(p["code"], p["name"], p["birth"], p["sex"], sep="\t")')
say "  juki-ctl -s cs-271004.sock movein --code $code --name '$name' --birth $birth --sex $sex \\"
say "      --address '大阪府大阪市北区梅田1丁目1番1号' --from 131016 --date $(date +%F)"
"$ctl" -s cs-271004.sock movein --code "$code" --name "$name" --birth "$birth" --sex "$sex" \
	--address "大阪府大阪市北区梅田1丁目1番1号" --from 131016 --date "$(date +%F)"

wait_for() { # what command...
	local what=$1
	shift
	for _ in $(seq 200); do
		"$@" && return 0
		sleep 0.05
	done
	say "timed out waiting for $what"
	return 1
}
confirmed() { "$ctl" --json -s pref-13.sock confirmations --code "$code" | grep -q '"total": 1'; }
wait_for "the 転出確定通知 at 東京都" confirmed

step "大阪市: the notice and 千代田区's answer"
"$ctl" -s cs-271004.sock movein list

step "千代田区: the person is now recorded as moved out (転出), with the notice received"
"$ctl" -s cs-131016.sock resident show "$code" | sed 's/^/  /'

step "東京都: the 転出確定通知 recorded against the person"
"$ctl" -s pref-13.sock confirmations --code "$code" | sed 's/^/  /'

step "A move-in of someone 千代田区 does not have is answered with a reason"
PYTHONPATH="$top/tests/integration" python3 - >stranger.jsonl <<'EOF'
import json
from jukitest.synth import Synth
s = Synth(seed=7)
print(json.dumps(s.moved(s.person("131016"), "271004"), ensure_ascii=False))
EOF
"$ctl" -s cs-271004.sock movein --file stranger.jsonl
rejected() { "$ctl" -s cs-271004.sock movein list --status rejected | grep -q unknown-person; }
wait_for "the answer" rejected
"$ctl" -s cs-271004.sock movein list

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

step "Logs (no personal data in them)"
tail -n 3 cs-131016.log | sed 's/^/  /'

if [ "$keep" -eq 1 ]; then
	step "The network keeps running in $dir"
	say "  try:   $ctl -s $dir/cs-131016.sock status"
	say "  stop:  $0 --stop"
else
	step "Stopping everything"
fi
