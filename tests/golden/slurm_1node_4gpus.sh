#!/usr/bin/env bash
#SBATCH --job-name=orch-qwen3-1p7b_lora_sft
#SBATCH --partition=a40
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=12:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@300
# Rendered by orch from templates/jobs/job.sh.j2: qwen3-1p7b/lora/sft (sft).
# The log (--output) is given to sbatch on its command line, not here.
set -uo pipefail
cd /cluster/orch

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# The environment's own tools first: LLaMA-Factory launches `torchrun` by name.
export PATH=/cluster/orch/.venv/bin"${PATH:+:$PATH}"
export ORCH_PYTHON=/cluster/orch/.venv/bin/python ORCH_JOB_DIR=/cluster/orch/jobs/qwen3-1p7b_lora_sft/20260101-000000-000000
export HF_HOME=/share/hf
export ORCH_MODEL_CACHE=/share/models
# A user's own LLaMA-Factory checkout wins over the installed package.
if [ -d LLaMA-Factory-main/src ]; then
  export PYTHONPATH="$PWD/LLaMA-Factory-main/src${PYTHONPATH:+:$PYTHONPATH}"
fi

# Before the time limit (--signal) or on preemption: requeue, so the next start
# resumes from the latest checkpoint. Bounded by MAX_REQUEUES. SLURM may send the
# signal early (its timer is coarse, worst on a requeued job): then the requeue
# waits until SIGNAL_SECONDS before the limit, so no attempt is wasted.
MAX_REQUEUES=3
SIGNAL_SECONDS=300
seconds_left() {  # squeue's %L: [D-]HH:MM:SS, MM:SS or SS
  squeue -h -j "$SLURM_JOB_ID" -o %L 2>/dev/null | awk -F'[-:]' '
    /^[0-9]+-/ {print (($1 * 24 + $2) * 60 + $3) * 60 + $4; exit}
    NF == 3 {print ($1 * 60 + $2) * 60 + $3; exit}
    NF == 2 {print $1 * 60 + $2; exit}
    NF == 1 && $1 ~ /^[0-9]+$/ {print $1; exit}'
}
do_requeue() {
  echo "orch: time limit near: requeueing job $SLURM_JOB_ID ($((${SLURM_RESTART_COUNT:-0} + 1))/$MAX_REQUEUES)"
  scontrol requeue "$SLURM_JOB_ID"
}
requeue() {
  local left
  if [ -z "${SLURM_JOB_ID:-}" ] || [ "${SLURM_RESTART_COUNT:-0}" -ge "$MAX_REQUEUES" ]; then
    echo "orch: not requeueing (requeues ${SLURM_RESTART_COUNT:-0}/$MAX_REQUEUES, or not under SLURM)"
    return
  fi
  left=$(seconds_left)
  if [ -n "$left" ] && [ "$left" -gt "$SIGNAL_SECONDS" ]; then
    echo "orch: requeue signal came ${left}s before the limit; requeueing in $((left - SIGNAL_SECONDS))s"
    (sleep $((left - SIGNAL_SECONDS)); do_requeue) &
    return
  fi
  do_requeue
}
trap requeue USR1

# Several processes on this node (one per GPU, or --processes-per-node: gloo on CPU).
export FORCE_TORCHRUN=1 NNODES=1 NODE_RANK=0 NPROC_PER_NODE=4
export MASTER_ADDR=127.0.0.1 MASTER_PORT=29969
"$ORCH_PYTHON" -m orchestrator.jobrun "$ORCH_JOB_DIR" &
child=$!
# `wait` returns early when a trapped signal arrives; wait again until the child is gone.
while :; do
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break
done
exit $rc
