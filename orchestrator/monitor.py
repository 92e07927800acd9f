"""`orch status`, `orch logs`, `orch cancel`: what the scheduler and LLaMA-Factory say about runs.

Status also reconciles: a job that ended without recording its outcome
(killed hard, timed out, cancelled by hand with scancel) gets that outcome
written to the ledger and steps.md the first time status sees it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator import ledger, outputs, stages, throughput
from orchestrator.errors import OrchError
from orchestrator.executors import get_executor
from orchestrator.executors.base import CANCELLED, COMPLETED, FAILED, TERMINAL, TIMEOUT, UNKNOWN, JobState
from orchestrator.project import Project
from orchestrator.runs import Run, known_runs, last_submission, log_tail, record_event
from orchestrator.stages import Event

OUTCOME_EVENTS = {COMPLETED: Event.FINISHED, CANCELLED: Event.CANCELLED, TIMEOUT: Event.TIMEOUT}


@dataclass
class RunStatus:
    """One row of `orch status`."""

    run: str
    job_id: str
    executor: str
    state: str
    step: str
    loss: str
    elapsed: str
    tokens_per_s: str = ""
    mfu: str = ""
    reason: str = ""
    log_tail: str = ""


# The state a job's terminal ledger record stands for.
LEDGER_STATES = {Event.FINISHED: COMPLETED, Event.FAILED: FAILED, Event.CANCELLED: CANCELLED, Event.TIMEOUT: TIMEOUT}


def run_status(project: Project, run: Run, state: JobState | None = None) -> RunStatus | None:
    """The latest job of `run`, with progress from trainer_log.jsonl.

    Once the ledger has the job's terminal record (its own, or one reconciled
    earlier), that record is the truth and the scheduler is not asked: a cluster
    forgets finished jobs after a few minutes (SLURM's MinJobAge).
    """
    sub = last_submission(project, run)
    if sub is None:
        return None
    state = ledger_state(project, run, sub) or state
    if state is None:
        state = get_executor(sub["executor"], project.jobs).status(str(sub["job_id"]))
    _reconcile(project, run, sub, state)
    trains = stages.get(run.stage).trains
    step, loss = _progress(project.resolve(sub["output_dir"])) if trains else ("", "")
    speed = throughput.run_throughput(project, run, project.resolve(sub["output_dir"])) if trains else None
    tail = log_tail(project.resolve(sub["log"]), 15) if state.state not in (COMPLETED, "RUNNING", "PENDING") else ""
    return RunStatus(
        run.name,
        str(sub["job_id"]),
        sub["executor"],
        state.state,
        step,
        loss,
        _elapsed(project, run, sub, state),
        state.reason,
        tail,
        f"{speed.tokens_per_s:,.0f}" if speed and speed.tokens_per_s is not None else "",
        f"{speed.mfu:.1%}" if speed and speed.mfu is not None else "",
    )


def all_status(project: Project) -> list[RunStatus]:
    """Every known run's status: jobs the ledger has not closed are asked in one call per executor."""
    runs = known_runs(project)
    open_jobs: dict[str, list[str]] = {}
    for run in runs:
        sub = last_submission(project, run)
        if sub is not None and ledger_state(project, run, sub) is None:
            open_jobs.setdefault(sub["executor"], []).append(str(sub["job_id"]))
    states = {
        (name, job_id): state
        for name, ids in open_jobs.items()
        for job_id, state in get_executor(name, project.jobs).statuses(ids).items()
    }
    out = []
    for run in runs:
        sub = last_submission(project, run)
        if sub is not None:
            out.append(run_status(project, run, states.get((sub["executor"], str(sub["job_id"])))))
    return [s for s in out if s is not None]


def ledger_state(project: Project, run: Run, sub: dict) -> JobState | None:
    """The job's state from its terminal ledger record, if it has one."""
    ends = [r for r in _records_since(project, run, sub) if r.get("event") in LEDGER_STATES]
    if not ends:
        return None
    last = ends[-1]
    return JobState(
        LEDGER_STATES[last["event"]], last.get("exit_code"), f"ledger: {last['event']} {last.get('time', '')}"
    )


def _progress(output_dir: Path) -> tuple[str, str]:
    now = outputs.progress(output_dir)
    step = f"{now.step}/{now.total}" if now.step is not None else ""
    return step, f"{now.loss:.4f}" if now.loss is not None else ""


def _records_since(project: Project, run: Run, sub: dict) -> list[dict]:
    """The job's records after its submission, in ledger order (append order, not clocks: a compute
    node's clock may be behind the login node's)."""
    records = ledger.for_run(project.ledger, run.name)
    start = max((i for i, r in enumerate(records) if r == sub), default=-1)
    return [r for r in records[start + 1 :] if str(r.get("job_id")) == str(sub["job_id"])]


def _elapsed(project: Project, run: Run, sub: dict, state: JobState) -> str:
    records = _records_since(project, run, sub)
    starts = [r["time"] for r in records if r["event"] in Event.STARTS]
    if not starts:
        return ""
    # The job's own last word (finished, failed, interrupted) beats a later reconciliation record.
    own = [r["time"] for r in records if r["event"] in Event.OWN_ENDINGS]
    ends = own or [r["time"] for r in records if r["event"] in Event.TERMINAL]
    begin = _when(starts[0])
    end = _when(ends[-1]) if ends and state.terminal else dt.datetime.now(dt.timezone.utc)
    if begin is None or end is None or end < begin:
        return ""
    seconds = int((end - begin).total_seconds())
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _when(text: str) -> dt.datetime | None:
    """A ledger time (naive ones read as UTC), or None when it is not one."""
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _reconcile(project: Project, run: Run, sub: dict, state: JobState) -> None:
    if not state.terminal:
        return
    records = _records_since(project, run, sub)
    if any(r["event"] in Event.TERMINAL for r in records):
        return
    event = OUTCOME_EVENTS.get(state.state, Event.FAILED)
    message = f"seen by orch status: scheduler state {state.state}" + (f" ({state.reason})" if state.reason else "")
    record_event(
        project,
        run,
        event,
        executor=sub["executor"],
        job_id=sub["job_id"],
        message=message,
        output_dir=sub.get("output_dir"),
        log_tail=log_tail(project.resolve(sub["log"])) if event != Event.FINISHED else None,
    )


def cancel(project: Project, run: Run, command: str = "") -> str:
    """Cancel the run's pending or running job; outputs and checkpoints stay."""
    sub = last_submission(project, run)
    if sub is None:
        raise OrchError(f"{run.name} was never submitted", fix="orch status --all lists known runs")
    executor = get_executor(sub["executor"], project.jobs)
    state = executor.status(str(sub["job_id"]))
    if state.terminal:
        raise OrchError(f"{run.name}: job {sub['job_id']} already ended ({state.state})")
    executor.cancel(str(sub["job_id"]))
    record_event(
        project,
        run,
        Event.CANCELLED,
        executor=sub["executor"],
        job_id=sub["job_id"],
        command=command,
        output_dir=sub.get("output_dir"),
        message="cancelled; checkpoints are kept and the next submit resumes",
    )
    return str(sub["job_id"])


def log_path(project: Project, run: Run) -> Path:
    sub = last_submission(project, run)
    if sub is None:
        raise OrchError(f"{run.name} was never submitted", fix="orch status --all lists known runs")
    return project.resolve(sub["log"])


def follow(
    project: Project, run: Run, emit: Callable[[str], None], poll: float = 1.0, unknown_grace: float = 60.0
) -> None:
    """Print the log as it grows until the job ends (or the scheduler has not known it for `unknown_grace` s)."""
    sub = last_submission(project, run)
    path = log_path(project, run)
    position = 0
    unknown_since = None
    while True:
        if path.is_file():
            with path.open("rb") as handle:
                handle.seek(position)
                chunk = handle.read()
                position = handle.tell()
            if chunk:
                emit(chunk.decode("utf-8", errors="replace"))
        state = run_status(project, run)
        if state is None or state.state in TERMINAL:
            return
        unknown_since = (unknown_since or time.monotonic()) if state.state == UNKNOWN else None
        if unknown_since is not None and time.monotonic() - unknown_since > unknown_grace:
            emit(f"\norch: the scheduler no longer knows job {sub['job_id']}; stopped following\n")
            return
        time.sleep(poll)


def wait(
    project: Project,
    run: Run,
    on_update: Callable[[RunStatus], None] | None = None,
    poll: float = 2.0,
    unknown_grace: float = 60.0,
) -> RunStatus:
    """Block until the run's latest job ends (any executor); `on_update` sees every poll's status.

    A job the scheduler no longer knows (UNKNOWN) for `unknown_grace` seconds counts as ended.
    """
    unknown_since = None
    while True:
        status = run_status(project, run)
        if status is None:
            raise OrchError(f"{run.name} was never submitted", fix=f"orch submit {run.model}")
        if on_update:
            on_update(status)
        if status.state == UNKNOWN:
            unknown_since = unknown_since or time.monotonic()
            if time.monotonic() - unknown_since > unknown_grace:
                return status
        else:
            unknown_since = None
        if status.state in TERMINAL:
            return status
        time.sleep(poll)


def step_counts(status: RunStatus) -> tuple[int, int] | None:
    """(current, total) training steps from a status row, when LLaMA-Factory has logged any."""
    done, _, total = status.step.partition("/")
    return (int(done), int(total)) if done.isdigit() and total.isdigit() else None
