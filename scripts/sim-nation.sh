#!/bin/sh
# The nation's peak day on one machine (docs/benchmarks.md, "The nation's peak day"):
# 1,741 municipalities, each a simulated CS with its own certificate, through a real
# gateway to the 47 real prefectural servers and the national server(s); a peak day's
# 300,000 changes spread by population weight; the time until every change is recorded
# and reconciled at the national centre(s), nothing lost or doubled, CPU and RSS per
# process kind.
#
#   scripts/sim-nation.sh                                   the whole nation (about 2 minutes
#                                                           with the set-up)
#   scripts/sim-nation.sh --municipalities 40 --changes 20000   a quick run
#   scripts/sim-nation.sh --centres east,west               two national centres (once
#                                                           juki-prefd has `centres`)
#   scripts/sim-nation.sh --dir /var/tmp --json             another disk; figures as JSON
#
# Bounded: --timeout (default 300 s) stops a run that does not finish. Not part of
# scripts/test.sh: a benchmark prints figures; it exits 1 only when something was lost,
# doubled or not reconciled.
set -eu
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
bench_build
bench_python sim_nation.py "$@"
