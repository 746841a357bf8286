#!/bin/sh
# The bulk load against PostgreSQL 15 (docs/benchmarks.md "Bulk load"): the same
# N generated rows loaded with `juki-ctl load` into an empty national server and,
# on the same disk in the same run, into a throwaway PostgreSQL cluster (initdb,
# fsync on) with COPY then CREATE INDEX; prints both rates and ratio = juki / PostgreSQL.
#
#   scripts/bench-load.sh                        5,000,000 rows (several minutes)
#   scripts/bench-load.sh --records 1000000      a shorter run
#   scripts/bench-load.sh --dir /var/tmp         work on another disk
#   scripts/bench-load.sh --juki-only            juki alone, with the phases the daemon logged
#
# Runs as root (PostgreSQL's own programs run as the user postgres).  Not part of
# scripts/test.sh: a benchmark prints figures, it does not pass or fail.
set -eu
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
bench_build postgresql-15
bench_python bench_load.py "$@"
