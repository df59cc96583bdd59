#!/usr/bin/env bash
# Runs the simulator's multi-seed check over many seeds (default 1000):
#   npm run sim:soak -- --seeds N
# A failure prints its seed and the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=1000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    *) echo "usage: sim-soak.sh [--seeds N]" >&2; exit 2 ;;
  esac
done
npx tsc -p tsconfig.json
ORDO_SIM_SEEDS="$seeds" npx mocha --no-config --timeout 0 dist/test/sim/multi-seed.test.js
