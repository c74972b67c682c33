#!/usr/bin/env bash
# bench/faults/kill9.sh [KILLS] [SEED] - the long version of
# tests/faults/test_kill9.py: the daemon is killed with SIGKILL KILLS times
# (default 100) at seeded random points while Element's crypto keeps
# sending encrypted commands and LLM tool calls run. Prints one summary line
#   kill9: rounds=N commands=C lost=0 doubled=0 intents=I interrupted=J runs=R
# (lost/doubled must be 0; the script fails on the first violation, naming
# it and the seed to replay). Against a private Synapse; needs root (its
# chroot) and a build in build/ (MXFLEET_BIN overrides). Not part of ctest;
# the figures go into docs/testing.md.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
kills=${1:-100}
seed=${2:-$RANDOM}
export MXFLEET_BIN=${MXFLEET_BIN:-$repo/build/bot/mxfleet}
export MX_FAULT_KILLS=$kills MX_FAULT_SEED=$seed
export MX_TEST_TMP=${MX_TEST_TMP:-$repo/build/bench-faults}
export PYTHONPATH=$repo/tests/homeserver:$repo/tests/faults:$repo/tests/bot/integration
unset MX_HS_ENV # a private Synapse, started and stopped by the test
start=$(date +%s)
python3 "$repo/tests/faults/test_kill9.py"
echo "kill9: ${kills} kills in $(( $(date +%s) - start )) s (seed ${seed})"
