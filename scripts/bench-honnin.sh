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
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
bench_build
bench_python bench_honnin.py --file-rows 5000 "$@"
