#!/bin/sh
# Provision to agencies, measured (docs/benchmarks.md): the national server holding
# 1,000,000 records, a batch of 1,000,000 queries by code from one agency through the
# gateway with provision records written, single online queries, and in the same run the
# reference: a plain C loop of point lookups by primary key on the same records.
#
#   scripts/bench-provide.sh                      the full run
#   scripts/bench-provide.sh --records 100000     a shorter one
#   scripts/bench-provide.sh --dir /var/tmp       work on another disk
#
# Not part of scripts/test.sh: a benchmark prints figures, it does not pass or fail.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
cmake -S "$top" -B "$top/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$top/build" >/dev/null
JUKI_BUILD_DIR="$top/build" JUKI_SOURCE_DIR="$top" exec python3 "$top/tests/bench/bench_provide.py" "$@"
