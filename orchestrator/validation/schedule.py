"""The checkpoint schedule against the run's length: a killed job must have a checkpoint to resume.

Total optimizer steps are worked out as the trainer does: `max_steps` when
positive, else rows / (batch x processes), over gradient accumulation, times epochs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orchestrator import stages
from orchestrator.validation.context import Context, dataset_info, dataset_names, rows, task_of
from orchestrator.validation.problems import ConfigUnderTest, Problem, Severity

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@dataclass(frozen=True)
class RunLength:
    """How many optimizer steps a training run takes, and how that was worked out."""

    total: int
    per_epoch: int | None
    how: str


def run_length(cfg: ConfigUnderTest, ctx: Context, train: Any, data: Any) -> RunLength | None:
    """The run's total optimizer steps, or None when they cannot be known before it runs."""
    processes = cfg.processes or 1
    accumulation = max(1, int(train.gradient_accumulation_steps))
    batch = max(1, int(train.per_device_train_batch_size))
    count = _training_rows(cfg, ctx, data)
    per_epoch = None
    if count is not None:
        per_epoch = max(1, math.ceil(math.ceil(count / processes) / batch) // accumulation)
    if train.max_steps and train.max_steps > 0:
        return RunLength(int(train.max_steps), per_epoch, f"max_steps {train.max_steps}")
    if per_epoch is None or getattr(data, "packing", False) or getattr(data, "streaming", False):
        return None
    total = max(1, math.ceil(float(train.num_train_epochs) * per_epoch))
    how = (
        f"{count} training rows / (batch {batch} x {processes} process(es)) / accumulation {accumulation} "
        f"= {per_epoch} steps per epoch x {train.num_train_epochs:g} epochs"
    )
    return RunLength(total, per_epoch, how)


def _training_rows(cfg: ConfigUnderTest, ctx: Context, data: Any) -> int | None:
    info_path, info, problem = dataset_info(cfg)
    if problem:
        return None
    total = 0
    for name in dataset_names(cfg, ("dataset",)):
        entry = info.get(name) or {}
        path = info_path.parent / str(entry.get("file_name", ""))
        if "file_name" not in entry or not path.is_file():
            return None
        found, _ = rows(ctx, path, entry.get("columns"), task_of(cfg, ctx))
        total += min(len(found), data.max_samples) if data.max_samples else len(found)
    val = float(data.val_size or 0)
    if val:
        total -= math.ceil(total * val) if val < 1 else int(val)
    return total if total > 0 else None


def checkpoint_schedule(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """A training run writes a resumable checkpoint before it ends."""
    if not stages.get(cfg.stage).trains or cfg.parsed is None or not cfg.values.get("do_train"):
        return
    _, data, train, *_ = cfg.parsed
    strategy = str(getattr(train.save_strategy, "value", train.save_strategy))
    if strategy == "no":
        yield Problem(
            ERROR,
            "checkpoints",
            cfg.where("save_strategy"),
            "save_strategy 'no' never writes a checkpoint: a time limit or preemption starts the run over",
            "use save_strategy: steps with save_steps well below the run's total steps",
        )
        return
    if train.save_only_model:
        yield Problem(
            ERROR,
            "checkpoints",
            cfg.where("save_only_model"),
            "checkpoints without optimizer and scheduler state cannot be resumed; a killed job restarts",
            "set save_only_model: false",
        )
    length = run_length(cfg, ctx, train, data)
    if length is None:
        yield Problem(INFO, "checkpoints", cfg.where("save_steps"), "run length unknown here; schedule not checked")
        return
    yield from _first_checkpoint(cfg, strategy, train, length)
    yield from _warmup(cfg, train, length)


def _first_checkpoint(cfg: ConfigUnderTest, strategy: str, train: Any, length: RunLength) -> Iterator[Problem]:
    if strategy == "steps":
        every = train.save_steps
        first = math.ceil(every * length.total) if every < 1 else int(every)
        key, what = "save_steps", f"save_steps {every:g}"
    elif strategy == "epoch" and length.per_epoch is not None:
        first, key, what = length.per_epoch, "save_strategy", f"one checkpoint per epoch ({length.per_epoch} steps)"
    elif strategy == "best":
        yield Problem(
            WARNING,
            "checkpoints",
            cfg.where("save_strategy"),
            "save_strategy 'best' writes a checkpoint only when the eval metric improves: no assured resume point",
            "use save_strategy: steps",
        )
        return
    else:
        return
    if first >= length.total:
        suggested = max(1, length.total // 4)
        yield Problem(
            ERROR,
            "checkpoints",
            cfg.where(key),
            f"{what} >= the run's {length.total} total steps ({length.how}): the first checkpoint is written "
            "at the very end, so a job killed or timed out before then loses everything",
            f"set save_steps to at most {max(1, length.total - 1)} (e.g. save_steps: {suggested})",
        )


def _warmup(cfg: ConfigUnderTest, train: Any, length: RunLength) -> Iterator[Problem]:
    warmup = float(getattr(train, "warmup_steps", 0) or 0)
    ratio = getattr(train, "warmup_ratio", None)
    steps = warmup if warmup >= 1 else (float(ratio) * length.total if ratio else warmup * length.total)
    if steps >= length.total:
        key = "warmup_ratio" if "warmup_ratio" in cfg.values else "warmup_steps"
        yield Problem(
            WARNING,
            "schedule",
            cfg.where(key),
            f"warmup lasts {steps:g} of the run's {length.total} steps: the learning rate never reaches its value",
            "shorten the warmup (warmup_ratio 0.03-0.1 is usual)",
        )
