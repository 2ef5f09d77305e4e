#!/bin/sh
# test_dnslab.sh: the ldns resolver, SPF, iprev and DNSBL against real DNS
# with DNSSEC: a dnslab (../shared/tools/dnslab) on loopback serving its
# example zones: mox.example (signed), insecure.example (unsigned),
# bogus.example (bogus signatures), dnsbl.example and the reverse zones.
# Skips (exit 77) when the lab cannot start (nsd, unbound, ldnsutils
# missing and not root).
set -u
src=${MOX_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${MOX_BUILDDIR:-.}
probe=$build/tests/integration/test_dnslab_probe
dnslab=$src/../shared/tools/dnslab/dnslab

if [ ! -x "$dnslab" ]; then
	echo "test_dnslab: no dnslab at $dnslab, skipping"
	exit 77
fi
tmp=$(mktemp -d)
trap '"$dnslab" stop "$tmp/dns" >/dev/null 2>&1; rm -rf "$tmp"' EXIT INT TERM
# big.example: a TXT larger than the EDNS UDP size, so the answer comes
# truncated over UDP and the resolver must retry over TCP (RFC 7766 5).
mkdir -p "$tmp/zones"
{
	echo '; dnslab: signed'
	printf 'big TXT'
	i=0
	while [ $i -lt 12 ]; do
		printf ' "%s"' "$(printf '%0200d' $i)"
		i=$((i + 1))
	done
	echo
} >"$tmp/zones/big.example.zone"
if ! addr=$("$dnslab" start "$tmp/dns" "$src/../shared/tools/dnslab/example" \
    "$tmp/zones/big.example.zone" 2>"$tmp/start.err"); then
	cat "$tmp/start.err"
	echo "test_dnslab: dnslab did not start, skipping"
	exit 77
fi

fails=0
n=0
# check NAME WANT_EXIT PATTERN -- ARGS...: run the probe, compare the exit
# status, and grep stdout+stderr for PATTERN.
check() {
	name=$1 want=$2 pat=$3
	shift 4
	n=$((n + 1))
	out=$("$probe" "$@" 2>&1)
	rc=$?
	if [ "$rc" -ne "$want" ] || ! printf '%s\n' "$out" | grep -q -- "$pat"; then
		echo "FAIL $name: exit $rc (want $want), want /$pat/ in:"
		printf '%s\n' "$out" | sed 's/^/    /'
		fails=$((fails + 1))
	else
		echo "ok   $name"
	fi
}
R="-resolver $addr"

# Authenticity of answers (spec/auth.md 1, RFC 6840 5.7).
check signed-a 0 '(with dnssec)' -- dns lookup $R A mox.example
check signed-a-addr 0 '^127.0.0.1$' -- dns lookup $R A mox.example
check signed-aaaa 0 '^::1$' -- dns lookup $R AAAA mox.example
check signed-mx 0 '^10 mail.mox.example$' -- dns lookup $R MX mox.example
check signed-txt-joined 0 '"v=DKIM1;.*' -- dns lookup $R TXT rsa2048._domainkey.mox.example
check signed-tlsa 0 '^3 1 1 ' -- dns lookup $R TLSA _25._tcp.mail.mox.example
check signed-cname 0 '^cname alias.mox.example' -- dns lookup $R A alias.mox.example
check signed-ptr 0 '^mail.mox.example$' -- dns lookup $R PTR 1.0.0.127.in-addr.arpa
check signed-nxdomain 1 'not found' -- dns lookup $R A nonexistent.mox.example
check signed-nxdomain-auth 1 '(with dnssec)' -- dns lookup $R A nonexistent.mox.example
check unsigned-mx 0 '(without dnssec)' -- dns lookup $R MX insecure.example
check bogus-mx 1 'temporary error' -- dns lookup $R MX bogus.example
check bogus-ede 1 'extended dns error code' -- dns lookup $R MX bogus.example
check tcp-fallback 0 '"0\{199\}00\{199\}1' -- dns lookup $R TXT big.big.example
check lame 1 'temporary error' -- dns lookup $R A lame.example
check nullmx 0 '^0 \.$' -- dns lookup $R MX nullmx.example
check bad-type 2 'unknown record type' -- dns lookup $R BOGUS mox.example

# SPF over real DNS.
check spf-pass 0 'status: pass' -- spf check $R mox.example 127.0.0.1
check spf-pass-dnssec 0 '(with dnssec)' -- spf check $R mox.example 127.0.0.1
check spf-pass-v6 0 'status: pass' -- spf check $R mox.example ::1
check spf-fail 0 'status: fail' -- spf check $R mox.example 192.0.2.1
check spf-unsigned 0 '(without dnssec)' -- spf check $R insecure.example 127.0.0.5
check spf-bogus 0 'status: temperror' -- spf check $R bogus.example 127.0.0.6
check spf-none 0 'status: none' -- spf check $R nonexistent.mox.example 127.0.0.1
check spf-header 0 '^Received-SPF: pass' -- spf check $R mox.example 127.0.0.1
check spf-lookup 0 'v=spf1 ip4:127.0.0.1' -- spf lookup $R mox.example
check spf-parse 0 '^v=spf1 ip4:192.0.2.0/24 -all$' -- spf parse 'v=spf1 ip4:192.0.2.0/24 -all'
check spf-parse-bad 1 'invalid spf record' -- spf parse 'v=spf1 foo'

# iprev (RFC 8601 3).
check iprev-pass 0 'status: pass' -- iprev $R 127.0.0.1
check iprev-pass-dnssec 0 '(with dnssec)' -- iprev $R 127.0.0.1
check iprev-fail 0 'status: fail' -- iprev $R 127.0.0.3
check iprev-noptr 0 'status: permerror' -- iprev $R 127.0.0.4
check iprev-insecure 0 '(without dnssec)' -- iprev $R 127.0.0.5
check iprev-temperror 0 'status: temperror' -- iprev $R 127.0.0.6

# DNSBL (RFC 5782).
check dnsbl-health 0 'healthy' -- dnsbl checkhealth $R dnsbl.example
check dnsbl-listed 0 'status: fail' -- dnsbl check $R dnsbl.example 127.0.0.2
check dnsbl-reason 0 'reason: ' -- dnsbl check $R dnsbl.example 127.0.0.2
check dnsbl-listed-v6 0 'status: fail' -- dnsbl check $R dnsbl.example ::ffff:127.0.0.2
check dnsbl-clean 0 'status: pass' -- dnsbl check $R dnsbl.example 127.0.0.1
check dnsbl-unhealthy 1 'unhealthy' -- dnsbl checkhealth $R mox.example
check dnsbl-temperror 1 'status: temperror' -- dnsbl check $R bogus.example 127.0.0.2

echo "test_dnslab: $n checks, $fails failed"
[ "$fails" -eq 0 ]
