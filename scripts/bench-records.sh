#!/bin/sh
# What a receiver spends per record of a honnin.batch frame, by step, against a
# memcpy of the same bytes measured in the same run (docs/benchmarks.md).
#
#   scripts/bench-records.sh              5,000 records a frame, 20 rounds
#   scripts/bench-records.sh 5000 100     more rounds
#
# Not part of scripts/test.sh: a benchmark prints figures, it does not pass or fail.
set -eu
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
bench_build
exec "$top/build/tests/bench/bench_records" "$@"
