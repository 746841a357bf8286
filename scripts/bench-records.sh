#!/bin/sh
# What a receiver spends per record of a honnin.batch frame, by step, against a
# memcpy of the same bytes measured in the same run (docs/benchmarks.md).
#
#   scripts/bench-records.sh              5,000 records a frame, 20 rounds
#   scripts/bench-records.sh 5000 100     more rounds
#
# Not part of scripts/test.sh: a benchmark prints figures, it does not pass or fail.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
cmake -S "$top" -B "$top/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$top/build" bench_records >/dev/null
exec "$top/build/tests/bench/bench_records" "$@"
