#!/usr/bin/env bash
# Stop what scripts/slurm-up.sh started: cancel jobs, then slurmd and slurmctld.
set -uo pipefail
DIR=${ORCH_SLURM_DIR:-/var/lib/orch-slurm}
ids=$(squeue -h -o %A 2>/dev/null || true)
[ -n "$ids" ] && scancel $ids 2>/dev/null
for d in slurmd slurmctld; do
  pidfile="$DIR/run/$d.pid"
  [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null && echo "[slurm-down] stopped $d" >&2
done
exit 0
