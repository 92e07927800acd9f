"""The state of a run's output directory, read from what LLaMA-Factory leaves there."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# What LLaMA-Factory writes at the top of output_dir when training finishes.
FINISHED_MARKERS = ("train_results.json", "all_results.json")
WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors", "adapter_model.bin", "pytorch_model.bin")


class OutputState(str, Enum):
    FRESH = "fresh"
    RESUMABLE = "resumable"
    FINISHED = "finished"
    BLOCKED = "blocked"  # files but no checkpoint: LLaMA-Factory refuses to start


@dataclass(frozen=True)
class OutputStatus:
    """What is in an output_dir and what a training job would do with it."""

    path: Path
    state: OutputState
    checkpoints: tuple[Path, ...] = ()

    @property
    def latest_checkpoint(self) -> Path | None:
        return self.checkpoints[-1] if self.checkpoints else None


def checkpoints(path: Path) -> list[Path]:
    """`checkpoint-N` folders in step order."""
    if not path.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in path.iterdir() if p.is_dir() and (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def output_status(path: Path) -> OutputStatus:
    """Classify `path` as fresh, resumable, finished or blocked."""
    ckpts = tuple(checkpoints(path))
    if any((path / name).is_file() for name in FINISHED_MARKERS):
        return OutputStatus(path, OutputState.FINISHED, ckpts)
    if ckpts:
        return OutputStatus(path, OutputState.RESUMABLE, ckpts)
    if path.is_dir() and any((path / name).is_file() for name in WEIGHT_FILES):
        return OutputStatus(path, OutputState.BLOCKED, ckpts)
    return OutputStatus(path, OutputState.FRESH, ckpts)
