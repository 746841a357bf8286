#!/bin/sh
# Identity information end to end, measured (docs/benchmarks.md):
# 1,000,000 generated changes from one CS through the gateway to its
# prefectural server and the national server, durable at every hop, with the
# raw SQLite ceiling measured in the same run on the same disk.
#
#   scripts/bench-honnin.sh                      the full run (about 2 minutes)
#   scripts/bench-honnin.sh --records 200000     a shorter one
#   scripts/bench-honnin.sh --dir /var/tmp       work on another disk
#
# Not part of scripts/test.sh: a benchmark prints figures, it does not pass or fail.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
cmake -S "$top" -B "$top/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$top/build" >/dev/null
JUKI_BUILD_DIR="$top/build" JUKI_SOURCE_DIR="$top" exec python3 "$top/tests/bench/bench_honnin.py" \
	--file-rows 5000 "$@"
