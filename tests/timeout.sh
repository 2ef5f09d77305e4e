#!/bin/sh
# Run one test with a time bound, so a hung test fails instead of stalling
# the suite. MOX_TEST_TIMEOUT (seconds, default 900) changes the bound.
exec timeout -k 10 "${MOX_TEST_TIMEOUT:-900}" "$@"
