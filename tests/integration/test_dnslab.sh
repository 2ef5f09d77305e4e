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
prog=$probe
stdin=/dev/null
# check NAME WANT_EXIT PATTERN -- ARGS...: run $prog (the probe, or mox
# for checkmox) with $stdin, compare the exit status, and grep
# stdout+stderr for PATTERN.
check() {
	name=$1 want=$2 pat=$3
	shift 4
	n=$((n + 1))
	out=$("$prog" "$@" <"$stdin" 2>&1)
	rc=$?
	if [ "$rc" -ne "$want" ] || ! printf '%s\n' "$out" | grep -q -- "$pat"; then
		echo "FAIL $name: exit $rc (want $want), want /$pat/ in:"
		printf '%s\n' "$out" | sed 's/^/    /'
		fails=$((fails + 1))
	else
		echo "ok   $name"
	fi
}
# checkmox: check with the mox binary itself.
checkmox() {
	prog=$build/mox
	check "$@"
	prog=$probe
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
# PTR of an address: its reverse name is asked (RFC 1035 3.5, RFC 3596 2.5).
check ptr-ipv4 0 '^mail.mox.example$' -- dns lookup $R PTR 127.0.0.1
check ptr-ipv6 0 '^mail.mox.example$' -- dns lookup $R ptr ::1
check ptr-ipv4-none 1 '4.0.0.127.in-addr.arpa PTR: not found' -- dns lookup $R PTR 127.0.0.4
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
check spf-header 0 '^Received-SPF: pass (domain mox.example) client-ip=127.0.0.1;' -- spf check $R mox.example 127.0.0.1
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

# The mox binary: every DNS-using command takes -resolver, and without it
# uses mox.conf's DNSResolvers (spec config.md: DNSResolvers).
if [ -x "$build/mox" ]; then
	checkmox mox-dns 0 '^127.0.0.1$' -- dns lookup $R A mox.example
	checkmox mox-ptr 0 '^mail.mox.example$' -- dns lookup $R ptr 127.0.0.1
	checkmox mox-spf 0 'status: pass' -- spf check $R mox.example 127.0.0.1
	checkmox mox-dnsbl 0 'healthy' -- dnsbl checkhealth $R dnsbl.example
	checkmox mox-dkim-lookup 0 'key type ed25519.*with dnssec' -- dkim lookup $R ed25519 mox.example
	checkmox mox-dmarc-lookup 0 'p=reject' -- dmarc lookup $R mox.example
	checkmox mox-dmarc-lookup-usage 2 'usage: mox dmarc lookup \[-resolver' -- dmarc lookup $R
	# A config whose DNSResolvers is the lab, one whose resolver does
	# not answer, and DKIM signing for mox.example with the lab's key.
	mkdir -p "$tmp/conf" "$tmp/dead"
	T=$(printf '\t')
	cat >"$tmp/conf/mox.conf" <<EOF
DataDir: data
LogLevel: info
Hostname: mail.mox.example
Listeners:
${T}local:
${T}${T}IPs:
${T}${T}${T}- 127.0.0.1
${T}${T}SMTP:
${T}${T}${T}Enabled: true
${T}${T}${T}NoSTARTTLS: true
Postmaster:
${T}Account: alice
${T}Mailbox: Postmaster
DNSResolvers:
${T}- $addr
EOF
	cat >"$tmp/conf/domains.conf" <<EOF
Domains:
${T}mox.example:
${T}${T}LocalpartCatchallSeparator: +
${T}${T}DKIM:
${T}${T}${T}Selectors:
${T}${T}${T}${T}ed25519:
${T}${T}${T}${T}${T}PrivateKeyFile: $src/../shared/tools/dnslab/example/dkim/ed25519.key.pem
${T}${T}${T}Sign:
${T}${T}${T}${T}- ed25519
Accounts:
${T}alice:
${T}${T}Domain: mox.example
${T}${T}Destinations:
${T}${T}${T}alice@mox.example: nil
EOF
	sed 's/^\t\(- \).*:[0-9]*$/\t\1127.0.0.1:9/' "$tmp/conf/mox.conf" >"$tmp/dead/mox.conf"
	cp "$tmp/conf/domains.conf" "$tmp/dead/domains.conf"
	C="-config $tmp/conf/mox.conf"
	D="-config $tmp/dead/mox.conf"
	checkmox conf-resolver 0 '(with dnssec)' -- $C dns lookup A mox.example
	checkmox conf-resolver-dkim 0 'key type ed25519' -- $C dkim lookup ed25519 mox.example
	checkmox conf-resolver-dmarc 0 'p=reject' -- $C dmarc lookup mox.example
	checkmox conf-dead-resolver 1 'temporary error' -- $D dns lookup A mox.example
	checkmox flag-over-conf 0 '^127.0.0.1$' -- $D dns lookup $R A mox.example
	checkmox no-conf-file 0 '^127.0.0.1$' -- -config "$tmp/none/mox.conf" dns lookup $R A mox.example
	# `dkim sign` signs as submission: d= the From domain, i= the
	# canonical From address (catchall separator and case removed).
	printf 'From: <Alice+News@mox.example>\r\nTo: <bob@mox.example>\r\nSubject: sign\r\n\r\nbody\r\n' >"$tmp/msg.eml"
	checkmox dkim-sign 0 'i=alice@mox.example;' -- $C dkim sign "$tmp/msg.eml"
	"$build/mox" $C dkim sign "$tmp/msg.eml" >"$tmp/signed.eml" 2>"$tmp/sign.err"
	checkmox dkim-verify-conf 0 'signature 0: pass d=mox.example s=ed25519' -- $C dkim verify "$tmp/signed.eml"
	checkmox dkim-verify-flag 0 'signature 0: pass d=mox.example s=ed25519' -- $D dkim verify $R "$tmp/signed.eml"
	stdin=$tmp/signed.eml
	checkmox dmarc-verify-flag 0 'dmarc pass' -- dmarc verify $R 127.0.0.1 alice@mox.example mail.mox.example
	checkmox dmarc-verify-conf 0 'dkim=pass' -- $C dmarc verify 127.0.0.1 alice@mox.example mail.mox.example
	stdin=/dev/null
else
	echo "test_dnslab: no $build/mox, mox checks skipped"
fi

echo "test_dnslab: $n checks, $fails failed"
[ "$fails" -eq 0 ]
