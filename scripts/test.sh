#!/bin/sh
# Build juki and pass every test: unit and integration tests on a normal
# build, all of them again under AddressSanitizer and UBSan, the formatting
# check and the check that docs/compliance.md names only tests that exist.
# Tests labelled `slow` stay out (no test carries that label today); the
# fuzzers (scripts/fuzz.sh) and the benchmarks (scripts/bench-*.sh) run by
# hand.
#
#   scripts/test.sh            everything CI runs
#   JOBS=4 scripts/test.sh     parallelism (default: number of CPUs)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=${JOBS:-$(nproc)}

"$top/scripts/deps.sh"

step() { printf '\n== %s\n' "$*"; }

step "format: clang-format"
bad=$(git ls-files '*.c' '*.h' | while read -r f; do
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"
done)
if [ -n "$bad" ]; then
	echo "clang-format would change:" $bad >&2
	exit 1
fi

step "layers: scripts/check-layers.sh"
"$top/scripts/check-layers.sh"

step "docs: every test docs/compliance.md names exists"
"$top/scripts/check-compliance.sh"

step "build: build/ (RelWithDebInfo, -Werror)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build

step "test: unit and integration"
(cd build && ctest --output-on-failure -j "$jobs" -LE slow)

step "build: build-asan/ (ASan + UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DJUKI_SANITIZE=ON >/dev/null
ninja -C build-asan

# The integration tests run the sanitized daemons too; the harness fails a
# case when a daemon's log holds a sanitizer report or it exits non-zero.
step "test: unit and integration tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure -j "$jobs" -LE slow)

step "all tests passed"
