"""A broad suite of misconfigurations: each passes YAML loading and would fail (or waste) a GPU job.

Every case is a change to the valid rendered tiny-qwen3 config (or raw YAML text);
`orch validate --config` must exit 1 with an error that names the key, with its
file:line, and a fix. The cases are spread over the mechanisms (declared types and
choices, ranges, the trainer's own checks on a simulated GPU node, the checkpoint
schedule, referenced files, integrations, the model's architecture and tokenizer,
YAML structure) rather than tuned to any one list of keys.
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import yaml
from test_validate import tiny_config, write

# (id, stage, changes, key the error must name)
CASES = [
    # declared types (LLaMA-Factory's dataclasses)
    ("int-holds-word", "sft", {"lora_rank": "eight"}, "lora_rank"),
    ("int-holds-float", "sft", {"cutoff_len": 1024.5}, "cutoff_len"),
    ("quoted-int", "sft", {"max_steps": "8"}, "max_steps"),
    ("float-holds-word", "sft", {"learning_rate": "1e-4x"}, "learning_rate"),
    ("bool-holds-text", "predict", {"do_sample": "yes please"}, "do_sample"),
    ("empty-value", "sft", {"per_device_train_batch_size": "__null__"}, "per_device_train_batch_size"),
    ("unquoted-no", "sft", {"eval_strategy": False}, "eval_strategy"),
    ("list-for-text", "sft", {"template": ["qwen3_nothink"]}, "template"),
    # choices: Literal, enums, metadata choices
    ("stage-unknown", "sft", {"stage": "sftt"}, "stage"),
    ("finetuning-qlora", "sft", {"finetuning_type": "qlora"}, "finetuning_type"),
    ("scheduler-enum", "sft", {"lr_scheduler_type": "cosine_warm"}, "lr_scheduler_type"),
    ("optimizer-enum", "sft", {"optim": "adamw"}, "optim"),
    ("quant-method", "sft", {"quantization_bit": 4, "quantization_method": "gptq"}, "quantization_method"),
    ("attention-enum", "sft", {"flash_attn": "flash"}, "flash_attn"),
    ("metadata-choices", "sft", {"ddp_backend": "ncl"}, "ddp_backend"),
    ("export-device", "export", {"export_device": "gpu"}, "export_device"),
    # ranges
    ("batch-zero", "sft", {"per_device_train_batch_size": 0}, "per_device_train_batch_size"),
    ("accumulation-negative", "sft", {"gradient_accumulation_steps": -2}, "gradient_accumulation_steps"),
    ("dropout-above-one", "sft", {"lora_dropout": 1.5}, "lora_dropout"),
    ("warmup-ratio", "sft", {"warmup_ratio": 1.5}, "warmup_ratio"),
    ("epochs-zero", "sft", {"num_train_epochs": 0, "max_steps": "__drop__"}, "num_train_epochs"),
    ("cutoff-zero", "sft", {"cutoff_len": 0}, "cutoff_len"),
    ("max-samples-zero", "sft", {"max_samples": 0}, "max_samples"),
    ("workers-zero", "sft", {"preprocessing_num_workers": 0}, "preprocessing_num_workers"),
    ("logging-zero", "sft", {"logging_steps": 0}, "logging_steps"),
    ("val-size-negative", "sft", {"val_size": -0.1}, "val_size"),
    ("lora-alpha-zero", "sft", {"lora_alpha": 0}, "lora_alpha"),
    ("top-p", "predict", {"top_p": 1.5}, "top_p"),
    ("temperature-zero", "predict", {"temperature": 0}, "temperature"),
    ("export-size-zero", "export", {"export_size": 0}, "export_size"),
    ("nan-learning-rate", "sft", {"learning_rate": float("nan")}, "learning_rate"),
    # the trainer's own consistency checks, as on a GPU node
    ("fp16-and-bf16", "sft", {"fp16": True, "bf16": True}, "fp16"),
    (
        "plateau-without-eval",
        "sft",
        {"lr_scheduler_type": "reduce_lr_on_plateau", "eval_strategy": "no"},
        "lr_scheduler_type",
    ),
    ("best-model-strategies", "sft", {"load_best_model_at_end": True}, "load_best_model_at_end"),
    ("quant-bits", "sft", {"quantization_bit": 3}, "quantization_bit"),
    ("quant-with-full", "sft", {"quantization_bit": 4, "finetuning_type": "full"}, "finetuning_type"),
    # checkpoint schedule against the run's length
    ("save-after-end", "sft", {"save_steps": 1000}, "save_steps"),
    ("save-never", "sft", {"save_strategy": "no"}, "save_strategy"),
    ("save-only-model", "sft", {"save_only_model": True}, "save_only_model"),
    (
        "epoch-checkpoint-single-epoch",
        "sft",
        {"save_strategy": "epoch", "max_steps": "__drop__", "num_train_epochs": 1},
        "save_strategy",
    ),
    # what the config refers to
    ("deepspeed-missing", "sft", {"deepspeed": "configs/ds_z3.json"}, "deepspeed"),
    ("resume-missing", "sft", {"resume_from_checkpoint": "saves/other/checkpoint-5"}, "resume_from_checkpoint"),
    ("dataset-dir-missing", "sft", {"dataset_dir": "no_such_dir"}, "dataset_dir"),
    ("report-to-typo", "sft", {"report_to": "tensorbord"}, "report_to"),
    ("report-to-uninstalled", "sft", {"report_to": "comet_ml"}, "report_to"),
    ("lora-target-typo", "sft", {"lora_target": "q_projj"}, "lora_target"),
    ("lora-target-container", "sft", {"lora_target": "model"}, "lora_target"),
    ("additional-target", "sft", {"additional_target": "lm_headx"}, "additional_target"),
    ("template-other-family", "sft", {"template": "llama3"}, "template"),
    ("template-unknown", "sft", {"template": "qwen2"}, "template"),
    ("generation-cut", "predict", {"max_new_tokens": 4}, "max_new_tokens"),
    ("unknown-key", "sft", {"lora_rnak": 8}, "lora_rnak"),
    # found by a break pass (inputs its author did not write)
    ("infinite-epochs", "sft", {"num_train_epochs": float("inf"), "max_steps": "__drop__"}, "num_train_epochs"),
    ("infinite-val-size", "sft", {"val_size": float("inf"), "eval_dataset": "__drop__"}, "val_size"),
    ("val-size-takes-all", "sft", {"val_size": 0.5, "max_samples": 1, "eval_dataset": "__drop__"}, "val_size"),
    ("val-size-one", "sft", {"val_size": 1.0, "eval_dataset": "__drop__"}, "val_size"),
    ("empty-lora-target", "sft", {"lora_target": ""}, "lora_target"),
    ("stray-comma-dataset", "sft", {"dataset": "student_mental_train,"}, "dataset"),
    ("dpo-on-sft-data", "sft", {"stage": "dpo"}, "dataset"),
    ("adapter-not-an-adapter", "predict", {"adapter_name_or_path": "llamafactory_configs"}, "adapter_name_or_path"),
    ("adapter-outside-project", "predict", {"adapter_name_or_path": "/nonexistent/adapter"}, "adapter_name_or_path"),
    ("does-nothing", "sft", {"do_train": False}, "do_train"),
    ("report-to-none-in-list", "sft", {"report_to": ["none", "all"]}, "report_to"),
    ("deepspeed-folder", "sft", {"deepspeed": "llamafactory_configs"}, "deepspeed"),
    ("dataset-dir-is-file", "sft", {"dataset_dir": "llamafactory_configs/dataset_info.json"}, "dataset_dir"),
    ("case-typo", "sft", {"finetuning_type": "LoRA"}, "finetuning_type"),
]


def _config(catalog, stage: str, changes: dict) -> dict:
    values = tiny_config(catalog, stage)
    for key, value in changes.items():
        if value == "__drop__":
            values.pop(key, None)
        else:
            values[key] = None if value == "__null__" else value
    return values


@pytest.mark.parametrize(("stage", "changes", "key"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_misconfiguration_is_caught_naming_its_key(project, catalog, orch, stage, changes, key):
    path = write(project, _config(catalog, stage, changes))
    result = orch("validate", "--config", str(path), "--json")
    assert result.exit_code == 1, result.output
    errors = [p for p in json.loads(result.output)["configs"]["hand.yaml"] if p["severity"] == "error"]
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text.startswith(key))
    named = [p for p in errors if p["where"].startswith(f"hand.yaml:{line}: {key}")]
    assert named, f"no error names hand.yaml:{line}: {key}: {errors}"
    assert all(p["fix"] for p in named)


def test_export_without_export_dir_names_it(project, catalog, orch):
    path = write(project, _config(catalog, "export", {"export_dir": "__drop__"}))
    result = orch("validate", "--config", str(path), "--json")
    assert result.exit_code == 1
    found = json.loads(result.output)["configs"]["hand.yaml"]
    assert any(p["severity"] == "error" and p["where"] == "hand.yaml: export_dir" for p in found), found


def test_a_key_the_config_lacks_is_named(project, catalog, orch):
    """LLaMA-Factory's complaint about a missing key (predict without eval data) names that key."""
    path = write(project, _config(catalog, "predict", {"eval_dataset": "__drop__"}))
    errors = [p for p in _problems(orch, path) if p["severity"] == "error"]
    assert any(p["where"] == "hand.yaml: eval_dataset" for p in errors), errors


