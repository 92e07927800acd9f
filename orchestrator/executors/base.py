"""The executor interface: submit a job script, ask its state, cancel it.

An executor is one small class; `local` and `slurm` implement it. Adding
another scheduler (Kubernetes, SkyPilot) is one new module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# Scheduler-neutral states. TERMINAL ones never change again.
PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, UNKNOWN = (
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "UNKNOWN",
)
TERMINAL = {COMPLETED, FAILED, CANCELLED, TIMEOUT}
ACTIVE = {PENDING, RUNNING}


@dataclass(frozen=True)
class JobSpec:
    """What to run: a job script with its log file, after the jobs it depends on succeed."""

    name: str
    script: Path
    log: Path
    job_dir: Path
    depends_on: tuple[str, ...] = field(default_factory=tuple)
    env: dict[str, str] = field(default_factory=dict)  # given to the job's process only, never written down


@dataclass(frozen=True)
class JobState:
    """A job's state as the scheduler reports it."""

    state: str
    exit_code: int | None = None
    reason: str = ""

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


class Executor(Protocol):
    """Runs job scripts somewhere."""

    name: str

    def submit(self, spec: JobSpec) -> str:
        """Start or queue the job; returns its id."""
        ...

    def status(self, job_id: str) -> JobState:
        """The job's current state."""
        ...

    def statuses(self, job_ids: list[str]) -> dict[str, JobState]:
        """Many jobs' states at once (a scheduler answers in one call)."""
        ...

    def cancel(self, job_id: str) -> None:
        """Stop the job (pending or running); never touches its outputs."""
        ...
