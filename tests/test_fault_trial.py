"""Fault trial: one training run killed at five random moments, resubmitted each time, ends whole.

Local: the job's whole process group gets SIGKILL (no chance to save). SLURM: the job is
`scancel`ed as a user would (SIGTERM, so the trainer saves on the way out). After each
interruption the run is submitted again and must resume; at the end the run has exactly
its planned steps, every resume continued from the checkpoint it names (no reset to step
1), and the ledger holds every submission, interruption, resume and the finish.
Steps are paced (tests/pacer) so that no machine is too fast for the kill targets.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from conftest import cancel_everything
from test_submit import FAST, SFT, SLURM_RESOURCES, events, sft_dir, wait_state

from orchestrator import ledger
from orchestrator.executors import get_executor
from orchestrator.outputs import logged_losses, trainer_log
from orchestrator.runs import last_submission
from orchestrator.submit import SubmitOptions, submit

TOTAL = 200
SETS = FAST + (f"max_steps={TOTAL}", "save_steps=10", "logging_steps=1")


def _reached(project, step: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not any((e.get("current_steps") or 0) >= step for e in trainer_log(sft_dir(project))):
        assert time.time() < deadline, f"step {step} not reached"
        time.sleep(0.05)


def _started(project, timeout: float = 300) -> int:
    """Wait until the latest job has started (it may wait for the previous one to let go); its resume step."""
    job_id = str(last_submission(project, SFT)["job_id"])
    deadline = time.time() + timeout
    while True:
        mine = [r for r in ledger.for_run(project.ledger, SFT.name) if str(r.get("job_id")) == job_id]
        begun = [r for r in mine if r["event"] in ("started", "resumed")]
        if begun:
            resumed = begun[0].get("resumed_from")
            return int(resumed.rsplit("-", 1)[1]) if resumed else 0
        assert time.time() < deadline, f"job {job_id} never started"
        time.sleep(0.1)


def _interrupt(project, executor_name: str) -> None:
    sub = last_submission(project, SFT)
    if executor_name == "local":
        record = json.loads((project.jobs / "local" / f"{sub['job_id']}.json").read_text())
        os.killpg(record["pid"], signal.SIGKILL)  # the supervisor, bash, orch and the trainer: no goodbye
    else:
        get_executor("slurm", project.jobs).cancel(str(sub["job_id"]))  # scancel, behind orch's back
    wait_state(project, SFT, ("FAILED", "CANCELLED"), timeout=120)


@pytest.mark.parametrize("executor_name", ["local", "slurm"])
def test_five_interruptions_and_the_run_still_ends_whole(project, catalog, executor_name, monkeypatch, request):
    if executor_name == "slurm":
        request.getfixturevalue("slurm_cluster")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent / "pacer"))
    monkeypatch.setenv("ORCH_TEST_STEP_SECONDS", "0.1")
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    targets = sorted(rng.sample(range(15, TOTAL - 60), 5))
    opts = SubmitOptions(executor=executor_name, sets=SETS, resources=dict(SLURM_RESOURCES), command="pytest")
    try:
        for target in targets:
            submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
            _reached(project, max(target, _started(project) + 3))  # a moment of *this* job's training
            _interrupt(project, executor_name)
        plans = submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
        assert plans[0].action == "resume", f"seed {seed}"
        wait_state(project, SFT, timeout=600)
    finally:
        cancel_everything(project, executor_name)

    state = json.loads((sft_dir(project) / "trainer_state.json").read_text())
    assert state["global_step"] == TOTAL, f"seed {seed}"
    records = ledger.for_run(project.ledger, SFT.name)
    resumed = [int(r["resumed_from"].rsplit("-", 1)[1]) for r in records if r["event"] == "resumed"]
    assert len(resumed) == 5 and all(step > 0 for step in resumed), (seed, resumed)
    # Every resume continues right after the checkpoint it names, never from step 1 (a resume that
    # lands exactly where the last segment ended shows no step going back, hence `<=`).
    steps = [step for step, _ in logged_losses(sft_dir(project))]
    starts = [b for a, b in zip(steps, steps[1:], strict=False) if b <= a]
    assert set(starts) <= {step + 1 for step in resumed} and all(b > 1 for b in starts), (seed, starts, resumed)
    assert sorted(set(steps)) == list(range(1, TOTAL + 1)), f"seed {seed}"
    names = events(project, SFT)
    ended = "failed" if executor_name == "local" else "cancelled"
    assert names.count("submitted") == 6 and names.count(ended) >= 5 and names[-1] == "finished", (seed, names)
