#!/bin/sh
# Install everything needed to build, run and test mox-c on Debian 12.
# Idempotent and quiet: packages already present are left alone. Run as root.
# Daemons among the test packages (nsd, unbound, postfix) are installed
# without being started: tests run their own instances on loopback.
set -eu

PKGS="build-essential autoconf automake pkg-config git ca-certificates
libgnutls28-dev gnutls-bin nettle-dev libsqlite3-dev sqlite3 libldns-dev
ldnsutils libmicrohttpd-dev libjson-c-dev libcurl4-gnutls-dev libcmocka-dev
libidn2-dev libpcre2-dev libcrypt-dev publicsuffix
python3 procps iproute2 util-linux curl
python3-dkim opendkim-tools nsd unbound
swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl postfix
isync cyrus-clients mutt tmux"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -n "$missing" ] || exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: missing packages:$missing; run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	# Keep package scripts from starting system daemons on ports 25/53.
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	policy=yes
fi
rc=0
# shellcheck disable=SC2086
if ! apt-get install -y -qq --no-install-recommends $missing >"$log" 2>&1; then
	apt-get update -qq >"$log" 2>&1 || true
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >"$log" 2>&1 || rc=$?
fi
[ -n "$policy" ] && rm -f /usr/sbin/policy-rc.d
if [ "$rc" -ne 0 ]; then
	cat "$log" >&2
	echo "install-deps.sh: apt-get install failed" >&2
fi
rm -f "$log"
exit "$rc"
