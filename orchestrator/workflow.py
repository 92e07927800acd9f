"""`orch pipeline`: one model from config to comparison in one command.

Submit the training job (any executor), wait for it while showing its steps
and loss, score the trained adapter and the untrained base model with both
decodings (one encoding of each prompt serves both), score the task's
model-free baselines (the majority labels, and the rules labeler where the
task file names lexicons), and write the comparison and report. Every step is journaled in
steps.md. This is what `make demo` runs with the bundled small model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from orchestrator.catalog import Catalog
from orchestrator.collect import Comparison, compare
from orchestrator.errors import OrchError
from orchestrator.evaluation.evaluate import (
    Scored,
    baseline_kinds,
    evaluate_baseline,
    evaluate_decodings,
    record_evaluation,
)
from orchestrator.executors.base import COMPLETED
from orchestrator.layout import ADAPTER, BASE
from orchestrator.monitor import RunStatus, step_counts, wait
from orchestrator.project import Project
from orchestrator.submit import SubmitOptions, submit
from orchestrator.task import Task

# progress(phase, done, total): `phase` names what is counted (training steps, examples scored).
Progress = Callable[[str, int, int], None]


@dataclass
class PipelineOptions:
    """What to score after training, and how."""

    split: str = "test"
    batch_size: int | None = None  # None: chosen from free memory
    baselines: bool = True  # the untrained base model and the task's model-free baselines
    sort: str | None = None  # default: risk recall first where the task has a risk field
    threshold: float | None = None  # default: the task's risk.min_recall
    command: str = ""


@dataclass
class PipelineResult:
    """The trained run's final status, every evaluation written, and the comparison."""

    run: str
    status: RunStatus | None
    evaluations: list = field(default_factory=list)
    comparison: Comparison | None = None
    timeline: list[tuple[str, float]] = field(default_factory=list)  # (phase, seconds), in order

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time one phase of the pipeline into `timeline`."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.timeline.append((name, time.monotonic() - start))

    def timeline_text(self) -> str:
        """One line: each phase's wall time, e.g. `training 4.3 min, scoring 1.9 min`."""
        return ", ".join(f"{name} {_duration(seconds)}" for name, seconds in self.timeline)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def run_pipeline(
    catalog: Catalog,
    model: str,
    submit_opts: SubmitOptions,
    opts: PipelineOptions | None = None,
    log: Callable[[str], None] = print,
    progress: Progress | None = None,
    on_status: Callable[[RunStatus], None] | None = None,
) -> PipelineResult:
    """Train `model` (or reuse its finished run), score it and its baselines, compare everything."""
    opts = opts or PipelineOptions()
    project = catalog.project
    task = catalog.task(submit_opts.task)
    started = time.monotonic()
    plan = submit(catalog, [model], submit_opts, log)[0]
    result = PipelineResult(plan.run.name, None)
    result.timeline.append(("submit", time.monotonic() - started))
    if plan.action != "skip":
        with result.phase("training"):
            result.status = wait(project, plan.run, lambda s: _on_training(s, progress, on_status))
        if result.status.state != COMPLETED:
            raise OrchError(
                f"{plan.run.name}: the training job ended {result.status.state}; nothing was scored\n"
                f"{result.status.log_tail}",
                fix=f"see `orch logs {plan.run.name}`; resubmitting resumes from the last checkpoint",
            )
    log(f"{plan.run.name}: trained; scoring it on the {opts.split} split ...")
    with result.phase("scoring the adapter"):
        result.evaluations += _score_model(project, task, plan, opts, base=False, progress=progress)
    if opts.baselines:
        log(f"{plan.run.name}: scoring the untrained base model the same way ...")
        with result.phase("scoring the base model"):
            result.evaluations += _score_model(project, task, plan, opts, base=True, progress=progress)
        with result.phase("model-free baselines"):
            for kind in baseline_kinds(task):
                log(f"scoring the {kind} baseline ...")
                result.evaluations.append(_score_baseline(project, task, kind, opts))
    with result.phase("comparison and report"):
        result.comparison = compare(project, task, opts.sort, opts.threshold, opts.command)
    return result


def _on_training(status: RunStatus, progress: Progress | None, on_status) -> None:
    counts = step_counts(status)
    if progress and counts:
        progress("training", *counts)
    if on_status:
        on_status(status)


def _score_model(project: Project, task: Task, plan, opts: PipelineOptions, base: bool, progress):
    phase = "scoring base model" if base else "scoring"
    results = evaluate_decodings(
        project,
        task,
        Scored(plan.run, BASE if base else ADAPTER),
        split=opts.split,
        batch_size=opts.batch_size,
        progress=(lambda done, total: progress(phase, done, total)) if progress else None,
        operating_point=not base,  # the untrained base is a reference row; `orch eval --base` gives its threshold
    )
    for result in results.values():
        record_evaluation(project, result, plan.run, opts.command)
    return list(results.values())


def _score_baseline(project: Project, task: Task, kind: str, opts: PipelineOptions):
    result = evaluate_baseline(project, task, kind, opts.split)
    record_evaluation(project, result, None, opts.command)
    return result
