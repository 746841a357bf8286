#!/bin/sh
# Install what juki needs to build, test and run its demo, from Debian 12's
# own archive.  Idempotent: installs only what is missing.
# juki-ctl's printed documents (ctl/print.c) need pango, cairo and the
# Noto Serif CJK JP font; their tests read the PDFs back with poppler-utils.
# copy print sends a certified copy to the terminal's CUPS queue through libcups;
# tests/integration/test_copies.py runs a private cupsd (cups) with a printer of its own;
# printer-driver-cups-pdf gives a site a PDF queue to try it on (scripts/demo.sh).
# tests/integration/test_boardweb.py opens the board's web page in a headless chromium with an
# operator's certificate in an NSS database (libnss3-tools: pk12util, certutil).
set -eu

PACKAGES="
build-essential cmake ninja-build pkg-config
libssl-dev openssl libevent-dev libjansson-dev libyaml-dev libsqlite3-dev sqlite3
libcmocka-dev libargon2-dev libunistring-dev libcsv-dev
softhsm2 libengine-pkcs11-openssl opensc libp11-kit-dev
libpango1.0-dev libcairo2-dev fonts-noto-cjk poppler-utils
libcups2-dev cups printer-driver-cups-pdf
python3 python3-cryptography scdoc clang-format iproute2 procps
debhelper dpkg-dev fakeroot lintian python3-yaml
python3-holidays
prometheus
chromium libnss3-tools
"
# Packages a benchmark needs besides (scripts/bench-load.sh: postgresql-15), as arguments.
PACKAGES="$PACKAGES $*"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing:$missing" >&2
	echo "deps: run as root (or install them) to continue" >&2
	exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
