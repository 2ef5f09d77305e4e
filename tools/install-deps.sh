#!/bin/sh
# Install everything needed to build, run and test mox-c on Debian 12.
# Idempotent and quiet: packages already present are left alone. Run as root.
set -eu

PKGS="build-essential autoconf automake pkg-config git ca-certificates
libgnutls28-dev gnutls-bin nettle-dev libsqlite3-dev sqlite3 libldns-dev
ldnsutils libmicrohttpd-dev libjson-c-dev libcurl4-gnutls-dev libcmocka-dev
libidn2-dev libpcre2-dev libcrypt-dev python3 procps iproute2 curl swaks"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps.sh: missing packages:$missing; run as root" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
