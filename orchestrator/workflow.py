"""`orch pipeline`: one model from config to comparison in one command.

Submit the training job (any executor) and after it the chain (`--then
export,gguf`; `--dpo`: DPO pairs and training) and the eval job, which scores
the trained adapter, the untrained base model and the chain's models (DPO,
merged, GGUF) with both
decodings on the executor; wait for each while showing its progress; score the task's
model-free baselines (the majority labels, and the rules labeler where the
task file names lexicons), and write the comparison and report. Every step is journaled in
steps.md. This is what `make demo` runs with the bundled small model.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from orchestrator import stages
from orchestrator.catalog import Catalog
from orchestrator.collect import Comparison, compare
from orchestrator.errors import OrchError
from orchestrator.evaluation.evaluate import baseline_kinds, evaluate_baseline, record_evaluation
from orchestrator.executors.base import COMPLETED
from orchestrator.layout import ADAPTER, BASE
from orchestrator.monitor import RunStatus, step_counts, wait
from orchestrator.project import Project
from orchestrator.runs import log_tail
from orchestrator.stagejob import SUBJECT_OF_STAGE
from orchestrator.submit import SubmitOptions, submit
from orchestrator.task import Task

# progress(phase, done, total): `phase` names what is counted (training steps, examples scored).
Progress = Callable[[str, int, int], None]


@dataclass
class PipelineOptions:
    """What to score after training, and how."""

    split: str = "test"
    batch_size: int | None = None  # None: chosen from free memory
    then: tuple[str, ...] = ()  # stages before scoring, e.g. export, gguf (their models are scored too)
    baselines: bool = True  # the untrained base model and the task's model-free baselines
    sort: str | None = None  # default: risk recall first where the task has a risk field
    threshold: float | None = None  # default: the task's risk.min_recall
    command: str = ""


@dataclass
class PipelineResult:
    """The trained run's final status, the baselines scored here, and the comparison (the eval job wrote the rest)."""

    run: str
    status: RunStatus | None
    evaluations: list = field(default_factory=list)  # the model-free baselines; the models' are the eval job's
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
    """Train `model` (or reuse its finished run), then the chain's jobs and the eval job; compare everything.

    Scoring runs as a job on the same executor as training (`--then ...,eval`): on a cluster it runs on a
    compute node, never where `orch` was typed. Progress of every job is followed from its log.
    """
    opts = opts or PipelineOptions()
    project = catalog.project
    task = catalog.task(submit_opts.task)
    started = time.monotonic()
    plans = submit(catalog, [model], _with_eval_job(submit_opts, opts), log)
    result = PipelineResult(plans[0].run.name, None)
    result.timeline.append(("submit", time.monotonic() - started))
    for plan in plans:
        if plan.action == "skip":
            continue
        phase = PHASES.get(plan.run.stage, plan.run.stage)
        with result.phase(phase):
            status = wait(project, plan.run, _follower(project, plan, progress, on_status))
        if plan.run.stage == stages.TRAINING:
            result.status = status
        if status.state != COMPLETED:
            raise OrchError(
                f"{plan.run.name}: the {plan.run.stage} job ended {status.state}"
                f"{'; nothing was scored' if plan.run.stage != stages.EVAL.name else ''}\n{status.log_tail}",
                fix=f"see `orch logs {plan.run.name}`; resubmitting resumes training from the last checkpoint",
            )
        if plan.run.stage == stages.TRAINING:
            log(f"{plan.run.name}: trained; the chain goes on ({', '.join(p.run.stage for p in plans[1:])}) ...")
    if opts.baselines:
        with result.phase("model-free baselines"):
            for kind in baseline_kinds(task):
                log(f"scoring the {kind} baseline ...")
                result.evaluations.append(_score_baseline(project, task, kind, opts))
    with result.phase("comparison and report"):
        result.comparison = compare(project, task, opts.sort, opts.threshold, opts.command)
    return result


# The timeline's name for each job of the chain.
PHASES = {
    stages.TRAINING: "training",
    stages.PAIRS.name: "DPO pairs (scoring train)",
    stages.DPO.name: "DPO training",
    stages.EVAL.name: "scoring (eval job)",
}
SCORING_LINE = re.compile(r"^orch: scoring (\w+): (\d+)/(\d+)$", re.MULTILINE)


def _with_eval_job(submit_opts: SubmitOptions, opts: PipelineOptions) -> SubmitOptions:
    """The submission with the eval stage last: the adapter, the untrained base (baselines) and the chain's models."""
    chain = tuple(s for s in (*submit_opts.then, *opts.then) if s != stages.EVAL.name)
    subjects = [ADAPTER, *([BASE] if opts.baselines else [])]
    subjects += [SUBJECT_OF_STAGE[s] for s in stages.CHAINABLE if s in chain and s in SUBJECT_OF_STAGE]
    sets = [f"eval.split={opts.split}", "eval.subjects=" + ",".join(subjects)]
    if opts.batch_size:
        sets.append(f"eval.batch_size={opts.batch_size}")
    # The user's own --set eval.* come after these defaults, so they win.
    return dataclasses.replace(
        submit_opts, then=(*chain, stages.EVAL.name), sets=(*sets, *submit_opts.sets), command=opts.command
    )


def _follower(project: Project, plan, progress: Progress | None, on_status) -> Callable[[RunStatus], None]:
    """What each poll of a job shows: training steps from its trainer log, scoring counts from its job log."""

    def update(status: RunStatus) -> None:
        stage = stages.get(plan.run.stage)
        if stage.trains:
            _on_training(status, progress if stage.name == stages.TRAINING else _named(progress, stage.name), on_status)
            return
        if progress and stage.runner != stages.ORCH:  # one step: the job's state is its progress
            progress(f"{plan.run.stage} job ({status.state.lower()})", int(status.state == COMPLETED), 1)
            return
        if progress and plan.job_dir is not None:
            found = SCORING_LINE.findall(log_tail(plan.job_dir / "job.log", 40))
            if found:
                subject, done, total = found[-1]
                progress(f"scoring {subject}", int(done), int(total))

    return update


def _named(progress: Progress | None, stage: str) -> Progress | None:
    """Training progress under the stage's name (dpo training), not the SFT run's."""
    if progress is None:
        return None
    return lambda _phase, done, total: progress(f"{stage} training", done, total)


def _on_training(status: RunStatus, progress: Progress | None, on_status) -> None:
    counts = step_counts(status)
    if progress and counts:
        progress("training", *counts)
    if on_status:
        on_status(status)


def _score_baseline(project: Project, task: Task, kind: str, opts: PipelineOptions):
    result = evaluate_baseline(project, task, kind, opts.split)
    record_evaluation(project, result, None, opts.command)
    return result
