"""Submitting, watching, cancelling, resuming and restarting runs, on both executors.

The same behaviour tests run on the local executor and on a real single-node
SLURM cluster (started by scripts/slurm-up.sh), with the real llamafactory-cli
training the tiny model. Tests cancel whatever jobs they leave behind.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import TINY_ID, cancel_everything

from orchestrator import ledger
from orchestrator.errors import OrchError
from orchestrator.monitor import cancel, run_status
from orchestrator.outputs import is_complete, logged_losses
from orchestrator.runs import Run, last_submission
from orchestrator.submit import SubmitOptions, submit

FAST = (
    "bf16=false",
    "per_device_train_batch_size=2",
    "gradient_accumulation_steps=1",
    "preprocessing_num_workers=1",
    "eval_steps=1000",
)
SLURM_RESOURCES = {"gpus_per_node": 0, "cpus_per_task": 1, "mem": "3G", "time": "00:10:00"}
SFT = Run("tiny-qwen3", "lora", "sft")


def go(catalog, executor, *sets, then=(), restart=False, allow=False, model="tiny-qwen3", command="pytest"):
    opts = SubmitOptions(
        method="lora",
        executor=executor,
        sets=FAST + sets,
        then=then,
        restart=restart,
        allow_config_change=allow,
        resources=dict(SLURM_RESOURCES),
        command=command,
    )
    return submit(catalog, [model], opts, log=lambda _m: None)


def wait_state(project, run, states=("COMPLETED",), timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = run_status(project, run)
        if status and status.state in states:
            return status
        if status and status.state in ("FAILED", "CANCELLED", "TIMEOUT") and status.state not in states:
            raise AssertionError(f"{run.name} ended {status.state}:\n{status.log_tail}")
        time.sleep(1)
    raise AssertionError(f"{run.name} not {states} after {timeout}s: {run_status(project, run)}")


def events(project, run):
    return [r["event"] for r in ledger.for_run(project.ledger, run.name)]


def sft_dir(project):
    return project.root / "saves/tiny-qwen3/lora/sft"


def test_submit_runs_to_completion(project, catalog, executor):
    plans = go(catalog, executor, "max_steps=6", "save_steps=3", "logging_steps=1")
    assert [p.action for p in plans] == ["fresh"]
    status = wait_state(project, SFT)
    assert status.step == "6/6" and status.loss
    out = sft_dir(project)
    for name in (
        "adapter_model.safetensors",
        "trainer_log.jsonl",
        "train_results.json",
        "checkpoint-6",
        "orch_config.yaml",
    ):
        assert (out / name).exists(), name
    wait_for_event(project, SFT, "finished")
    assert events(project, SFT) == ["submitted", "started", "finished"]
    finished = ledger.for_run(project.ledger, SFT.name)[-1]
    assert finished["global_step"] == 6 and finished["train_loss"] > 0
    submitted = ledger.for_run(project.ledger, SFT.name)[0]
    assert submitted["executor"] == executor and len(submitted["config_sha256"]) == 64
    assert submitted["dataset"] == "data/student_mental/train.jsonl, data/student_mental/val.jsonl"
    steps_md = project.steps.read_text()
    assert f"submitted · {SFT.name}" in steps_md and f"finished · {SFT.name}" in steps_md
    # A finished run is not trained again without --restart.
    assert [p.action for p in go(catalog, executor, "max_steps=6", "save_steps=3", "logging_steps=1")] == ["skip"]


def wait_for_event(project, run, event, timeout=30):
    """Until the event is recorded: its ledger line and then its steps.md entry (record_event writes both)."""
    deadline = time.time() + timeout

    def journaled() -> bool:
        return project.steps.is_file() and f"{event} · {run.name}" in project.steps.read_text(encoding="utf-8")

    while event not in events(project, run) or not journaled():
        assert time.time() < deadline, f"no {event} event: {events(project, run)}"
        time.sleep(0.5)


def test_cancel_after_checkpoint_then_resume_continues(project, catalog, executor):
    sets = ("max_steps=160", "save_steps=20", "logging_steps=5")
    go(catalog, executor, *sets)
    deadline = time.time() + 120
    while not (sft_dir(project) / "checkpoint-20" / "trainer_state.json").is_file():  # a complete checkpoint
        assert time.time() < deadline, "no checkpoint-20"
        time.sleep(0.2)
    cancel(project, SFT)
    status = wait_state(project, SFT, ("CANCELLED",), timeout=60)
    assert status.state == "CANCELLED"
    assert (sft_dir(project) / "checkpoint-20").is_dir()  # cancel keeps checkpoints
    first_log = [json.loads(x) for x in (sft_dir(project) / "trainer_log.jsonl").read_text().splitlines()]
    loss_at_5 = next(e["loss"] for e in first_log if e["current_steps"] == 5)

    plans = go(catalog, executor, *sets)
    assert plans[0].action == "resume"
    planned = sorted(int(p.name.split("-")[1]) for p in sft_dir(project).glob("checkpoint-*") if is_complete(p))[-1]
    assert plans[0].note == f"from checkpoint-{planned}"
    wait_state(project, SFT)
    # The cancelled job saves a checkpoint on its way out (enable_jit_checkpoint), possibly after the plan
    # was made; the new job waits for it to let go and resumes from the latest one, at or after the plan.
    wait_for_event(project, SFT, "resumed")
    record = [r for r in ledger.for_run(project.ledger, SFT.name) if r["event"] == "resumed"][0]
    latest = int(record["resumed_from"].rsplit("-", 1)[1])
    assert latest >= planned
    state = json.loads((sft_dir(project) / "trainer_state.json").read_text())
    assert state["global_step"] == 160
    logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged == sorted(set(logged)), "steps restarted: training began again from scratch"
    resumed = [h for h in state["log_history"] if "loss" in h and h["step"] > latest][0]
    assert resumed["loss"] < loss_at_5  # the loss continues, it is not reset to its starting level
    assert record["resumed_from"] == f"saves/tiny-qwen3/lora/sft/checkpoint-{latest}"
    assert f"resumed from | `saves/tiny-qwen3/lora/sft/checkpoint-{latest}`" in project.steps.read_text()


def test_second_submit_of_a_running_run_is_refused(project, catalog, executor):
    go(catalog, executor, "max_steps=2000", "save_steps=1000", "logging_steps=50")
    wait_state(project, SFT, ("PENDING", "RUNNING"), timeout=30)
    with pytest.raises(OrchError, match="not submitted twice"):
        go(catalog, executor, "max_steps=2000", "save_steps=1000", "logging_steps=50")
    assert events(project, SFT).count("submitted") == 1


def test_config_change_is_refused_unless_allowed(project, catalog, executor):
    sets = ("max_steps=2000", "save_steps=10", "logging_steps=10")
    go(catalog, executor, *sets)
    deadline = time.time() + 120
    while not (sft_dir(project) / "checkpoint-10" / "trainer_state.json").is_file():
        assert time.time() < deadline
        time.sleep(0.2)
    cancel(project, SFT)
    wait_state(project, SFT, ("CANCELLED",), timeout=60)
    with pytest.raises(OrchError) as err:
        go(catalog, executor, *sets, "learning_rate=5.0e-5")
    assert "the config changed" in str(err.value) and "+learning_rate: 5.0e-05" in str(err.value)
    plans = go(catalog, executor, *sets, "learning_rate=5.0e-5", allow=True)
    assert plans[0].action == "resume" and "config changed, allowed" in plans[0].note


def test_restart_moves_the_old_directory_aside(project, catalog, executor):
    go(catalog, executor, "max_steps=4", "save_steps=2", "logging_steps=1")
    wait_state(project, SFT)
    old_adapter = (sft_dir(project) / "adapter_model.safetensors").read_bytes()
    plans = go(catalog, executor, "max_steps=4", "save_steps=2", "logging_steps=1", restart=True)
    assert plans[0].action == "restart"
    backups = list(sft_dir(project).parent.glob("sft.bak-*"))
    assert len(backups) == 1 and (backups[0] / "adapter_model.safetensors").read_bytes() == old_adapter
    assert plans[0].moved_to == f"saves/tiny-qwen3/lora/{backups[0].name}"
    wait_state(project, SFT)
    assert (sft_dir(project) / "adapter_model.safetensors").is_file()
    assert "restarted" in events(project, SFT)


def add_broken_model(project, model_cache) -> None:
    """The model `broken-qwen3`: the tiny model's files with unreadable weights (training fails at load)."""
    broken = model_cache / "orch-test/broken-qwen3"
    if not broken.exists():
        shutil.copytree(model_cache / TINY_ID, broken)
        (broken / "model.safetensors").write_bytes(b"not safetensors")
    template = (project.templates / "models/tiny-qwen3.yaml.j2").read_text()
    (project.templates / "models/broken-qwen3.yaml.j2").write_text(template.replace(TINY_ID, "orch-test/broken-qwen3"))


