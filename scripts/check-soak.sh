#!/usr/bin/env bash
# Long fault campaigns of the history checker (`npm run check:soak`): for
# each workload and each fault kind, one campaign of ORDO_SOAK_DURATION
# (default 60s) against a local cluster in its own directory, with
# ORDO_SOAK_QPS QPs (default 2) and ORDO_SOAK_CLIENTS clients (default 8).
# Every campaign prints its verdict; the script exits 1 when any campaign
# found a forbidden anomaly, a bank violation or a lost acknowledged append,
# 2 when one could not run. Histories are kept under ORDO_SOAK_DIR (default
# a new temporary directory), in each cluster's check/ folder.
set -uo pipefail
cd "$(dirname "$0")/.."

DURATION=${ORDO_SOAK_DURATION:-60s}
QPS=${ORDO_SOAK_QPS:-2}
CLIENTS=${ORDO_SOAK_CLIENTS:-8}
INTERVAL=${ORDO_SOAK_FAULT_INTERVAL:-5s}
SEED=${ORDO_SOAK_SEED:-$RANDOM}
ROOT=${ORDO_SOAK_DIR:-$(mktemp -d /tmp/ordo-soak-XXXXXX)}
# The QPs run as postgres: it must be able to reach the clusters (mktemp makes 0700).
chmod 755 "$ROOT"
WORKLOADS=${ORDO_SOAK_WORKLOADS:-"append bank"}
FAULTS=${ORDO_SOAK_FAULTS:-"none kill-sidecar stall-journal kill-qp all"}

[ -f dist/src/cli/main.js ] || npx --no-install tsc -p tsconfig.json

log() { printf 'check:soak: %s\n' "$*" >&2; }
log "seed $SEED, $DURATION per campaign, $QPS QP(s), $CLIENTS clients, histories under $ROOT"

status=0
for workload in $WORKLOADS; do
  for faults in $FAULTS; do
    dir="$ROOT/$workload-$faults"
    log "campaign: $workload workload, faults $faults"
    node bin/ordo.js check --dir "$dir" --qps "$QPS" --clients "$CLIENTS" --duration "$DURATION" \
      --workload "$workload" --faults "$faults" --fault-interval "$INTERVAL" --seed "$SEED"
    rc=$?
    if [ "$rc" -ne 0 ]; then
      log "FAILED ($rc): $workload workload, faults $faults (seed $SEED, history in $dir/check)"
      if [ "$rc" -gt "$status" ]; then status=$rc; fi
    fi
  done
done
if [ "$status" -eq 0 ]; then log "every campaign valid"; fi
exit "$status"
