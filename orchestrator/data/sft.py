"""SFT rows in LLaMA-Factory's alpaca format, and deterministic stratified splits."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from orchestrator.data.dialogue import Dialogue
from orchestrator.fileio import write_text_atomic, write_texts_together
from orchestrator.task import Task

Labeler = Callable[[Dialogue], dict[str, Any]]


def sft_row(task: Task, dialogue: Dialogue, labels: dict[str, Any]) -> dict[str, Any]:
    """One alpaca row: the task's instruction, the dialogue, the labels as canonical JSON."""
    problems = task.answer_errors(labels)
    if problems:
        raise ValueError(f"{dialogue.id}: labels break the {task.name} schema: {problems}")
    return {
        "id": dialogue.id,
        "instruction": task.instruction,
        "input": dialogue.render(),
        "output": task.canonical_answer(labels),
    }


def _bucket(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def stratified_split(
    rows: list[dict[str, Any]], stratify: Callable[[dict[str, Any]], str], fractions: dict[str, float]
) -> dict[str, list[dict[str, Any]]]:
    """Split rows by the hash of their id within each class. Same input, same split.

    The last split (test) gets at least one row of every class that occurs, so
    a rare risk class is always scored; other held-out splits get one when the
    training split keeps at least one too; a class with at least one row per
    split is in every split, train included, whatever the fractions.
    """
    names = list(fractions)
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_class[stratify(row)].append(row)
    for cls in sorted(by_class):
        members = sorted(by_class[cls], key=lambda r: _bucket(r["id"]))
        everywhere = len(members) >= len(names)  # enough for one in every split, train included
        start = 0
        for position, name in enumerate(reversed(names[1:])):
            left = len(members) - start
            want = round(len(members) * fractions[name])
            if want == 0 and (position == 0 and left >= 1 or left >= 2):
                want = 1
            if everywhere:  # leave one for each split still to fill (train last)
                want = max(1, min(want, left - (len(names) - 1 - position)))
            out[name].extend(members[start : start + want])
            start += want
        out[names[0]].extend(members[start:])
    for name in names:
        out[name].sort(key=lambda r: r["id"])
    return out


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSON lines, atomically."""
    write_text_atomic(path, _jsonl(rows))


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_set(files: dict[Path, list[dict[str, Any]]]) -> None:
    """Write several JSONL files as one set: all staged beside their targets first, then renamed together."""
    write_texts_together({path: _jsonl(rows) for path, rows in files.items()})
