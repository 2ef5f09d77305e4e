#!/bin/sh
# test_runtime.sh: run test_runtime.py (the network runtime over loopback).
dir=$(dirname "$0")
exec python3 "$dir/test_runtime.py" "$@"
