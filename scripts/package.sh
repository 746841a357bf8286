#!/bin/sh
# Build the Debian packages of juki (debian/, dpkg-buildpackage) from this
# tree, in a copy so the tree stays clean, and check them with lintian.
#
#   scripts/package.sh [--out DIR] [--no-lintian]
#
# The .deb files go to DIR (default: dist/).  Lintian's tags that are
# expected are explained in debian/*.lintian-overrides; any other tag fails.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/dist"
lintian=1
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift 2 ;;
	--no-lintian) lintian=0; shift ;;
	*) echo "usage: scripts/package.sh [--out DIR] [--no-lintian]" >&2; exit 2 ;;
	esac
done

"$top/scripts/deps.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/juki" "$out"
# The files git knows, as they are in the tree (committed or not).
(cd "$top" && git ls-files -z --cached --others --exclude-standard | \
	tar --null -T - -cf -) | tar -C "$work/juki" -xf -

echo "package: building in $work/juki"
(cd "$work/juki" && dpkg-buildpackage -b -us -uc -j"$(nproc)" >"$work/build.log" 2>&1) || {
	tail -50 "$work/build.log" >&2
	echo "package: dpkg-buildpackage failed (log above)" >&2
	exit 1
}
cp "$work"/*.deb "$out/"
ls -1 "$out"/*.deb

if [ "$lintian" = 1 ]; then
	echo "package: lintian"
	# --fail-on warning: an error or a warning not overridden with its reason fails the build.
	lintian --fail-on error,warning --info "$work"/*.changes
fi