def test_a_package_a_key_needs_says_pip_install(project, catalog, orch):
    assert importlib.util.find_spec("deepspeed") is None  # the environment the project installs has none
    path = write(project, _config(catalog, "sft", {"deepspeed": {"zero_optimization": {"stage": 2}}}))
    errors = [p for p in _problems(orch, path) if p["severity"] == "error"]
    assert any(p["fix"].startswith("pip install deepspeed") for p in errors), errors


def test_a_missing_dataset_dir_is_said_once(project, catalog, orch):
    path = write(project, _config(catalog, "sft", {"dataset_dir": "no_such_dir"}))
    errors = [p for p in _problems(orch, path) if p["severity"] == "error"]
    assert [p["rule"] for p in errors] == ["paths"], errors


@pytest.mark.parametrize(
    "changes",
    [
        {"resume_from_checkpoint": True},  # Trainer.train(True): resume from the latest checkpoint
        {"max_grad_norm": -1.0},  # <= 0 turns clipping off
        {"max_steps": "__drop__", "num_train_epochs": 1, "save_steps": 1},  # the trainer rounds steps up
        {"lora_target": ["q_proj", "v_proj"]},  # a YAML list where the help says comma-separated
        {"report_to": ["none"]},
        {"save_steps": 0.5},
    ],
    ids=["resume-true", "clip-off", "rounding", "target-list", "report-list", "save-fraction"],
)
def test_legal_values_are_not_errors(project, catalog, orch, changes):
    path = write(project, _config(catalog, "sft", changes))
    errors = [p for p in _problems(orch, path) if p["severity"] == "error"]
    assert errors == []


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"logging_steps": 100}, "logging_steps"),
        ({"warmup_steps": 5, "warmup_ratio": 0.1}, "warmup_steps"),
        ({"bf16": False, "fp16": True, "pure_bf16": True}, "fp16"),
        ({"lora_rank": 4096}, "lora_rank"),
    ],
    ids=["logging-never", "warmup-twice", "precisions-fight", "rank-above-hidden"],
)
def test_likely_mistakes_warn(project, catalog, orch, changes, key):
    path = write(project, _config(catalog, "sft", changes))
    found = _problems(orch, path)
    assert any(p["severity"] == "warning" and f": {key}" in p["where"] for p in found), found


