"""Training throughput: tokens/s from the trainer's own count, MFU from 6·N and the device's peak."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_ID

from orchestrator import ledger, throughput
from orchestrator.layout import Run
from orchestrator.runs import run_output_dir


def test_peak_comes_from_the_setting_then_the_table(monkeypatch):
    monkeypatch.delenv(throughput.PEAK_ENV, raising=False)
    assert throughput.peak_tflops("NVIDIA A40") == 149.7
    assert throughput.peak_tflops("NVIDIA H100 PCIe") == 756.0  # the specific entry before the family
    assert throughput.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert throughput.peak_tflops("cpu") is None  # unknown: no MFU rather than a guess
    assert throughput.peak_tflops("cpu", configured=1.5) == 1.5
    monkeypatch.setenv(throughput.PEAK_ENV, "2.5")
    assert throughput.peak_tflops("NVIDIA A40", configured=1.5) == 2.5


def test_non_embedding_parameters_match_the_loaded_model(model_cache):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_cache / TINY_ID))
    embedding = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    embedding |= {id(p) for p in model.get_output_embeddings().parameters()}
    expected = sum(p.numel() for p in model.parameters() if id(p) not in embedding)
    assert throughput.non_embedding_params(str(model_cache / TINY_ID)) == expected > 0


def test_a_runs_throughput_and_mfu_in_status_and_collect_inputs(project, model_cache, monkeypatch):
    """The field report's case: a run on one A40; MFU = tokens/s x 6N / peak."""
    monkeypatch.delenv(throughput.PEAK_ENV, raising=False)
    run = Run("tiny-qwen3", "lora", "sft")
    out = run_output_dir(project, run)
    out.mkdir(parents=True)
    (out / "orch_config.yaml").write_text(f"model_name_or_path: {TINY_ID}\ntemplate: qwen3_nothink\n")
    logs = [
        {"current_steps": 1, "total_steps": 4, "loss": 3.0, "throughput": 900.0, "total_tokens": 900},
        {"current_steps": 2, "total_steps": 4, "loss": 2.5, "throughput": 1000.0, "total_tokens": 2000},
    ]
    (out / "trainer_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in logs))
    ledger.append(project.ledger, {"event": "started", "run": run.name, "device": "NVIDIA A40", "devices": 2})
    got = throughput.run_throughput(project, run, out)
    params = throughput.non_embedding_params(str(model_cache / TINY_ID))
    assert got.tokens_per_s == 1000.0 and got.tokens == 2000 and got.device == "NVIDIA A40"
    assert got.mfu == pytest.approx(1000.0 * 6 * params / (149.7e12 * 2))


def test_no_token_count_means_no_throughput(tmp_path):
    (tmp_path / "trainer_log.jsonl").write_text(json.dumps({"current_steps": 1, "loss": 2.0}) + "\n")
    got = throughput.measure(tmp_path, None, "cpu", 1, None)
    assert got.tokens_per_s is None and got.mfu is None


def test_shipped_training_configs_count_tokens(catalog):
    """Every rendered training config asks the trainer to count tokens (else no throughput is logged)."""
    configs = sorted(catalog.project.configs.glob("train_*.yaml"))
    assert configs
    for path in configs:
        assert "include_num_input_tokens_seen: true" in path.read_text(encoding="utf-8"), path
