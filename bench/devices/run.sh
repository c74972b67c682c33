#!/usr/bin/env bash
# bench/devices/run.sh BUILD_DIR [N]
# Starts a private sshd (tests/devices/sshd-fixture) and the two-namespace
# WireGuard link with mxfleet-agent (tests/devices/wgnet), runs
# bench_devices against both, and stops everything again. Needs root.
set -euo pipefail
build=$(cd "${1:?usage: run.sh BUILD_DIR [N]}" && pwd)
n=${2:-200}
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/mxf-bench-devices.XXXXXX)
cleanup() {
  "$src/tests/devices/sshd-fixture" stop "$work/sshd" || true
  "$src/tests/devices/wgnet" cleanup "$work/wg" || true
  rm -rf "$work"
}
chmod 0755 "$work" # the agent runs as nobody
trap cleanup EXIT
"$src/tests/devices/sshd-fixture" start "$work/sshd"
"$src/tests/devices/wgnet" setup "$work/wg" "$build/devices/agent/mxfleet-agent"
echo "# $(nproc) cores, $(uname -r), n=$n"
"$build/bench/devices/bench_devices" local "$n"
"$build/bench/devices/bench_devices" ssh "$work/sshd" "$n"
"$src/tests/devices/wgnet" exec "$work/wg" -- "$build/bench/devices/bench_devices" wg "$work/wg" "$n"
