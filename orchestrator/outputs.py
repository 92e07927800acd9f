"""LLaMA-Factory's output files: the one reader of what it leaves in a run's output directory.

Checkpoints (complete or cut off), the finished markers, `trainer_log.jsonl`
(progress as it trains), `trainer_state.json` (loss history) and the result
files. Nothing else in orch opens these files.
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

CHECKPOINT_RE = re.compile(r"^checkpoint-([0-9]+)$")
# What LLaMA-Factory writes at the top of output_dir when training finishes.
FINISHED_MARKERS = ("train_results.json", "all_results.json")
TRAINER_LOG = "trainer_log.jsonl"
TRAINER_STATE = "trainer_state.json"
TRAIN_RESULTS = "train_results.json"
EVAL_RESULTS = "eval_results.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
JIT_SENTINEL = "checkpoint-is-incomplete.txt"  # transformers' marker while a just-in-time checkpoint is written
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


def adapter_weights(folder: Path) -> Path | None:
    """A LoRA adapter folder's weights file (safetensors, or the older .bin), if it has one."""
    return next(
        (folder / n for n in ("adapter_model.safetensors", "adapter_model.bin") if (folder / n).is_file()), None
    )


def checkpoints(path: Path) -> list[Path]:
    """`checkpoint-N` folders in step order, complete or not."""
    if not path.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in path.iterdir() if p.is_dir() and (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def checkpoint_problems(checkpoint: Path) -> list[str]:
    """Why a checkpoint cannot be resumed from (empty: it can).

    Everything the trainer reads back must be there, non-empty and readable at its
    header: trainer_state.json with its step, the weights (a safetensors header, or a
    torch archive), the optimizer and scheduler (torch archives; DeepSpeed keeps its own
    optimizer in global_step*/) and the RNG state. transformers writes trainer_state.json
    last, so a save cut off by a kill usually lacks it; a disk that filled up leaves
    empty or truncated files.
    """
    problems = _state_problems(checkpoint)
    if (checkpoint / JIT_SENTINEL).exists():
        problems.append(f"{JIT_SENTINEL}: a signal-time save was cut off")
    weights = [checkpoint / name for name in WEIGHT_FILES if (checkpoint / name).exists()]
    if not weights:
        problems.append("no weights file")
    problems += [p for path in weights if (p := _file_problem(path))]
    deepspeed = any(checkpoint.glob("global_step*"))  # DeepSpeed keeps the optimizer there
    for name in ["scheduler.pt"] if deepspeed else ["optimizer.pt", "scheduler.pt"]:
        problems += [p for p in [_file_problem(checkpoint / name)] if p]
    rng = sorted(checkpoint.glob("rng_state*.pth"))
    problems += [p for path in rng if (p := _file_problem(path))] if rng else ["no rng_state*.pth"]
    return problems


def is_complete(checkpoint: Path) -> bool:
    """Whether training can resume from this checkpoint (see checkpoint_problems)."""
    return not checkpoint_problems(checkpoint)


def _state_problems(checkpoint: Path) -> list[str]:
    state = _json(checkpoint / TRAINER_STATE)
    step = state.get("global_step")
    if not state:
        return [f"{TRAINER_STATE} missing, empty or unreadable"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        return [f"{TRAINER_STATE} has no global_step"]
    named = CHECKPOINT_RE.match(checkpoint.name)
    if named and int(named.group(1)) != step:
        return [f"{TRAINER_STATE} says step {step}, the folder says {named.group(1)}"]
    return []


def _file_problem(path: Path) -> str | None:
    """A file's problem: missing, empty, or a header that does not parse."""
    try:
        size = path.stat().st_size
        if size == 0:
            return f"{path.name} is empty"
        with path.open("rb") as handle:
            head = handle.read(8)
            if path.suffix == ".safetensors":
                length = int.from_bytes(head, "little")
                if len(head) < 8 or length > size - 8 or not isinstance(json.loads(handle.read(length)), dict):
                    return f"{path.name}: safetensors header does not parse"
            elif path.suffix in (".pt", ".pth", ".bin") and not zipfile.is_zipfile(path):
                return f"{path.name} is not a torch archive"
    except FileNotFoundError:
        return f"{path.name} missing"
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return f"{path.name} cannot be read"
    return None


def output_status(path: Path) -> OutputStatus:
    """Classify `path` as fresh, resumable, finished or blocked."""
    found = checkpoints(path)
    done = tuple(p for p in found if is_complete(p))
    cut = tuple(p for p in found if p not in done)
    if any((path / name).is_file() for name in FINISHED_MARKERS) and not stopped_by_signal(path, done):
        return OutputStatus(path, OutputState.FINISHED, done, cut)
    if done:
        return OutputStatus(path, OutputState.RESUMABLE, done, cut)
    if path.is_dir() and any((path / name).is_file() for name in WEIGHT_FILES):
        return OutputStatus(path, OutputState.BLOCKED, done, cut)
    return OutputStatus(path, OutputState.FRESH, done, cut)


def stopped_by_signal(path: Path, complete: tuple[Path, ...]) -> bool:
    """Whether the run stopped short of its last step (on a signal), rather than finished.

    A trainer stopped by a signal (transformers' just-in-time checkpoint) returns
    normally, so LLaMA-Factory still writes its results files; but its final step
    is short of max_steps. Such a run, with a checkpoint to go on from, resumes
    instead of being taken as done. (An early-stopped run resumes too, and stops
    again at once: its stopping state is in the checkpoint.)
    """
    state = _json(path / TRAINER_STATE)
    step, total = state.get("global_step"), state.get("max_steps")
    return isinstance(step, int) and isinstance(total, int) and step < total and bool(complete)


def set_aside_incomplete(status: OutputStatus) -> list[tuple[Path, list[str]]]:
    """Rename unusable checkpoints out of the `checkpoint-*` namespace (never delete them).

    Left in place, LLaMA-Factory's auto-resume or transformers' checkpoint
    rotation would pick them up and fail, or resume from garbage. Returns each
    new path with the reasons it was set aside.
    """
    moved = []
    for path in status.incomplete:
        reasons = checkpoint_problems(path)
        target = path.with_name(f"incomplete-{path.name}-{int(time.time())}")
        path.rename(target)
        moved.append((target, reasons))
    return moved


def _json(path: Path) -> dict[str, Any]:
    """A JSON object file, {} when missing or unreadable (a run still being written)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # not UTF-8, not JSON, nested past reason
        return {}
    return data if isinstance(data, dict) else {}


def trainer_log(output_dir: Path) -> list[dict[str, Any]]:
    """`trainer_log.jsonl` entries in order (a line being written is skipped)."""
    path = output_dir / TRAINER_LOG
    entries = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def log_history(output_dir: Path) -> list[dict[str, Any]]:
    """The trainer's `log_history` (losses and eval losses by step) from trainer_state.json."""
    history = _json(output_dir / TRAINER_STATE).get("log_history", [])
    return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []


def _point(step: Any, value: Any) -> tuple[int, float] | None:
    """A (step, value) pair when both are numbers (a hand-edited or half-written entry is no point)."""
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (step, value))
    return (int(step), float(value)) if numbers else None


def loss_points(output_dir: Path, key: str = "loss") -> list[tuple[int, float]]:
    """(step, value) of a logged quantity (`loss`, `eval_loss`) from the history; NaN and inf are kept."""
    points = (_point(h.get("step"), h.get(key)) for h in log_history(output_dir))
    return [p for p in points if p is not None]


def logged_losses(output_dir: Path) -> list[tuple[int, float]]:
    """(step, loss) as training logged them in trainer_log.jsonl, in order (restarts show as steps going back)."""
    points = (_point(e.get("current_steps"), e.get("loss")) for e in trainer_log(output_dir))
    return [p for p in points if p is not None]


def training_summary(output_dir: Path) -> dict[str, Any]:
    """Final losses, steps, epochs and runtime from LLaMA-Factory's result files (what is there)."""
    train, evals, state = (_json(output_dir / n) for n in (TRAIN_RESULTS, EVAL_RESULTS, TRAINER_STATE))
    out = {
        "train_loss": train.get("train_loss"),
        "eval_loss": evals.get("eval_loss"),
        "global_step": state.get("global_step"),
        "epoch": state.get("epoch"),
        "train_runtime": train.get("train_runtime"),
    }
    return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Progress:
    """Where a training run is, from its trainer_log.jsonl."""

    step: int | None = None
    total: int | None = None
    loss: float | None = None


def progress(output_dir: Path) -> Progress:
    """The last logged step, the planned total and the last loss."""
    step = total = loss = None
    for entry in trainer_log(output_dir):
        if isinstance(entry.get("current_steps"), int) and isinstance(entry.get("total_steps"), int):
            step, total = entry["current_steps"], entry["total_steps"]
        if _point(0, entry.get("loss")) is not None:
            loss = float(entry["loss"])
    return Progress(step, total, loss)


def trainable_params(output_dir: Path) -> int | None:
    """Parameters in the saved adapter (what LoRA trained)."""
    path = output_dir / ADAPTER_WEIGHTS
    if not path.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    total = 0
    try:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                count = 1
                for dim in handle.get_slice(key).get_shape():
                    count *= dim
                total += count
    except (OSError, SafetensorError):
        return None  # cut off or not safetensors: the count is unknown, the comparison goes on
    return total
