"""Local: the same job script as a background process on this machine.

Each job gets a small supervisor process (`python -m orchestrator.executors.local
RECORD`) in its own session: it waits for the jobs it depends on, runs `bash
job.sh` with output to the job's log, and writes the exit code. State lives in
`jobs/local/<id>.json` (+ `.rc`, `.started`, `.cancelled`), so status works from
any later `orch` process. Time limits are not enforced locally.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.errors import OrchError
from orchestrator.executors.base import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    UNKNOWN,
    JobSpec,
    JobState,
)
from orchestrator.fileio import write_json_atomic, write_text_atomic

DEPENDENCY_FAILED = "dependency-failed"


class LocalExecutor:
    """Runs job scripts as detached background processes."""

    name = "local"

    def __init__(self, jobs_dir: Path):
        self.registry = jobs_dir / "local"

    def _record(self, job_id: str) -> Path:
        return self.registry / f"{job_id}.json"

    def submit(self, spec: JobSpec) -> str:
        self.registry.mkdir(parents=True, exist_ok=True)
        job_id = f"local-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{len(list(self.registry.glob('*.json')))}"
        record = self._record(job_id)
        write_json_atomic(
            record,
            {
                "id": job_id,
                "name": spec.name,
                "script": str(spec.script),
                "log": str(spec.log),
                "depends_on": list(spec.depends_on),
                "registry": str(self.registry),
            },
        )
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.executors.local", str(record)],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **spec.env, "ORCH_JOB_ID": job_id},
        )
        data = json.loads(record.read_text())
        write_json_atomic(record, {**data, "pid": proc.pid, "pid_start": _start_time(proc.pid)})
        return job_id

    def statuses(self, job_ids: list[str]) -> dict[str, JobState]:
        return {job_id: self.status(job_id) for job_id in job_ids}

    def status(self, job_id: str) -> JobState:
        record = self._record(job_id)
        if not record.is_file():
            return JobState(UNKNOWN, None, "no such local job")
        rc_file = record.with_suffix(".rc")
        if rc_file.is_file():
            text = rc_file.read_text().strip()
            if record.with_suffix(".cancelled").exists():
                return JobState(CANCELLED, None, "cancelled")
            if text == DEPENDENCY_FAILED:
                return JobState(CANCELLED, None, "DependencyNeverSatisfied")
            code = int(text) if text.lstrip("-").isdigit() else None
            return JobState(COMPLETED if code == 0 else FAILED, code)
        data = json.loads(record.read_text())
        pid = data.get("pid")
        if pid is None or not _alive(pid, data.get("pid_start")):
            if record.with_suffix(".cancelled").exists():
                return JobState(CANCELLED, None, "cancelled")
            return JobState(FAILED, None, "supervisor died without an exit code") if pid else JobState(PENDING)
        return JobState(RUNNING if record.with_suffix(".started").exists() else PENDING)

    def cancel(self, job_id: str) -> None:
        record = self._record(job_id)
        if not record.is_file():
            raise OrchError(f"no local job {job_id}")
        write_text_atomic(record.with_suffix(".cancelled"), "cancelled\n")
        data = json.loads(record.read_text())
        pid, start = data.get("pid"), data.get("pid_start")
        if pid and _alive(pid, start):  # never signal a stranger that reused the pid
            _signal_group(pid, signal.SIGTERM)
            for _ in range(100):
                if not _alive(pid, start):
                    break
                time.sleep(0.1)
            else:
                _signal_group(pid, signal.SIGKILL)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(") ", 1)[-1].split()
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, it names one process for ever."""
    fields = _stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def _alive(pid: int, start: int | None = None) -> bool:
    """Whether our process `pid` runs: not a zombie, and not another process that got the pid since."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":
        return False
    if start is None:  # a record from before start times were kept: trust only our own supervisor
        return _is_supervisor(pid)
    return _start_time(pid) == start


def _is_supervisor(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"orchestrator.executors.local" in handle.read()
    except OSError:
        return False


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _supervise(record_path: Path) -> int:
    """Wait for dependencies, run the job script, record its exit code."""
    record = json.loads(record_path.read_text())
    rc_file = record_path.with_suffix(".rc")
    executor = LocalExecutor(Path(record["registry"]).parent)
    for dep in record["depends_on"]:
        while not (state := executor.status(dep)).terminal:
            if record_path.with_suffix(".cancelled").exists():
                write_text_atomic(rc_file, "143\n")
                return 143
            time.sleep(1)
        if state.state != COMPLETED:
            write_text_atomic(rc_file, DEPENDENCY_FAILED + "\n")
            return 1
    write_text_atomic(record_path.with_suffix(".started"), "started\n")
    with open(record["log"], "ab") as log:
        child = subprocess.Popen(
            ["bash", record["script"]], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

        def forward(signum, _frame):
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        code = child.wait()
    write_text_atomic(rc_file, f"{code}\n")
    return code


if __name__ == "__main__":
    sys.exit(_supervise(Path(sys.argv[1])))
