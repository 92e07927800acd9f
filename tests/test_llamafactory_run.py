"""A rendered config really trains: the real llamafactory-cli on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_ID

from orchestrator.render import render_run
from orchestrator.validation import validate_run


@pytest.mark.slow
def test_rendered_training_config_runs(project, catalog, model_cache):
    sets = (
        f"model_name_or_path={model_cache / TINY_ID}",
        "bf16=false",
        "max_steps=4",
        "save_steps=2",
        "logging_steps=1",
        "eval_steps=2",
        "per_device_train_batch_size=2",
        "gradient_accumulation_steps=1",
        "preprocessing_num_workers=1",
    )
    task = catalog.task()
    assert validate_run(catalog, "tiny-qwen3", "lora", task, sets, stages=("sft",)).ok
    config = render_run(catalog, "tiny-qwen3", "lora", task, sets, stages=("sft",))["sft"]
    path = project.root / "train.yaml"
    path.write_text(config.text, encoding="utf-8")
    cli = Path(sys.executable).with_name("llamafactory-cli")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "WANDB_DISABLED": "true"}
    result = subprocess.run(
        [str(cli), "train", str(path)], cwd=project.root, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = project.root / "saves/tiny-qwen3/lora/sft"
    assert (out / "adapter_model.safetensors").is_file()
    assert (out / "checkpoint-2").is_dir() and (out / "checkpoint-4").is_dir()
    log = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert log[-1]["current_steps"] == 4 and log[-1]["total_steps"] == 4
