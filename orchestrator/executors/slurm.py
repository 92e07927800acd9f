"""SLURM: sbatch to submit; squeue, then sacct, then scontrol to read state; scancel."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from orchestrator.errors import OrchError
from orchestrator.executors.base import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    TIMEOUT,
    UNKNOWN,
    JobSpec,
    JobState,
)

# SLURM's many states, folded onto ours.
_STATES = {
    "PENDING": PENDING,
    "CONFIGURING": PENDING,
    "REQUEUED": PENDING,
    "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING,
    "RESIZING": PENDING,
    "SUSPENDED": PENDING,
    "STOPPED": PENDING,
    "RUNNING": RUNNING,
    "COMPLETING": RUNNING,
    "SIGNALING": RUNNING,
    "STAGE_OUT": RUNNING,
    "COMPLETED": COMPLETED,
    "FAILED": FAILED,
    "NODE_FAIL": FAILED,
    "OUT_OF_MEMORY": FAILED,
    "BOOT_FAIL": FAILED,
    "DEADLINE": TIMEOUT,
    "PREEMPTED": PENDING,
    "CANCELLED": CANCELLED,
    "REVOKED": CANCELLED,
    "TIMEOUT": TIMEOUT,
}


def available() -> bool:
    """Whether this machine can submit to SLURM."""
    return shutil.which("sbatch") is not None


def fold_state(raw: str) -> str:
    """Our state for a SLURM state string (`CANCELLED by 0` -> CANCELLED)."""
    word = raw.strip().split()[0].rstrip("+") if raw.strip() else ""
    return _STATES.get(word, UNKNOWN)


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


class SlurmExecutor:
    """Submits job scripts with `sbatch --parsable`."""

    name = "slurm"

    def submit(self, spec: JobSpec) -> str:
        # The log goes on the command line (an argv word, never parsed by a shell or #SBATCH).
        cmd = ["sbatch", "--parsable", f"--output={spec.log}", "--open-mode=append"]
        if spec.depends_on:
            cmd.append("--dependency=afterok:" + ":".join(spec.depends_on))
        cmd.append(str(spec.script))
        result = _run(cmd, env={**os.environ, **spec.env})  # sbatch exports this environment to the job
        if result.returncode != 0:
            raise OrchError(
                f"sbatch refused the job: {result.stderr.strip()}",
                where=str(spec.script),
                fix="check partition, --gpus-per-node, --mem and --time against `sinfo`",
            )
        return result.stdout.strip().split(";")[0]

    def status(self, job_id: str) -> JobState:
        return self._squeue(job_id) or self._sacct(job_id) or self._scontrol(job_id) or JobState(UNKNOWN)

    def _squeue(self, job_id: str) -> JobState | None:
        result = _run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"])
        line = result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else ""
        if not line:
            return None
        state, _, reason = line.partition("|")
        return JobState(fold_state(state), None, reason if reason != "None" else "")

    def _sacct(self, job_id: str) -> JobState | None:
        result = _run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode"])
        if result.returncode != 0 or not result.stdout.strip():
            return None  # no accounting on this cluster, or not recorded yet
        state, _, code = result.stdout.strip().splitlines()[-1].partition("|")
        return JobState(fold_state(state), _exit_code(code), state)

    def _scontrol(self, job_id: str) -> JobState | None:
        result = _run(["scontrol", "show", "job", job_id])
        if result.returncode != 0:
            return None  # purged after MinJobAge
        fields = dict(re.findall(r"(\w+)=(\S*)", result.stdout))
        reason = fields.get("Reason", "")
        return JobState(
            fold_state(fields.get("JobState", "")),
            _exit_code(fields.get("ExitCode", "")),
            "" if reason == "None" else reason,
        )

    def cancel(self, job_id: str) -> None:
        result = _run(["scancel", job_id])
        if result.returncode != 0:
            raise OrchError(f"scancel {job_id} failed: {result.stderr.strip()}")


def _exit_code(text: str) -> int | None:
    head = text.split(":")[0]
    return int(head) if head.isdigit() else None
