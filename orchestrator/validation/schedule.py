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
from orchestrator.validation.context import Context, dataset_info, dataset_names, entry_problem, rows, task_of
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
    if count is not None and count > 0:
        batches = math.ceil(math.ceil(count / processes) / batch)
        per_epoch = max(1, math.ceil(batches / accumulation))  # the trainer rounds a partial accumulation up
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
    """Rows left for training after max_samples and the val_size split (None: cannot be known here)."""
    info_path, info, problem = dataset_info(cfg)
    if problem:
        return None
    total = 0
    for name in dataset_names(cfg, ("dataset",)):
        entry = info.get(name) or {}
        if entry_problem(entry):
            return None
        path = info_path.parent / str(entry.get("file_name", ""))
        if "file_name" not in entry or not path.is_file():
            return None
        found, _ = rows(ctx, path, entry.get("columns"), task_of(cfg, ctx), bool(entry.get("ranking", False)))
        if not found:  # the datasets rule says so; no schedule to judge
            return None
        total += min(len(found), data.max_samples) if data.max_samples else len(found)
    val = float(data.val_size or 0)
    if val:  # LLaMA-Factory: above 1 a row count, else a share of the rows
        total -= int(val) if val > 1 else math.ceil(total * val)
    return total


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
    rows_left = _training_rows(cfg, ctx, data)
    if rows_left is not None and rows_left <= 0:
        yield Problem(
            ERROR,
            "datasets",
            cfg.where("val_size" if data.val_size else "max_samples"),
            f"no training rows left (val_size {data.val_size:g}, max_samples {data.max_samples}): "
            "the split fails once the data is loaded",
            "a val_size share below 1 (e.g. 0.1) or a count below the number of rows",
        )
        return
    try:
        length = run_length(cfg, ctx, train, data)
    except (OverflowError, ValueError):
        length = None
    if length is None:
        yield Problem(INFO, "checkpoints", cfg.where("save_steps"), "run length unknown here; schedule not checked")
        return
    yield from _first_checkpoint(cfg, strategy, train, length)
    yield from _warmup(cfg, train, length)
    yield from _never_reached(cfg, train, length)


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
        if length.total <= 1:
            fix = "a one-step run cannot checkpoint before its end: train for more steps"
        else:
            fix = f"at most {length.total - 1} steps apart (e.g. save_steps: {max(1, length.total // 4)}, or 0.1)"
            fix = f"set save_steps {fix}" if key == "save_steps" else f"use save_strategy: steps with save_steps {fix}"
        yield Problem(
            ERROR,
            "checkpoints",
            cfg.where(key),
            f"{what} >= the run's {length.total} total steps ({length.how}): the first checkpoint is written "
            "at the very end, so a job killed or timed out before then loses everything",
            fix,
        )


def _warmup(cfg: ConfigUnderTest, train: Any, length: RunLength) -> Iterator[Problem]:
    if cfg.values.get("warmup_steps") and cfg.values.get("warmup_ratio"):
        yield Problem(
            WARNING,
            "schedule",
            cfg.where("warmup_steps"),
            f"warmup_ratio {cfg.values['warmup_ratio']} silently replaces warmup_steps {cfg.values['warmup_steps']}",
            "keep one of the two",
        )
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


def _never_reached(cfg: ConfigUnderTest, train: Any, length: RunLength) -> Iterator[Problem]:
    """Logging and evaluation intervals longer than the run: the loss curve or eval never appears."""
    for key, strategy in (("logging_steps", "logging_strategy"), ("eval_steps", "eval_strategy")):
        every = cfg.values.get(key)
        mode = str(getattr(getattr(train, strategy, None), "value", getattr(train, strategy, "")))
        if mode == "steps" and isinstance(every, (int, float)) and every >= 1 and every > length.total:
            yield Problem(
                WARNING,
                "schedule",
                cfg.where(key),
                f"{key} {every:g} is longer than the run's {length.total} steps: it never happens",
                f"set {key} to at most {length.total} (or a share below 1, e.g. 0.1)",
            )
