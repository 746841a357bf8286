#!/bin/sh
# 異動等情報 to the certification authority, measured (docs/benchmarks.md): the time from
# a death recorded at 千代田区's CS to the OCSP answer "revoked" for that resident's
# certificate, through CS -> pref -> jlis -> juki-authlinkd -> the reference authority of
# the tests (an OpenSSL CA and `openssl ocsp`), p50 and p99 over 1,000 deaths on loopback,
# with in the same run the reference: a bare OCSP query and one `openssl ca -revoke`.
#
#   scripts/bench-authlink.sh                  1,000 deaths (about 10 minutes)
#   scripts/bench-authlink.sh --count 100      a quick run
#   scripts/bench-authlink.sh --per-file 10 --interval 2    other pacing (default 2 every 1 s)
#
# Not part of scripts/test.sh: a benchmark prints figures, it does not pass or fail.
set -eu
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
bench_build
bench_python bench_authlink.py "$@"
