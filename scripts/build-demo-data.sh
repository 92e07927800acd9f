#!/usr/bin/env bash
# Build data/student_mental/ (the demo dataset) from the whole real CPsyCoun
# sample with orch's own data pipeline: normalize -> select (every topic, long
# dialogues cut into 200-character windows) -> label (rules, each window on its
# own text) -> prepare (windows of one dialogue in one split, stratified on the
# risk field, at-risk train rows oversampled to a quarter of train).
# Deterministic: the same sample gives the same files. Usage:
#   scripts/build-demo-data.sh [CPSYCOUN_SAMPLE_DIR]   (default ../shared/datasets/cpsycoun-sample)
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLE=${1:-../shared/datasets/cpsycoun-sample}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ORCH=.venv/bin/orch
$ORCH data normalize "$SAMPLE/CPsyCounD" -o "$WORK/unified.jsonl"
# Short windows (200 characters) keep a CPU demo fast: SmolLM2 reads Chinese at ~1.8 tokens a character.
$ORCH data select "$WORK/unified.jsonl" -o "$WORK/selected.jsonl" --all-topics --max-chars 200 --max-turns 12 \
  --max-windows 8 --min-assistant-chars 20
$ORCH data label "$WORK/selected.jsonl" -o "$WORK/labeled.jsonl" --labeler rules
# Val and test are small so that the demo scores them in minutes on 2 cores; each still gets at-risk
# dialogues (a class with three or more dialogues lands in every split).
$ORCH data prepare "$WORK/labeled.jsonl" --split train=0.96,val=0.02,test=0.02 --oversample 0.25
cp "$WORK/stats.json" data/student_mental/normalize.stats.json
cp "$WORK/selected.stats.json" data/student_mental/select.stats.json
$ORCH data check data/student_mental/train.jsonl data/student_mental/val.jsonl data/student_mental/test.jsonl | tail -n 20