def test_failed_train_cancels_its_chain(project, catalog, executor, model_cache):
    add_broken_model(project, model_cache)
    go(catalog, executor, "max_steps=2", then=("predict", "export"), model="broken-qwen3")
    train, predict, export = (Run("broken-qwen3", "lora", s) for s in ("sft", "predict", "export"))
    wait_state(project, train, ("FAILED",), timeout=180)
    for run in (predict, export):
        wait_state(project, run, ("CANCELLED",), timeout=60)
        assert "started" not in events(project, run), f"{run.name} ran after a failed train"
    assert not (project.root / "saves/broken-qwen3/lora/predict").exists()
    wait_for_event(project, train, "failed")
    failed = [r for r in ledger.for_run(project.ledger, train.name) if r["event"] == "failed"][0]
    assert failed["log_tail"]
    assert "failed · broken-qwen3/lora/sft" in project.steps.read_text()
    sub = last_submission(project, predict)
    assert sub["depends_on"] == [last_submission(project, train)["job_id"]]


def test_invalid_config_is_never_submitted(project, catalog, executor):
    with pytest.raises(OrchError, match="fails validation"):
        go(catalog, executor, "template=qwen2")
    assert not project.ledger.exists() or "submitted" not in events(project, SFT)


def test_local_cpu_run_refuses_bf16(project, catalog):
    opts = SubmitOptions(method="lora", executor="local", sets=("max_steps=2",), command="pytest")
    with pytest.raises(OrchError, match="bf16 needs a CUDA GPU"):
        submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)


