# What every scripts/bench-*.sh and scripts/sim-nation.sh does before it measures: the
# packages it needs (scripts/deps.sh, with the extra ones it names), an up-to-date build/
# (RelWithDebInfo), then the benchmark itself.  Sourced by them, not run.
# shellcheck shell=sh

top=$(cd "$(dirname "$0")/.." && pwd)

# bench_build [PACKAGE...]: the packages, then build/.
# shellcheck disable=SC2120 # the packages are optional
bench_build() {
	"$top/scripts/deps.sh" "$@"
	cmake -S "$top" -B "$top/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	ninja -C "$top/build" >/dev/null
}

# bench_python SCRIPT [ARG...]: tests/bench/SCRIPT on that build, in place of this shell.
bench_python() {
	script=$1
	shift
	JUKI_BUILD_DIR="$top/build" JUKI_SOURCE_DIR="$top" PYTHONDONTWRITEBYTECODE=1 \
		exec python3 "$top/tests/bench/$script" "$@"
}