def _problems(orch, path) -> list[dict]:
    return json.loads(orch("validate", "--config", str(path), "--json").output)["configs"][path.name]


def test_the_suite_is_broad():
    assert len(CASES) >= 30
    assert len({key for *_, key in CASES}) >= 30


def test_uninstalled_integration_is_really_absent_here():
    """report-to-uninstalled relies on comet_ml not being in the environment the project installs."""
    assert importlib.util.find_spec("comet_ml") is None


def test_incomplete_checkpoint_to_resume(project, catalog, orch):
    folder = project.root / "saves/other/checkpoint-5"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text("{cut", encoding="utf-8")
    path = write(project, _config(catalog, "sft", {"resume_from_checkpoint": "saves/other/checkpoint-5"}))
    result = orch("validate", "--config", str(path))
    assert result.exit_code == 1 and "not a complete checkpoint" in result.output


def test_choices_are_listed_in_the_fix(project, catalog, orch):
    path = write(project, _config(catalog, "sft", {"finetuning_type": "qlora"}))
    result = orch("validate", "--config", str(path), "--json")
    found = [p for p in json.loads(result.output)["configs"]["hand.yaml"] if p["rule"] == "type"]
    assert "lora, oft, freeze, full" in found[0]["fix"] and "quantization_bit: 4" in found[0]["fix"]