def test_time_limit_requeues_and_finishes(project, catalog, slurm_cluster, monkeypatch):
    """A 2-minute limit with the requeue signal 60 s before it: the job requeues itself, saves a
    checkpoint on the way out (enable_jit_checkpoint), and resumes from it losing no step.

    Steps are paced (tests/pacer: 0.1 s each, 70 s for 700 steps) so that training outlasts the
    first signal on any machine; a fast machine would otherwise finish before it.
    """
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent / "pacer"))
    monkeypatch.setenv("ORCH_TEST_STEP_SECONDS", "0.1")
    opts = SubmitOptions(
        method="lora",
        executor="slurm",
        sets=FAST + ("max_steps=700", "save_steps=50", "logging_steps=1"),
        resources={**SLURM_RESOURCES, "time": "2", "signal_seconds": 60, "max_requeues": 8},
        command="pytest",
    )
    try:
        submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
        wait_state(project, SFT, timeout=900)  # about 2 minutes on an idle 2-core machine
        wait_for_event(project, SFT, "finished")
        names = events(project, SFT)
        assert "requeued" in names and names[-1] == "finished"
        requeued = [r for r in ledger.for_run(project.ledger, SFT.name) if r["event"] == "requeued"]
        assert requeued[0]["requeues"] >= 1
        state = json.loads((sft_dir(project) / "trainer_state.json").read_text())
        assert state["global_step"] == 700
        log = (project.root / last_submission(project, SFT)["log"]).read_text()
        assert "requeueing job" in log and "resuming from" in log
        # Saved on the signal: the resumed run's first logged step follows the last one before the
        # requeue (at most the step in flight is trained again), never back to the last save_steps.
        steps = [step for step, _ in logged_losses(sft_dir(project))]
        assert steps[0] == 1 and steps[-1] == 700
        assert all(b - a in (0, 1) for a, b in zip(steps, steps[1:], strict=False)), steps
    finally:
        cancel_everything(project, "slurm")


