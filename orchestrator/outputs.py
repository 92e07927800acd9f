"""The state of a run's output directory, read from what LLaMA-Factory leaves there."""

from __future__ import annotations

import json
import re
import time
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
    checkpoints: tuple[Path, ...] = ()  # complete ones, in step order
    incomplete: tuple[Path, ...] = ()  # cut off while being written (killed mid-save)

    @property
    def latest_checkpoint(self) -> Path | None:
        return self.checkpoints[-1] if self.checkpoints else None


def checkpoints(path: Path) -> list[Path]:
    """`checkpoint-N` folders in step order, complete or not."""
    if not path.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in path.iterdir() if p.is_dir() and (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def is_complete(checkpoint: Path) -> bool:
    """transformers writes trainer_state.json last: without it the save was cut off."""
    state = checkpoint / "trainer_state.json"
    if not state.is_file():
        return False
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError):
        return False
    return True


def output_status(path: Path) -> OutputStatus:
    """Classify `path` as fresh, resumable, finished or blocked."""
    found = checkpoints(path)
    done = tuple(p for p in found if is_complete(p))
    cut = tuple(p for p in found if p not in done)
    if any((path / name).is_file() for name in FINISHED_MARKERS):
        return OutputStatus(path, OutputState.FINISHED, done, cut)
    if done:
        return OutputStatus(path, OutputState.RESUMABLE, done, cut)
    if path.is_dir() and any((path / name).is_file() for name in WEIGHT_FILES):
        return OutputStatus(path, OutputState.BLOCKED, done, cut)
    return OutputStatus(path, OutputState.FRESH, done, cut)


def set_aside_incomplete(status: OutputStatus) -> list[Path]:
    """Rename cut-off checkpoints out of the `checkpoint-*` namespace (never delete them).

    Left in place, LLaMA-Factory's auto-resume or transformers' checkpoint
    rotation would pick them up and fail with "Can't find a valid checkpoint".
    """
    moved = []
    for path in status.incomplete:
        target = path.with_name(f"incomplete-{path.name}-{int(time.time())}")
        path.rename(target)
        moved.append(target)
    return moved
