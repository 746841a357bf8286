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
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
bench_build
bench_python bench_provide.py "$@"