def test_two_processes_train_through_the_multi_process_branch(project, catalog, slurm_cluster):
    """A real 2-rank run (gloo on CPU) through the job script's multi-process branch on the localhost
    SLURM: torchrun is found (the environment's bin/ is on PATH) and both ranks train to the end."""
    opts = SubmitOptions(
        method="lora",
        executor="slurm",
        sets=FAST + ("max_steps=4", "save_steps=2", "logging_steps=1"),
        resources={**SLURM_RESOURCES, "processes_per_node": 2, "cpus_per_task": 2, "mem": "6G"},
        command="pytest",
    )
    try:
        submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
        wait_state(project, SFT, timeout=600)
        log = (project.root / last_submission(project, SFT)["log"]).read_text()
        assert "world size: 2" in log, log[-3000:]
        assert "Process rank: 1" in log
        state = json.loads((sft_dir(project) / "trainer_state.json").read_text())
        assert state["global_step"] == 4
    finally:
        cancel_everything(project, "slurm")


def test_cli_submit_status_logs_cancel(project, orch):
    args = ["submit", "tiny-qwen3", "-e", "local", "--then", "predict"]
    for item in FAST + ("max_steps=3000", "save_steps=1000", "logging_steps=10"):
        args += ["--set", item]
    result = orch(*args)
    assert result.exit_code == 0, result.output
    assert "tiny-qwen3/lora/sft: submitted as local job" in result.output
    wait_state(project, SFT, ("RUNNING",), timeout=60)
    table = orch("status", "--all")
    assert table.exit_code == 0
    rows = {line.split()[0]: line.split() for line in table.output.splitlines()[1:] if line.strip()}
    assert rows["tiny-qwen3/lora/sft"][3] == "RUNNING" and rows["tiny-qwen3/lora/predict"][3] == "PENDING"
    deadline = time.time() + 60
    while "orch: " not in orch("logs", SFT.name).output:
        assert time.time() < deadline
        time.sleep(0.5)
    assert "llamafactory-cli train" in orch("logs", SFT.name).output
    cancelled = orch("cancel", SFT.name)
    assert cancelled.exit_code == 0 and "cancelled job" in cancelled.output
    wait_state(project, SFT, ("CANCELLED",), timeout=60)
    wait_state(project, Run("tiny-qwen3", "lora", "predict"), ("CANCELLED",), timeout=60)
    again = orch("cancel", SFT.name)
    assert again.exit_code == 2 and "already ended" in again.output
    assert orch("status", "nothing/lora/sft").output.startswith("no runs yet")


def test_dry_run_submits_nothing(project, orch):
    result = orch("submit", "tiny-qwen3", "-e", "local", "--dry-run", "--set", "bf16=false", "--then", "export")
    assert result.exit_code == 0, result.output
    assert "--- tiny-qwen3/lora/sft: fresh" in result.output and "finetuning_type: lora" in result.output
    assert "--- tiny-qwen3/lora/export: fresh" in result.output
    assert not project.ledger.exists() and not (project.root / "saves").exists()
