"""Executors behind one interface (see base.py): `local` and `slurm`."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import OrchError
from orchestrator.executors import slurm
from orchestrator.executors.base import Executor, JobSpec, JobState
from orchestrator.executors.local import LocalExecutor
from orchestrator.executors.slurm import SlurmExecutor

__all__ = ["Executor", "JobSpec", "JobState", "default_executor_name", "get_executor"]


def default_executor_name() -> str:
    """`$ORCH_EXECUTOR`, else slurm where `sbatch` exists, else local."""
    return os.environ.get("ORCH_EXECUTOR") or ("slurm" if slurm.available() else "local")


def get_executor(name: str, jobs_dir: Path) -> Executor:
    """The executor called `name`."""
    if name == "local":
        return LocalExecutor(jobs_dir)
    if name == "slurm":
        if not slurm.available():
            raise OrchError("no SLURM here (sbatch not found)", fix="use --executor local, or run on the login node")
        return SlurmExecutor()
    raise OrchError(f"unknown executor {name!r}", fix="use local or slurm")
