#!/bin/sh
# Run every libFuzzer target of tests/fuzz (tests/fuzz/README.md) for a while:
# the slow tier, never part of scripts/test.sh.
#
#   scripts/fuzz.sh            60 seconds per target
#   scripts/fuzz.sh 600        ten minutes per target
#   FUZZ_TARGETS="msg frame" scripts/fuzz.sh 30    only these targets
#
# Builds build-fuzz/ with clang and -DJUKI_FUZZ=ON.  Each target starts from
# its seed corpus (tests/fuzz/corpus/<target>, never written to) and its
# dictionary; the inputs it finds go to a scratch directory (FUZZ_SCRATCH,
# default a new one under $TMPDIR), crashes to build-fuzz/crashes/.  Exits 1
# when any target crashed, leaked or broke an invariant.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
secs=${1:-60}
case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [seconds-per-target]" >&2
	exit 2
	;;
esac
build=$top/build-fuzz
crashes=$build/crashes
scratch=${FUZZ_SCRATCH:-$(mktemp -d "${TMPDIR:-/tmp}/juki-fuzz.XXXXXX")}
# Every tests/fuzz/fuzz_<target>.c, as tests/fuzz/CMakeLists.txt builds them.
all=$(for f in tests/fuzz/fuzz_*.c; do
	t=${f#tests/fuzz/fuzz_}
	printf '%s ' "${t%.c}"
done)
targets=${FUZZ_TARGETS:-$all}

step() { printf '\n== %s\n' "$*"; }

"$top/scripts/deps.sh"
probe=$(mktemp "${TMPDIR:-/tmp}/juki-fuzz-probe.XXXXXX")
if ! printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' |
	clang -fsanitize=fuzzer -x c - -o "$probe" >/dev/null 2>&1; then
	rm -f "$probe"
	echo "fuzz: needs clang with libFuzzer (Debian 12: apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
fi
rm -f "$probe"

step "build: build-fuzz/ (clang, libFuzzer + ASan + UBSan)"
cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DJUKI_FUZZ=ON >/dev/null
ninja -C "$build" -j "${JOBS:-$(nproc)}" fuzz

mkdir -p "$crashes"
failed=
for t in $targets; do
	step "fuzz: $t for ${secs}s"
	mkdir -p "$scratch/$t"
	dict=
	if [ -f "tests/fuzz/$t.dict" ]; then
		dict=-dict=tests/fuzz/$t.dict
	fi
	# shellcheck disable=SC2086 # $dict is one word or none
	if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$crashes/$t-" $dict \
		"$scratch/$t" "tests/fuzz/corpus/$t" 2>"$scratch/$t.log"; then
		failed="$failed $t"
		grep -E 'ERROR|SUMMARY|invariant broken|runtime error' "$scratch/$t.log" | head -5 >&2 || true
	fi
	# The last status line carries the coverage reached.
	grep -E '^#[0-9]+.*(DONE|cov:)' "$scratch/$t.log" | tail -1
	grep -E '^stat::(number_of_executed_units|new_units_added)' "$scratch/$t.log"
done

step "corpus found: $scratch (logs: $scratch/<target>.log)"
if [ -n "$failed" ]; then
	echo "fuzz: crashes in:$failed (inputs in $crashes)" >&2
	exit 1
fi
step "no crashes"
