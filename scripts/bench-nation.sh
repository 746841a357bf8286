#!/bin/sh
# How cost grows with the national server's store (docs/benchmarks.md; issue 14 part 1):
# grows a real juki-jlisd's store with the bulk load and measures at each size the load,
# bytes per record, memory, backup and verify, purge and restart; plots and forecasts.
# A first part: see tests/bench/bench_nation.py for what it does not measure yet.
#
#   scripts/bench-nation.sh                         100k, 200k, 400k records
#   scripts/bench-nation.sh --sizes 1M,5M,10M       larger (minutes each)
#   scripts/bench-nation.sh --dir /var/tmp          work on another disk
#
# Not part of scripts/test.sh: a benchmark prints figures, it does not pass or fail.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" gnuplot-nox
cmake -S "$top" -B "$top/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$top/build" >/dev/null
JUKI_BUILD_DIR="$top/build" JUKI_SOURCE_DIR="$top" exec python3 "$top/tests/bench/bench_nation.py" "$@"
