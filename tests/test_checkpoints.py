"""Checkpoint integrity: only a checkpoint the trainer can really resume from is ever chosen."""

from __future__ import annotations

import json

import pytest
from conftest import write_checkpoint

from orchestrator.outputs import OutputState, checkpoint_problems, output_status, set_aside_incomplete


def _break(folder, how: str) -> None:
    if how == "empty-state":
        (folder / "trainer_state.json").write_text("{}")
    elif how == "state-without-step":
        (folder / "trainer_state.json").write_text(json.dumps({"epoch": 1.0}))
    elif how == "empty-weights":
        (folder / "adapter_model.safetensors").write_bytes(b"")
    elif how == "truncated-header":
        (folder / "adapter_model.safetensors").write_bytes((1000).to_bytes(8, "little") + b"{}")
    elif how == "no-optimizer":
        (folder / "optimizer.pt").unlink()
    elif how == "scheduler-not-an-archive":
        (folder / "scheduler.pt").write_bytes(b"garbage")
    elif how == "no-rng":
        (folder / "rng_state.pth").unlink()
    elif how == "no-weights":
        (folder / "adapter_model.safetensors").unlink()


HOW = [
    "empty-state",
    "state-without-step",
    "empty-weights",
    "truncated-header",
    "no-optimizer",
    "scheduler-not-an-archive",
    "no-rng",
    "no-weights",
]


def test_a_complete_checkpoint_has_no_problems(tmp_path):
    assert checkpoint_problems(write_checkpoint(tmp_path / "checkpoint-4", 4)) == []


@pytest.mark.parametrize("how", HOW)
def test_a_damaged_checkpoint_is_not_resumed_from(tmp_path, how):
    out = tmp_path / "sft"
    write_checkpoint(out / "checkpoint-2", 2)
    _break(write_checkpoint(out / "checkpoint-4", 4), how)
    status = output_status(out)
    assert status.state is OutputState.RESUMABLE
    assert status.latest_checkpoint.name == "checkpoint-2"
    assert [p.name for p in status.incomplete] == ["checkpoint-4"]
    assert checkpoint_problems(out / "checkpoint-4")


def test_damaged_checkpoints_are_set_aside_with_their_reasons_never_deleted(tmp_path):
    out = tmp_path / "sft"
    write_checkpoint(out / "checkpoint-2", 2)
    folder = write_checkpoint(out / "checkpoint-4", 4)
    _break(folder, "empty-state")
    _break(folder, "empty-weights")
    moved = set_aside_incomplete(output_status(out))
    assert len(moved) == 1
    target, reasons = moved[0]
    assert target.is_dir() and (target / "optimizer.pt").is_file() and not folder.exists()
    assert any("trainer_state.json" in r for r in reasons) and any("adapter_model.safetensors" in r for r in reasons)


def test_the_issue_reproduction_plans_the_previous_checkpoint(project, catalog):
    """A checkpoint whose trainer_state.json is {} and whose adapter is empty was chosen for resume."""
    from orchestrator.submit import SubmitOptions, submit

    out = project.root / "saves/tiny-qwen3/lora/sft"
    write_checkpoint(out / "checkpoint-2", 2)
    _break(write_checkpoint(out / "checkpoint-4", 4), "empty-state")
    (out / "checkpoint-4/adapter_model.safetensors").write_bytes(b"")
    opts = SubmitOptions(executor="local", dry_run=True, sets=("bf16=false", "max_steps=8", "save_steps=2"))
    plans = submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
    assert plans[0].action == "resume" and plans[0].note == "from checkpoint-2"


def test_a_run_stopped_by_a_signal_resumes_instead_of_counting_as_finished(tmp_path):
    """transformers' just-in-time checkpoint stops training early and LLaMA-Factory still writes its
    results; a final step short of max_steps, with a checkpoint to go on from, is a stop, not an end."""
    out = tmp_path / "sft"
    write_checkpoint(out / "checkpoint-20", 20)
    write_checkpoint(out / "checkpoint-37", 37)
    (out / "train_results.json").write_text("{}")
    (out / "trainer_state.json").write_text(json.dumps({"global_step": 37, "max_steps": 100}))
    status = output_status(out)
    assert status.state is OutputState.RESUMABLE and status.latest_checkpoint.name == "checkpoint-37"
    (out / "trainer_state.json").write_text(json.dumps({"global_step": 100, "max_steps": 100}))
    assert output_status(out).state is OutputState.FINISHED


def test_a_signal_time_save_cut_off_is_not_resumed(tmp_path):
    folder = write_checkpoint(tmp_path / "checkpoint-9", 9)
    (folder / "checkpoint-is-incomplete.txt").write_text("in progress")
    assert any("cut off" in p for p in checkpoint_problems(folder))


def test_training_configs_checkpoint_on_signal(catalog):
    from orchestrator.render import render_run

    for model in catalog.model_names():
        assert render_run(catalog, model, "lora", catalog.task())["sft"].values["enable_jit_checkpoint"] is True


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\xff\xfe{", "trainer_state.json"),
        (json.dumps({"global_step": 2}).encode(), "the folder says 10"),
        (json.dumps({"global_step": True}).encode(), "no global_step"),
    ],
    ids=["not-utf8", "step-disagrees-with-folder", "step-is-bool"],
)
def test_a_checkpoint_whose_state_cannot_be_trusted(tmp_path, content, words):
    folder = write_checkpoint(tmp_path / "checkpoint-10", 10)
    (folder / "trainer_state.json").write_bytes(content)
    assert any(words in p for p in checkpoint_problems(folder))


def test_only_ascii_step_numbers_name_checkpoints(tmp_path):
    write_checkpoint(tmp_path / "checkpoint-4", 4)
    (tmp_path / "checkpoint-\u0669").mkdir()  # an Arabic-Indic nine
    assert [p.name for p in output_status(tmp_path).checkpoints] == ["checkpoint-4"]
