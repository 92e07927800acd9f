#!/usr/bin/env bash
# Build data/student_mental/ (the demo dataset) from the real CPsyCoun sample
# with orch's own data pipeline: normalize -> select -> label (rules) -> prepare.
# Deterministic: the same sample gives the same files. Usage:
#   scripts/build-demo-data.sh [CPSYCOUN_SAMPLE_DIR]   (default ../shared/datasets/cpsycoun-sample)
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLE=${1:-../shared/datasets/cpsycoun-sample}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ORCH=.venv/bin/orch
$ORCH data normalize "$SAMPLE/CPsyCounD" -o "$WORK/unified.jsonl"
# Short tails (300 characters) keep a CPU demo fast: SmolLM2 reads Chinese at ~1.8 tokens a character.
$ORCH data select "$WORK/unified.jsonl" -o "$WORK/selected.jsonl" --max-chars 300 --max-turns 12 --min-assistant-chars 20
$ORCH data label "$WORK/selected.jsonl" -o "$WORK/labeled.jsonl" --labeler rules
$ORCH data prepare "$WORK/labeled.jsonl" --split train=0.8,val=0.1,test=0.1
cp "$WORK/stats.json" data/student_mental/normalize.stats.json
cp "$WORK/selected.stats.json" data/student_mental/select.stats.json
$ORCH data check data/student_mental/train.jsonl data/student_mental/val.jsonl data/student_mental/test.jsonl | tail -n 20
