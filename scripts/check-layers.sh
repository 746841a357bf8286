#!/bin/sh
# Check libjuki's layering (docs/architecture.md §1.1): a file of a layer
# includes only headers of its own layer and of the layers below it, and only
# the runtime (node/) logs or exits.  Prints every include that breaks the
# rule and exits 1; exits 0 when there is none.
#
#   scripts/check-layers.sh
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top/libjuki"

# The layers, lowest first.
layers="base wire store records node"

rank() {
	i=0
	for l in $layers; do
		if [ "$l" = "$1" ]; then
			echo "$i"
			return
		fi
		i=$((i + 1))
	done
	echo -1
}

bad=0
for f in $(find src include -name '*.[ch]' | sort); do
	case $f in
	src/*) layer=${f#src/} ;;
	include/juki/*) layer=${f#include/juki/} ;;
	*) continue ;;
	esac
	layer=${layer%%/*}
	own=$(rank "$layer")
	if [ "$own" -lt 0 ]; then
		echo "$f: not in a layer folder ($layers)"
		bad=1
		continue
	fi
	for inc in $(sed -n 's/^#[[:space:]]*include[[:space:]]*["<]juki\/\([^">]*\)[">].*/\1/p' "$f"); do
		dep=${inc%%/*}
		r=$(rank "$dep")
		if [ "$r" -lt 0 ]; then
			echo "$f: includes juki/$inc, which is in no layer"
			bad=1
		elif [ "$r" -gt "$own" ]; then
			echo "$f: $layer includes juki/$inc from the layer above ($dep)"
			bad=1
		fi
	done
	# Below the runtime, library code returns errors: it does not log or exit.
	if [ "$layer" != node ] && grep -nE '\b(exit|_exit|abort|syslog|perror)[[:space:]]*\(|\bjuki_log[a-z_]*[[:space:]]*\(' "$f" >/dev/null; then
		grep -nE '\b(exit|_exit|abort|syslog|perror)[[:space:]]*\(|\bjuki_log[a-z_]*[[:space:]]*\(' "$f" |
			sed "s|^|$f:|; s|\$|   (only the runtime, node/, logs or exits)|"
		bad=1
	fi
done

if [ "$bad" -ne 0 ]; then
	echo "check-layers: libjuki's layering is broken (see docs/architecture.md §1.1)" >&2
	exit 1
fi
echo "check-layers: ok"