def test_schedule_reports_its_numbers(project, catalog, orch):
    path = write(project, _config(catalog, "sft", {"save_steps": 50, "max_steps": "__drop__", "num_train_epochs": 2}))
    result = orch("validate", "--config", str(path), "--json")
    found = [p for p in json.loads(result.output)["configs"]["hand.yaml"] if p["rule"] == "checkpoints"]
    rows, batch = 40, tiny_config(catalog)["per_device_train_batch_size"]
    accumulation = tiny_config(catalog)["gradient_accumulation_steps"]
    per_epoch = max(1, math.ceil(math.ceil(rows / batch) / accumulation))  # the trainer rounds up
    assert f"{rows} training rows" in found[0]["message"]
    assert f"the run's {per_epoch * 2} total steps" in found[0]["message"]


def test_a_fraction_save_steps_checkpoints_within_any_run(project, catalog, orch):
    path = write(project, _config(catalog, "sft", {"save_steps": 0.25}))
    result = orch("validate", "--config", str(path), "--json")
    assert not [p for p in json.loads(result.output)["configs"]["hand.yaml"] if p["rule"] == "checkpoints"]


def test_new_keys_are_typed_without_code(project, catalog):
    """Every int/float/bool/Literal key LLaMA-Factory declares is type-checked: none is listed by hand."""
    from orchestrator import lf_adapter as lf
    from orchestrator.validation.schema import type_problem

    checked = 0
    for spec in lf.fields("sft").values():
        if spec.annotation in (int, float, bool):
            assert type_problem(spec, "a word") is not None, spec.name
            checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("stage: sft\nlora_rank: 8\nlora_rank: 16\n", 3, "duplicate key `lora_rank` (first on line 2)"),
        ("stage: sft\nmodel:\n\tname: x\n", 3, "tab"),
        ("- stage: sft\n- lora_rank: 8\n", 1, "a list, not a mapping"),
        ("stage: sft\n---\nlora_rank: 8\n", 3, "second YAML document"),
        ("stage: sft\nlora_rank: [8\n", 3, "flow sequence"),
        ("", None, "empty"),
        ("stage: sft\nb:\n  c: 1\n  c: 2\n", 4, "duplicate key `b.c` (first on line 3)"),
    ],
    ids=["duplicate", "tab", "list", "two-documents", "unclosed", "empty", "nested-duplicate"],
)
def test_yaml_structure_names_the_line(project, orch, text, line, words):
    path = project.root / "hand.yaml"
    path.write_text(text, encoding="utf-8")
    result = orch("validate", "--config", str(path), "--json")
    assert result.exit_code == 1
    found = json.loads(result.output)["configs"]["hand.yaml"]
    assert found[0]["where"] == (f"hand.yaml:{line}" if line else "hand.yaml"), found
    assert words in found[0]["message"] and found[0]["fix"]


def test_yaml_merge_keys_load_as_omegaconf_loads_them(project, catalog):
    from orchestrator.validation.yaml_source import load_config

    loaded = load_config("base: &b\n  lora_rank: 8\nlora: \n  <<: *b\n  lora_alpha: 16\n")
    assert loaded.values["lora"] == {"lora_rank": 8, "lora_alpha": 16}


def test_warning_for_legal_but_likely_mistaken(project, catalog):
    from orchestrator.validation import Severity, validate_file

    found = validate_file(project, catalog, write(project, _config(catalog, "sft", {"learning_rate": 0.5})))
    assert any(p.severity is Severity.WARNING and "learning_rate" in p.where for p in found)
    assert not any(p.severity is Severity.ERROR for p in found)


def test_yaml_text_with_line_numbers_from_a_template(project, catalog):
    """Rendered configs name the template that set a bad value, and its line in the rendered file."""
    from orchestrator.validation import validate_run

    report = validate_run(catalog, "tiny-qwen3", "lora", catalog.task(), sets=("bf16=false", "lora_dropout=2"))
    found = [p for p in report.errors if p.rule == "range"]
    text = (catalog.project.configs / "train_tiny-qwen3_lora.yaml").name
    assert found and text in found[0].where and "lora_dropout (set in --set)" in found[0].where
    assert yaml.safe_load("a: 1")  # keeps the yaml import honest for write()
