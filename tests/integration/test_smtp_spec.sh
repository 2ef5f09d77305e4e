#!/bin/sh
# SMTP rules of spec/smtp.md (STARTTLS pipelining, 421 closes, HELO
# lookup, RequireSTARTTLS and TLS report addresses) on 127.0.0.50.
exec python3 "${MOX_SRCDIR:-$(dirname "$0")/../..}/tests/integration/test_smtp_spec.py"
