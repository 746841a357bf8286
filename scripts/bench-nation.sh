#!/bin/sh
# How cost grows with the national server's store (docs/benchmarks.md; issue 14 part 1):
# at each size, a fresh network of a CS, its gateway, its prefectural server and a real
# juki-jlisd whose empty store is filled by the bulk load; measures lookups by code and by the
# four items on one operator session (p50, p99, per second, with the same lookups by SQLite as
# reference), the rate of a further N changes CS -> pref -> national, each daemon's peak RSS,
# the load, bytes per record and per history row, backup and verify, purge and restart;
# prints a table, fits, plots (PNG) and the store at 125 million with a year's history.
#
#   scripts/bench-nation.sh                              100k, 200k, 400k records
#   scripts/bench-nation.sh --sizes 1M,5M,10M,25M        larger (16 minutes here; 30 GB of disk)
#   scripts/bench-nation.sh --changes 20000 --lookups 1000   fewer changes / lookups a size
#   scripts/bench-nation.sh --dir /var/tmp --plots DIR   work on another disk; PNGs to DIR
#   scripts/bench-nation.sh --json                       the rows as JSON at the end too
#
# Not part of scripts/test.sh: a benchmark prints figures, it does not pass or fail.
set -eu
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
bench_build gnuplot-nox
bench_python bench_nation.py "$@"
