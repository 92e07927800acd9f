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


# What a state means for the run, said by `orch status` (the raw state stays in the reason).
EXPLAIN = {
    "PREEMPTED": "preempted: requeued, it resumes from its last checkpoint",
    "NODE_FAIL": "a node failed: resubmit, it resumes from its last checkpoint",
    "BOOT_FAIL": "the node failed to boot: resubmit, it resumes from its last checkpoint",
    "OUT_OF_MEMORY": "out of memory: resubmit with a larger --mem (or a smaller batch); it resumes",
    "DEADLINE": "passed its deadline before it could finish: resubmit, it resumes",
    "REVOKED": "revoked by a federated cluster",
}


def available() -> bool:
    """Whether this machine can submit to SLURM."""
    return shutil.which("sbatch") is not None


def fold_state(raw: str) -> str:
    """Our state for a SLURM state string (`CANCELLED by 0` -> CANCELLED)."""
    return _STATES.get(_word(raw), UNKNOWN)


def _word(raw: str) -> str:
    return raw.strip().split()[0].rstrip("+") if raw.strip() else ""


def _state(raw: str, exit_code: int | None = None, reason: str = "") -> JobState:
    """A JobState from SLURM's raw state, with what it means when SLURM's word needs explaining."""
    word = _word(raw)
    said = EXPLAIN.get(word)
    reason = "" if reason in ("None", word) else reason
    text = f"{word}: {said}" if said else reason
    if said and reason:
        text += f" ({reason})"
    return JobState(fold_state(raw), exit_code, text)


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


class SlurmExecutor:
    """Submits job scripts with `sbatch --parsable`."""

    name = "slurm"

    def submit(self, spec: JobSpec) -> str:
        # The log goes on the command line (an argv word, never parsed by a shell or #SBATCH).
        cmd = ["sbatch", "--parsable", f"--output={spec.log}", "--open-mode=append"]
        if spec.depends_on:
            # A failed parent cancels the job, even where slurm.conf lacks kill_invalid_depend.
            cmd += ["--dependency=afterok:" + ":".join(spec.depends_on), "--kill-on-invalid-dep=yes"]
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
        return self.statuses([job_id])[job_id]

    def statuses(self, job_ids: list[str]) -> dict[str, JobState]:
        """One squeue for all, one sacct for those squeue no longer lists, scontrol for what is left."""
        found = self._squeue(job_ids)
        found.update(self._sacct([j for j in job_ids if j not in found]))
        for job_id in job_ids:
            if job_id not in found:
                found[job_id] = self._scontrol(job_id) or JobState(UNKNOWN)
        return found

    def _squeue(self, job_ids: list[str]) -> dict[str, JobState]:
        if not job_ids:
            return {}
        result = _run(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i|%T|%r"])
        found = {}
        for line in result.stdout.splitlines() if result.returncode == 0 else []:
            job_id, _, rest = line.strip().partition("|")
            state, _, reason = rest.partition("|")
            if job_id in job_ids:
                found[job_id] = _state(state, None, reason)
        return found

    def _sacct(self, job_ids: list[str]) -> dict[str, JobState]:
        if not job_ids:
            return {}
        result = _run(["sacct", "-n", "-X", "-P", "-j", ",".join(job_ids), "-o", "JobID,State,ExitCode"])
        found = {}
        for line in result.stdout.splitlines() if result.returncode == 0 else []:  # no accounting: none
            job_id, _, rest = line.strip().partition("|")
            state, _, code = rest.partition("|")
            if job_id in job_ids:
                found[job_id] = _state(state, _exit_code(code), state)
        return found

    def _scontrol(self, job_id: str) -> JobState | None:
        result = _run(["scontrol", "show", "job", job_id])
        if result.returncode != 0:
            return None  # purged after MinJobAge
        fields = dict(re.findall(r"(\w+)=(\S*)", result.stdout))
        return _state(fields.get("JobState", ""), _exit_code(fields.get("ExitCode", "")), fields.get("Reason", ""))

    def cancel(self, job_id: str) -> None:
        result = _run(["scancel", job_id])
        if result.returncode != 0:
            raise OrchError(f"scancel {job_id} failed: {result.stderr.strip()}")


def _exit_code(text: str) -> int | None:
    head = text.split(":")[0]
    return int(head) if head.isdigit() else None
