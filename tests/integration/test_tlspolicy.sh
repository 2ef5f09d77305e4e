#!/bin/sh
# test_tlspolicy.sh: MTA-STS and DANE pass and fail cases against real DNS
# with DNSSEC (a dnslab from ../shared/tools/dnslab with its example zones
# plus tlsp.example made here) and local servers: an HTTPS server for the
# policies on 127.0.0.16 (certificate from a CA made here, given to
# libcurl as the CA file; mta-sts.<domain> reached through CURLOPT_CONNECT_TO)
# and TLS servers on 127.0.0.17 (dnslab's mail.mox.example chain, which
# its TLSA records match) and 127.0.0.18 (another certificate).
# Skips (exit 77) without dnslab, certtool or python3.
set -u
src=${MOX_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${MOX_BUILDDIR:-.}
probe=$build/tests/integration/test_tlspolicy_probe
dnslab=$src/../shared/tools/dnslab/dnslab
labtls=$src/../shared/tools/dnslab/example/tls

for t in certtool python3; do
	if ! command -v $t >/dev/null 2>&1; then
		echo "test_tlspolicy: no $t, skipping"
		exit 77
	fi
done
if [ ! -x "$dnslab" ]; then
	echo "test_tlspolicy: no dnslab at $dnslab, skipping"
	exit 77
fi
tmp=$(mktemp -d)
srvpid=
cleanup() {
	[ -n "$srvpid" ] && kill "$srvpid" 2>/dev/null
	"$dnslab" stop "$tmp/dns" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# Certificates: a CA and a server certificate for the policy hosts.
cat >"$tmp/ca.tmpl" <<T
cn = "tlsp test ca"
ca
cert_signing_key
expiration_days = 2
T
{
	echo 'cn = "mta-sts.good.tlsp.example"'
	for d in good testing invalid big ctype redirect missing; do
		echo "dns_name = mta-sts.$d.tlsp.example"
	done
	echo 'tls_www_server'
	echo 'encryption_key'
	echo 'signing_key'
	echo 'expiration_days = 2'
} >"$tmp/srv.tmpl"
if ! { certtool --generate-privkey --key-type=ecdsa --outfile "$tmp/ca.key" &&
    certtool --generate-self-signed --load-privkey "$tmp/ca.key" \
	--template "$tmp/ca.tmpl" --outfile "$tmp/ca.crt" &&
    certtool --generate-privkey --key-type=ecdsa --outfile "$tmp/srv.key" &&
    certtool --generate-certificate --load-privkey "$tmp/srv.key" \
	--load-ca-certificate "$tmp/ca.crt" --load-ca-privkey "$tmp/ca.key" \
	--template "$tmp/srv.tmpl" --outfile "$tmp/srv.crt"; } \
    >"$tmp/certtool.log" 2>&1; then
	cat "$tmp/certtool.log"
	echo "test_tlspolicy: certtool failed"
	exit 1
fi

mkdir -p "$tmp/zones"
cat >"$tmp/zones/tlsp.example.zone" <<'Z'
; dnslab: signed
$ORIGIN tlsp.example.
_mta-sts.good       TXT "v=STSv1; id=good1"
_mta-sts.testing    TXT "v=STSv1; id=t1"
_mta-sts.invalid    TXT "v=STSv1; id=inv1"
_mta-sts.missing    TXT "v=STSv1; id=m1"
_mta-sts.redirect   TXT "v=STSv1; id=r1"
_mta-sts.big        TXT "v=STSv1; id=b1"
_mta-sts.ctype      TXT "v=STSv1; id=c1"
_mta-sts.webpki     TXT "v=STSv1; id=w1"
_mta-sts.two        TXT "v=STSv1; id=a"
_mta-sts.two        TXT "v=STSv1; id=b"
_mta-sts.badrec     TXT "v=STSv1; id=a-b"
ta                  A   127.0.0.17
_25._tcp.ta         TLSA 2 1 1 bda5eb892d58583311d626a8db0701d585e41028a688ded347257af6658698ca
unusable            A   127.0.0.18
_25._tcp.unusable   TLSA 1 1 1 0d799cd4eaf5e7c007dcc6ccfcc089336cee6c46921c69f483dd9dd5228e37db
Z
if ! addr=$("$dnslab" start "$tmp/dns" "$src/../shared/tools/dnslab/example" \
    "$tmp/zones/tlsp.example.zone" 2>"$tmp/start.err"); then
	cat "$tmp/start.err"
	echo "test_tlspolicy: dnslab did not start, skipping"
	exit 77
fi

port=$((20000 + $$ % 20000))
python3 "$src/tests/integration/test_tlspolicy_https.py" "$port" \
    "https=127.0.0.16:$tmp/srv.crt:$tmp/srv.key" \
    "tls=127.0.0.17:$labtls/mail-chain.crt:$labtls/mail.key" \
    "tls=127.0.0.18:$tmp/srv.crt:$tmp/srv.key" >"$tmp/srv.out" 2>&1 &
srvpid=$!
i=0
while ! grep -q ready "$tmp/srv.out" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 50 ] || ! kill -0 "$srvpid" 2>/dev/null; then
		cat "$tmp/srv.out"
		echo "test_tlspolicy: servers did not start"
		exit 1
	fi
	sleep 0.1
done

fails=0
n=0
# check NAME WANT_EXIT PATTERN -- ARGS...: run the probe, compare the exit
# status, and grep stdout+stderr for every |-separated PATTERN.
check() {
	name=$1 want=$2 pats=$3
	shift 4
	n=$((n + 1))
	out=$("$probe" "$@" 2>&1)
	rc=$?
	bad=0
	[ "$rc" -ne "$want" ] && bad=1
	oldifs=$IFS
	IFS='|'
	for pat in $pats; do
		printf '%s\n' "$out" | grep -q -- "$pat" || bad=1
	done
	IFS=$oldifs
	if [ $bad -ne 0 ]; then
		echo "FAIL $name: exit $rc (want $want), want /$pats/ in:"
		printf '%s\n' "$out" | sed 's/^/    /'
		fails=$((fails + 1))
	else
		echo "ok   $name"
	fi
}
R="-resolver $addr"
CT="-connect-to ::127.0.0.16:$port"
sts() {
	d=$tmp/sts.$1
	mkdir -p "$d"
	echo "-datadir $d -ca $tmp/ca.crt $CT"
}

# MTA-STS (RFC 8461; spec/queue.md 5.2, 5.9)
check sts-enforce 0 'sts=policy mode=enforce|report=-' -- sts $R -domain good.tlsp.example $(sts good)
check sts-cached 0 'sts=policy mode=enforce|report=- fallback=0' -- sts $R -domain good.tlsp.example $(sts good)
check sts-testing 0 'sts=policy mode=testing' -- sts $R -domain testing.tlsp.example $(sts testing)
check sts-no-record 1 'sts=none|report=-' -- sts $R -domain nomx.mox.example -datadir "$(mkdir -p "$tmp/sts.none" && echo "$tmp/sts.none")" -ca "$tmp/ca.crt" -connect-to "::127.0.0.1:1"
check sts-invalid-policy 1 'sts=none|report=sts-policy-invalid' -- sts $R -domain invalid.tlsp.example $(sts invalid)
check sts-404 1 'sts=none|report=sts-policy-fetch-error|no policy (404)' -- sts $R -domain missing.tlsp.example $(sts missing)
check sts-backoff 1 'report=back-off-after-recent-fetch-error' -- sts $R -domain missing.tlsp.example $(sts missing)
check sts-redirect-not-followed 1 'sts=none|report=sts-policy-fetch-error|status not 200' -- sts $R -domain redirect.tlsp.example $(sts redirect)
check sts-too-big 1 'sts=none|report=sts-policy-fetch-error|64 KiB' -- sts $R -domain big.tlsp.example $(sts big)
check sts-content-type 1 'sts=none|report=sts-policy-fetch-error|content type' -- sts $R -domain ctype.tlsp.example $(sts ctype)
check sts-webpki 1 'sts=none|report=sts-webpki-invalid' -- sts $R -domain webpki.tlsp.example $(sts webpki)
check sts-untrusted-ca 1 'report=sts-webpki-invalid' -- sts $R -domain good.tlsp.example -datadir "$(mkdir -p "$tmp/sts.untrusted" && echo "$tmp/sts.untrusted")" -ca "$labtls/ca.crt" $CT
check sts-two-records 1 'sts=none|report=-' -- sts $R -domain two.tlsp.example $(sts two)
check sts-bad-record 1 'sts=none|report=sts-policy-invalid' -- sts $R -domain badrec.tlsp.example $(sts badrec)
check sts-dns-temperror 1 'sts=temperror' -- sts $R -domain lame.example $(sts lame)

# DANE (RFC 7672; spec/queue.md 5.3) and PKIX under MTA-STS enforce.
T17="-connect 127.0.0.17:$port"
T18="-connect 127.0.0.18:$port"
check dane-ee-pass 0 'verify_dane=1|ok=1 pkix=0 dane=1' -- tls $R -domain mox.example -host mail.mox.example $T17
check dane-wrong-cert 1 'verify_dane=1|ok=0 .*result=validation-failure reason=dane-no-match' -- tls $R -domain mox.example -host mail.mox.example $T18
check dane-ta-pass 0 'verify_dane=1|ok=1 pkix=0 dane=1' -- tls $R -domain mox.example -host ta.tlsp.example $T17
check dane-ta-name-mismatch 1 'ok=0 .*reason=dane-no-match' -- tls $R -domain tlsp.example -host ta.tlsp.example $T17
check dane-insecure-zone 0 'dane_applies=0 tls_required=0|fallback=1|ok=1' -- tls $R -domain insecure.example -host mail.insecure.example $T18
check dane-bogus-tlsa 1 'action=failtemp|hostdetail=dnssec-invalid' -- tls $R -domain mox.example -host badtlsa.mox.example $T17
check dane-unusable 0 'tls_required=1 verify_dane=0 verify_pkix=0 fallback=0|result=tlsa-invalid reason=all-unusable-records+ignored' -- tls $R -domain mox.example -host unusable.tlsp.example $T18
check pkix-enforce-pass 0 'verify_pkix=1|ok=1 pkix=1' -- tls $R -domain good.tlsp.example -host nomx.mox.example $T17 -ca "$labtls/ca.crt" -datadir "$tmp/sts.good" $CT
check pkix-enforce-host-mismatch 1 'verify_pkix=1|ok=0 pkix=0 .*result=certificate-host-mismatch' -- tls $R -domain good.tlsp.example -host mail.insecure.example $T17 -ca "$labtls/ca.crt" -datadir "$tmp/sts.good" $CT
check pkix-enforce-untrusted 1 'ok=0 .*result=certificate-not-trusted' -- tls $R -domain good.tlsp.example -host nomx.mox.example $T17 -ca "$tmp/ca.crt" -datadir "$tmp/sts.good" $CT
check sts-mx-mismatch-skip 1 'action=skip' -- tls $R -domain good.tlsp.example -host ta.tlsp.example $T17 -ca "$labtls/ca.crt" -datadir "$tmp/sts.good" $CT

echo "test_tlspolicy: $((n - fails)) passed, $fails failed"
[ $fails -eq 0 ]
