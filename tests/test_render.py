"""Rendering: templates -> LLaMA-Factory YAMLs and dataset_info.json."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import REPO

from orchestrator.catalog import Catalog
from orchestrator.errors import OrchError
from orchestrator.project import Project
from orchestrator.render import render_all, render_run

SHIPPED_MODELS = {
    "qwen2p5-0p5b": "qwen",
    "qwen2p5-1p5b": "qwen",
    "qwen3-0p6b": "qwen3_nothink",
    "qwen3-1p7b": "qwen3_nothink",
    "r1-qwen1p5b": "deepseekr1",
    "llama3p2-1b": "llama3",
    "gemma3-1b": "gemma2",
    "mistral-7b": "mistral",
    "smollm2-135m": "smollm2",
}


def test_committed_configs_match_templates(monkeypatch, orch):
    """`orch render --all --check` on the repository itself: the committed files are current."""
    monkeypatch.setenv("ORCH_ROOT", str(REPO))
    result = orch("render", "--all", "--check")
    assert result.exit_code == 0, result.output
    assert "match the templates" in result.output


def test_every_shipped_model_and_method_is_rendered():
    catalog = Catalog(Project(REPO))
    assert set(SHIPPED_MODELS) <= set(catalog.model_names())
    assert catalog.method_names() == ["lora", "qlora"]
    for model, template in SHIPPED_MODELS.items():
        for method in ("lora", "qlora"):
            for prefix in ("train", "predict", "export"):
                path = REPO / f"llamafactory_configs/{prefix}_{model}_{method}.yaml"
                values = yaml.safe_load(path.read_text(encoding="utf-8"))
                assert values["template"] == template, path
    info = json.loads((REPO / "llamafactory_configs/dataset_info.json").read_text(encoding="utf-8"))
    assert info["student_mental_train"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output"}


def test_field_defaults_in_training_config(catalog):
    cfg = render_run(catalog, "qwen3-1p7b", "lora", catalog.task())["sft"].values
    expected = {
        "lora_rank": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lora_target": "all",
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 4,
        "learning_rate": 1.0e-4,
        "num_train_epochs": 3.0,
        "bf16": True,
        "eval_dataset": "student_mental_val",
        "eval_strategy": "steps",
        "finetuning_type": "lora",
        "output_dir": "saves/qwen3-1p7b/lora/sft",
        "dataset": "student_mental_train",
    }
    assert {k: cfg[k] for k in expected} == expected
    assert "quantization_bit" not in cfg


def test_qlora_quantizes_train_and_predict_but_not_export(catalog):
    configs = render_run(catalog, "qwen3-1p7b", "qlora", catalog.task())
    assert configs["sft"].values["quantization_bit"] == 4
    assert configs["predict"].values["quantization_bit"] == 4
    assert "quantization_bit" not in configs["export"].values
    assert "learning_rate" not in configs["export"].values


def test_render_is_deterministic(catalog):
    task = catalog.task()
    first = render_all(catalog, catalog.model_names(), catalog.method_names(), [task])
    second = render_all(Catalog(catalog.project), catalog.model_names(), catalog.method_names(), [task])
    assert first == second
    assert all("\n# Do not edit" in text for path, text in first.items() if path.suffix == ".yaml")


def test_model_overrides_family_and_set_overrides_model(catalog):
    """mistral-7b overrides the batch size; --set beats it; stage.key targets one stage."""
    task = catalog.task()
    assert render_run(catalog, "mistral-7b", "lora", task)["sft"].values["per_device_train_batch_size"] == 4
    configs = render_run(
        catalog,
        "mistral-7b",
        "lora",
        task,
        sets=["per_device_train_batch_size=2", "cutoff_len=512", "predict.max_new_tokens=64", "max_steps=7"],
    )
    assert configs["sft"].values["per_device_train_batch_size"] == 2
    assert configs["sft"].origins["per_device_train_batch_size"] == "--set"
    assert all(c.values["cutoff_len"] == 512 for c in configs.values())  # shared key: every stage
    assert configs["predict"].values["max_new_tokens"] == 64
    assert configs["sft"].values["max_steps"] == 7  # a new key goes to training
    assert "max_steps" not in configs["predict"].values


def test_bad_set_is_a_clear_error(catalog):
    with pytest.raises(OrchError, match="expected key=value"):
        render_run(catalog, "qwen3-1p7b", "lora", catalog.task(), sets=["learning_rate"])


def test_missing_variable_names_template_and_line(project, catalog):
    path = project.templates / "models/qwen3-1p7b.yaml.j2"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(5, "cutoff_len: {{ max_len }}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(OrchError) as err:
        render_run(catalog, "qwen3-1p7b", "lora", catalog.task())
    assert "templates/models/qwen3-1p7b.yaml.j2:6" in str(err.value)
    assert "'max_len' is undefined" in str(err.value)


def test_check_shows_drift_and_fails(project, orch):
    path = project.templates / "families/qwen3.yaml.j2"
    path.write_text(path.read_text(encoding="utf-8").replace("qwen3_nothink", "qwen3"), encoding="utf-8")
    result = orch("render", "--all", "--check")
    assert result.exit_code == 1
    assert "-template: qwen3_nothink" in result.output and "+template: qwen3" in result.output
    assert (project.configs / "train_qwen3-1p7b_lora.yaml").read_text(encoding="utf-8").count("qwen3_nothink") == 1


def test_new_model_is_one_template_file(project, orch):
    """tiny-qwen3 exists only as templates/models/tiny-qwen3.yaml.j2 (see conftest)."""
    listed = orch("list")
    assert listed.exit_code == 0
    assert any(line.split()[:3] == ["tiny-qwen3", "qwen3", "qwen3_nothink"] for line in listed.output.splitlines())
    result = orch("render", "tiny-qwen3", "--method", "lora")
    assert result.exit_code == 0, result.output
    rendered = yaml.safe_load((project.configs / "train_tiny-qwen3_lora.yaml").read_text(encoding="utf-8"))
    assert rendered["model_name_or_path"] == "orch-test/tiny-qwen3"
    assert rendered["cutoff_len"] == 1024
    assert rendered["output_dir"] == "saves/tiny-qwen3/lora/sft"
    validated = orch("validate", "tiny-qwen3", "--method", "lora")
    assert validated.exit_code == 0, validated.output


def test_model_without_extends_is_a_clear_error(project, catalog):
    (project.templates / "models/broken.yaml.j2").write_text("model_name_or_path: x/y\n", encoding="utf-8")
    with pytest.raises(OrchError, match="must extend its family"):
        render_run(catalog, "broken", "lora", catalog.task())


def test_unknown_model_lists_known_ones(orch, project):
    result = orch("render", "qwen2-7b")
    assert result.exit_code == 2
    assert "unknown model 'qwen2-7b'" in result.output and "qwen3-1p7b" in result.output
