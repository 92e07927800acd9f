"""Scheduler truth at scale: the ledger's terminal records stand; open jobs are asked in one call."""

from __future__ import annotations

import json
import os

import pytest

from orchestrator import ledger
from orchestrator.executors import get_executor
from orchestrator.executors.base import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, TIMEOUT, UNKNOWN, JobSpec
from orchestrator.executors.local import LocalExecutor
from orchestrator.monitor import all_status, follow, run_status
from orchestrator.runs import Run


def _submitted(project, run: Run, job_id: str, time: str = "2026-01-01T00:00:00+00:00") -> None:
    ledger.append(
        project.ledger,
        {
            "time": time,
            "event": "submitted",
            "run": run.name,
            "executor": "local",
            "job_id": job_id,
            "output_dir": f"saves/{run.model}/{run.method}/sft",
            "log": f"jobs/{run.slug}/job.log",
        },
    )


def test_finished_jobs_stay_finished_when_the_scheduler_forgets_them(project, monkeypatch):
    """300 runs whose jobs the scheduler no longer knows; 200 finished by their own record."""
    for i in range(300):
        run = Run(f"m{i}", "lora", "sft")
        _submitted(project, run, f"local-gone-{i}")
        if i < 200:
            ledger.append(project.ledger, {"event": "finished", "run": run.name, "job_id": f"local-gone-{i}"})
    asked: list[list[str]] = []
    real = LocalExecutor.statuses
    monkeypatch.setattr(LocalExecutor, "statuses", lambda self, ids: asked.append(list(ids)) or real(self, ids))
    rows = all_status(project)
    states = [row.state for row in rows]
    assert states.count(COMPLETED) == 200 and states.count(UNKNOWN) == 100
    assert [len(ids) for ids in asked] == [100]  # one batched question, only for the open jobs


def test_a_ledger_record_missing_a_field_is_skipped_with_a_warning(project, orch):
    ledger.append(project.ledger, {"event": "submitted", "run": "old/lora/sft", "executor": "local"})
    _submitted(project, Run("good", "lora", "sft"), "local-gone-1")
    result = orch("status", "--all")
    assert result.exit_code == 0, result.output
    assert "lacks job_id" in result.output and "Traceback" not in result.output
    assert "good/lora/sft" in result.output


def test_a_reused_pid_is_never_taken_for_our_job_nor_signalled(project):
    """The supervisor's pid now belongs to a stranger (this test process, another start time)."""
    executor = LocalExecutor(project.jobs)
    executor.registry.mkdir(parents=True)
    record = executor.registry / "local-reused.json"
    record.write_text(json.dumps({"id": "local-reused", "pid": os.getpid(), "pid_start": 1, "log": "x"}))
    assert executor.status("local-reused").state == FAILED
    executor.cancel("local-reused")  # would SIGTERM this very process if it trusted the pid
    assert executor.status("local-reused").state == CANCELLED


@pytest.mark.parametrize(
    ("raw", "state", "words"),
    [
        ("PREEMPTED", PENDING, "resumes"),
        ("NODE_FAIL", FAILED, "node failed"),
        ("BOOT_FAIL", FAILED, "boot"),
        ("OUT_OF_MEMORY", FAILED, "--mem"),
        ("DEADLINE", TIMEOUT, "deadline"),
        ("CANCELLED by 0", CANCELLED, "by 0"),
    ],
)
def test_slurm_states_are_explained(raw, state, words):
    from orchestrator.executors.slurm import _state

    found = _state(raw, None, raw)
    assert found.state == state and words in found.reason


def test_follow_ends_when_the_scheduler_no_longer_knows_the_job(project):
    run = Run("gone", "lora", "sft")
    _submitted(project, run, "local-gone-7")
    said: list[str] = []
    follow(project, run, said.append, poll=0.01, unknown_grace=0.1)
    assert "no longer knows job local-gone-7" in "".join(said)
    assert run_status(project, run).state == UNKNOWN


def test_slurm_open_jobs_are_asked_in_one_call(project, slurm_cluster, monkeypatch):
    """Three real SLURM jobs: one squeue answers for all of them."""
    import orchestrator.executors.slurm as slurm

    executor = get_executor("slurm", project.jobs)
    script = project.root / "sleep.sh"
    script.write_text("#!/usr/bin/env bash\n#SBATCH --time=5\nsleep 300\n")
    ids = [
        executor.submit(JobSpec(f"orch-sleep-{i}", script, project.root / f"sleep-{i}.log", project.root))
        for i in range(3)
    ]
    calls: list[list[str]] = []
    real = slurm._run
    monkeypatch.setattr(slurm, "_run", lambda cmd, env=None: calls.append(cmd) or real(cmd, env))
    try:
        states = executor.statuses(ids)
        assert {s.state for s in states.values()} <= {PENDING, RUNNING}
        assert [cmd[0] for cmd in calls] == ["squeue"]
    finally:
        for job_id in ids:
            executor.cancel(job_id)


@pytest.mark.parametrize(
    "line",
    [
        '{"time": 12345, "event": "submitted", "run": "odd/lora/sft", "executor": "local", "job_id": "1"}',
        '{"event": ["finished"], "run": "odd/lora/sft"}',
        '{"event": "submitted", "run": ["x"]}',
        '["not", "a", "record"]',
        '{"time": "2027-13-45", "event": "started", "run": "good/lora/sft", "job_id": "local-gone-1"}',
    ],
)
def test_hand_edited_ledger_lines_never_crash_status(project, orch, line):
    _submitted(project, Run("good", "lora", "sft"), "local-gone-1")
    with project.ledger.open("a") as handle:
        handle.write(line + "\n")
    result = orch("status", "--all")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output


def test_a_job_clock_behind_the_submitting_machine_still_ends_its_job(project):
    """The job's own `finished` record, stamped a second before the submission (node clocks differ)."""
    run = Run("skew", "lora", "sft")
    _submitted(project, run, "local-gone-3", time="2026-01-01T00:00:01+00:00")
    ledger.append(
        project.ledger,
        {"time": "2026-01-01T00:00:00+00:00", "event": "finished", "run": run.name, "job_id": "local-gone-3"},
    )
    assert run_status(project, run).state == COMPLETED


def test_an_old_record_without_a_start_time_trusts_only_our_supervisor(project):
    executor = LocalExecutor(project.jobs)
    executor.registry.mkdir(parents=True)
    (executor.registry / "local-old.json").write_text(json.dumps({"id": "local-old", "pid": os.getpid(), "log": "x"}))
    assert executor.status("local-old").state == FAILED  # this pytest process is not a supervisor
