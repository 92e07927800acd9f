"""Build the shipped seed dataset `data/student_mental/` from the CPsyCounD sample.

    python -m orchestrator.data.seed SAMPLE_DIR [--out data/student_mental]

Dialogues are tail-truncated, labeled by the rules baseline labeler (not
clinical ground truth) and split train/test, stratified on the risk flag.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from orchestrator.catalog import Catalog
from orchestrator.data import rules
from orchestrator.data.dialogue import tail_truncate
from orchestrator.data.formats import read
from orchestrator.data.sft import sft_row, stratified_split, write_jsonl
from orchestrator.project import find_project

MAX_CHARS = 600
MAX_TURNS = 12
TEST_FRACTION = 0.1


def build(sample_dir: Path, out_dir: Path, task_name: str | None = None) -> dict[str, int]:
    """Write train.jsonl and test.jsonl; returns row counts per split."""
    task = Catalog(find_project()).task(task_name)
    files = sorted((sample_dir / "CPsyCounD").glob("case_*.txt"), key=lambda p: int(p.stem.split("_")[1]))
    rows = []
    for path in files:
        dialogue = tail_truncate(next(read(path, "cpsycound")), MAX_CHARS, MAX_TURNS)
        if dialogue.turns:
            rows.append(sft_row(task, dialogue, rules.label(dialogue.client_text())))
    risk = task.risk_field or task.field_names[0]
    splits = stratified_split(
        rows, lambda r: str(json.loads(r["output"])[risk]), {"train": 1 - TEST_FRACTION, "test": TEST_FRACTION}
    )
    for name, split_rows in splits.items():
        write_jsonl(out_dir / f"{name}.jsonl", split_rows)
    return {name: len(r) for name, r in splits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("data/student_mental"))
    args = parser.parse_args()
    print(build(args.sample_dir, args.out))


if __name__ == "__main__":
    main()
