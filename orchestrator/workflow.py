"""`orch pipeline`: one model from config to comparison in one command.

Submit the training job (any executor), wait for it while showing its steps
and loss, score the trained adapter and the untrained base model with both
decodings (one encoding of each prompt serves both), score the rules
labeler, and write the comparison and report. Every step is journaled in
steps.md. This is what `make demo` runs with the bundled small model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.catalog import Catalog
from orchestrator.collect import DEFAULT_THRESHOLD, Comparison, compare
from orchestrator.errors import OrchError
from orchestrator.executors.base import COMPLETED
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
    batch_size: int = 8
    baselines: bool = True  # the untrained base model and the rules labeler
    sort: str = "all_fields_correct"
    threshold: float = DEFAULT_THRESHOLD
    command: str = ""


@dataclass
class PipelineResult:
    """The trained run's final status, every evaluation written, and the comparison."""

    run: str
    status: RunStatus | None
    evaluations: list = field(default_factory=list)
    comparison: Comparison | None = None


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
    plan = submit(catalog, [model], submit_opts, log)[0]
    status = None
    if plan.action != "skip":
        status = wait(project, plan.run, lambda s: _on_training(s, progress, on_status))
        if status.state != COMPLETED:
            raise OrchError(
                f"{plan.run.name}: the training job ended {status.state}; nothing was scored\n{status.log_tail}",
                fix=f"see `orch logs {plan.run.name}`; resubmitting resumes from the last checkpoint",
            )
    log(f"{plan.run.name}: trained; scoring it on the {opts.split} split ...")
    result = PipelineResult(plan.run.name, status)
    result.evaluations += _score_model(project, task, plan, opts, base=False, progress=progress)
    if opts.baselines:
        log(f"{plan.run.name}: scoring the untrained base model the same way ...")
        result.evaluations += _score_model(project, task, plan, opts, base=True, progress=progress)
        log("scoring the rules labeler ...")
        result.evaluations.append(_score_rules(project, task, opts))
    result.comparison = compare(project, task, opts.sort, opts.threshold, opts.command)
    return result


def _on_training(status: RunStatus, progress: Progress | None, on_status) -> None:
    counts = step_counts(status)
    if progress and counts:
        progress("training", *counts)
    if on_status:
        on_status(status)


def _score_model(project: Project, task: Task, plan, opts: PipelineOptions, base: bool, progress):
    from orchestrator.evaluation.evaluate import evaluate_decodings, record_evaluation

    phase = "scoring base model" if base else "scoring"
    results = evaluate_decodings(
        project,
        task,
        project.resolve(str(plan.values["output_dir"])),
        split=opts.split,
        batch_size=opts.batch_size,
        base=base,
        progress=(lambda done, total: progress(phase, done, total)) if progress else None,
    )
    for result in results.values():
        record_evaluation(project, result, plan.run, opts.command)
    return list(results.values())


def _score_rules(project: Project, task: Task, opts: PipelineOptions):
    from orchestrator.evaluation.evaluate import evaluate_rules, record_evaluation

    result = evaluate_rules(project, task, opts.split)
    record_evaluation(project, result, None, opts.command)
    return result
