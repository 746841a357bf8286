#!/bin/sh
# Check that the example configurations in conf/ stay valid: make the PKI of
# conf/topology.yaml in a temporary directory, point the examples at it and at
# conf/policy.yaml, and run each daemon's -n on its example.
#
#   docs/check-conf.sh BUILD_DIR SOURCE_DIR
set -eu

build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

"$build/ctl/juki-ctl" pki init --out "$tmp/pki" "$src/conf/topology.yaml" >/dev/null
for pair in fwgated:fwgate/juki-fwgated csd:cs/juki-csd prefd:prefserver/juki-prefd \
    jlisd:jlisserver/juki-jlisd authlinkd:authlink/juki-authlinkd; do
	name=${pair%%:*}
	bin=${pair#*:}
	sed -e "s#/etc/juki/pki/#$tmp/pki/#g" \
	    -e "s#/etc/juki/policy.yaml#$src/conf/policy.yaml#g" \
	    "$src/conf/$name.yaml" >"$tmp/$name.yaml"
	if sed -e 's/#.*//' "$tmp/$name.yaml" | grep -q /etc/juki; then
		echo "check-conf: conf/$name.yaml names a file under /etc/juki this check cannot map" >&2
		exit 1
	fi
	"$build/$bin" -n -f "$tmp/$name.yaml"
done

# The body file of juki-ctl provide: read by a purge that only looks (--dry-run).
sed -e "s#/etc/juki/pki/#$tmp/pki/#g" -e "s#/var/lib/juki-body/#$tmp/body/#g" \
    "$src/conf/body.yaml" >"$tmp/body.yaml"
"$build/ctl/juki-ctl" provide purge --body-conf "$tmp/body.yaml" --dry-run >/dev/null
