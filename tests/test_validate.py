"""Pre-flight validation: one test per rule, each feeding the broken config and reading the message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TINY_ID, write_checkpoint

from orchestrator.render import render_run
from orchestrator.validation import Severity, validate_file


def tiny_config(catalog, stage: str = "sft", **changes) -> dict:
    """The rendered tiny-qwen3 config of one stage (valid), with changes; None removes a key."""
    values = dict(render_run(catalog, "tiny-qwen3", "lora", catalog.task())[stage].values)
    if stage == "sft":
        values["bf16"] = False
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values


def write(project, values: dict, name: str = "hand.yaml") -> Path:
    path = project.root / name
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    return path


def problems(project, catalog, values: dict, severity: Severity = Severity.ERROR, rule: str | None = None):
    found = validate_file(project, catalog, write(project, values))
    return [p for p in found if p.severity is severity and (rule is None or p.rule == rule)]


def test_valid_config_has_no_errors(project, catalog):
    for stage in ("sft", "predict", "export"):
        assert problems(project, catalog, tiny_config(catalog, stage)) == [], stage


def test_unknown_key_suggests_the_right_one(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, lora_rnak=8))
    assert [p.rule for p in found] == ["llamafactory-args"]
    assert "lora_rnak" in found[0].where and "did you mean lora_rank" in found[0].fix


def test_training_key_in_export_config(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, "export", learning_rate=1e-4))
    assert "learning_rate" in found[0].where and "export config" in found[0].fix


def test_bad_finetuning_type(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, finetuning_type="lorax"))
    assert [p.rule for p in found] == ["type"], "said once, by the declared-choices rule, not again by the parser"
    assert "'lorax' is not a valid finetuning_type" in found[0].message
    assert found[0].fix == "did you mean lora? one of: lora, oft, freeze, full"


def test_eval_without_eval_data(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, eval_dataset=None))
    assert "eval_dataset" in found[0].message or "val_size" in found[0].message


def test_unknown_template_suggests_closest(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, template="qwen2"))
    assert [p.rule for p in found] == ["template"]
    assert "'qwen2' is not a LLaMA-Factory template" in found[0].message
    assert found[0].fix.startswith("did you mean qwen,")


def test_reasoning_template_warns_on_json_task(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, template="qwen3"), Severity.WARNING, "template")
    assert "reasoning template" in found[0].message and "qwen3_nothink" in found[0].fix
    assert not problems(project, catalog, tiny_config(catalog), Severity.WARNING, "template")


def test_undeclared_dataset(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, dataset="student_mental_trian"))
    assert "not declared" in found[0].message and "student_mental_train" in found[0].fix


def test_missing_dataset_file(project, catalog):
    (project.root / "data/student_mental/train.jsonl").unlink()
    found = problems(project, catalog, tiny_config(catalog))
    assert any("data/student_mental/train.jsonl does not exist" in p.message for p in found)


def test_column_mapping_mismatch_names_file_and_line(project, catalog):
    path = project.root / "data/student_mental/train.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[2]["answer"] = rows[2].pop("output")
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    found = problems(project, catalog, tiny_config(catalog), rule="dataset-rows")
    assert found[0].where == "data/student_mental/train.jsonl:3"
    assert "missing column(s) ['output']" in found[0].message


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            '{"depression_level": 0, " Anxiety_level": 0, "risk_flag": "none", "student_distress_score": 1}',
            "Additional properties",
        ),
        ("风险_flag:自杀", "not valid JSON"),
        (
            '{"depression_level": 5, "anxiety_level": 0, "risk_flag": "none", "student_distress_score": 1}',
            "depression_level: 5 is greater than the maximum of 3",
        ),
        (
            '{"depression_level": 0, "anxiety_level": 0, "risk_flag": "suicide", "student_distress_score": 1}',
            "risk_flag: 'suicide' is not one of",
        ),
    ],
)
def test_bad_answers_name_file_and_line(project, catalog, output, message):
    path = project.root / "data/student_mental/train.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[4]["output"] = output
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    found = problems(project, catalog, tiny_config(catalog), rule="dataset-rows")
    assert found and all(p.where == "data/student_mental/train.jsonl:5" for p in found)
    assert any(message in p.message for p in found), [p.message for p in found]


@pytest.mark.parametrize("value", [0, -1])
def test_max_samples_must_be_positive(project, catalog, value):
    found = problems(project, catalog, tiny_config(catalog, max_samples=value), rule="range")
    assert f"must be > 0, got {value}" in found[0].message and "remove the key" in found[0].fix


def test_numeric_keys_hold_numbers(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, lora_rank="eight"), rule="type")
    assert "lora_rank" in found[0].where and "expects an integer, got 'eight' (str)" in found[0].message


def test_non_numeric_value_in_a_template_names_the_template(project, catalog):
    path = project.templates / "models/tiny-qwen3.yaml.j2"
    path.write_text(
        path.read_text(encoding="utf-8").replace("cutoff_len: 1024", "cutoff_len: 1024\nsft:\n  learning_rate: fast"),
        encoding="utf-8",
    )
    from orchestrator.validation import validate_run

    report = validate_run(catalog, "tiny-qwen3", "lora", catalog.task(), sets=("bf16=false",))
    found = [p for p in report.errors if p.rule == "type"]
    assert "learning_rate (set in templates/models/tiny-qwen3.yaml.j2)" in found[0].where
    assert "expects a number, got 'fast'" in found[0].message


def test_quantization_in_export_is_an_error(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, "export", quantization_bit=4), rule="quantization")
    assert "cannot be merged" in found[0].message


def test_quantization_without_bitsandbytes_simulated(project, catalog, monkeypatch):
    """bitsandbytes is installed here, so its absence is simulated: the version lookup
    LLaMA-Factory's own quantization check makes is patched (a mock, named so)."""
    import importlib.metadata

    real = importlib.metadata.version

    def version(name: str) -> str:
        if name == "bitsandbytes":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    found = problems(project, catalog, tiny_config(catalog, quantization_bit=4), rule="quantization")
    assert "bitsandbytes" in found[0].message and found[0].fix.startswith("pip install bitsandbytes")


def test_quantization_says_it_needs_a_gpu(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, quantization_bit=4), Severity.INFO, "hardware")
    assert "needs a CUDA GPU" in found[0].message


def test_cutoff_that_truncates_answers_fails_with_stats(project, catalog):
    found = problems(project, catalog, tiny_config(catalog, cutoff_len=32), rule="cutoff")
    assert "cuts the answer of 40 of 40 rows" in found[0].message
    assert "p50" in found[0].message and "p95" in found[0].message and "max" in found[0].message
    suggested = int(found[0].fix.split("at least ")[1].split(",")[0])
    assert suggested % 64 == 0 and suggested > 32
    assert not problems(project, catalog, tiny_config(catalog, cutoff_len=suggested), rule="cutoff")
    assert not problems(project, catalog, tiny_config(catalog, cutoff_len=suggested), Severity.WARNING, "cutoff")


def test_cutoff_that_truncates_prompts_warns(project, catalog):
    found = validate_file(project, catalog, write(project, tiny_config(catalog, cutoff_len=200)))
    cut = [p for p in found if p.rule == "cutoff"]
    assert [p.severity for p in cut] == [Severity.WARNING]
    assert "cuts the prompt" in cut[0].message


def test_missing_local_model_path(project, catalog):
    found = problems(
        project, catalog, tiny_config(catalog, model_name_or_path="/nonexistent/models/qwen"), rule="model"
    )
    assert "local path /nonexistent/models/qwen does not exist" in found[0].message


def test_hub_id_not_cached_is_a_warning_with_download_hint(project, catalog):
    found = problems(
        project, catalog, tiny_config(catalog, model_name_or_path="Qwen/Qwen3-1.7B"), Severity.WARNING, "model"
    )
    assert "huggingface-cli download Qwen/Qwen3-1.7B" in found[0].fix


def test_model_resolves_through_the_model_cache(project, catalog, model_cache):
    found = problems(project, catalog, tiny_config(catalog, model_name_or_path=TINY_ID), Severity.WARNING, "model")
    assert found == []


@pytest.mark.parametrize(
    ("checkpoint", "layout", "severity", "text"),
    [
        (5, {}, Severity.INFO, "resumable from checkpoint-5"),
        (5, {"train_results.json": "{}"}, Severity.INFO, "is a finished run"),
        (None, {"adapter_model.safetensors": ""}, Severity.ERROR, "holds weights but no checkpoint"),
    ],
)
def test_output_dir_state(project, catalog, checkpoint, layout, severity, text):
    out = project.root / "saves/tiny-qwen3/lora/sft"
    if checkpoint:
        write_checkpoint(out / f"checkpoint-{checkpoint}", checkpoint)
    for rel, content in layout.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(content, encoding="utf-8")
    found = problems(project, catalog, tiny_config(catalog), severity, "output-dir")
    assert text in found[0].message


def test_incomplete_checkpoint_warns(project, catalog):
    out = project.root / "saves/tiny-qwen3/lora/sft"
    write_checkpoint(out / "checkpoint-10", 10)
    (out / "checkpoint-20").mkdir()  # killed while saving: no trainer_state.json
    found = problems(project, catalog, tiny_config(catalog), Severity.WARNING, "output-dir")
    assert "cut off while being written: checkpoint-20" in found[0].message
    info = problems(project, catalog, tiny_config(catalog), Severity.INFO, "output-dir")
    assert "resumable from checkpoint-10" in info[0].message


def test_overwrite_output_dir_warns_about_stale_checkpoints(project, catalog):
    write_checkpoint(project.root / "saves/tiny-qwen3/lora/sft/checkpoint-10", 10)
    found = problems(project, catalog, tiny_config(catalog, overwrite_output_dir=True), Severity.WARNING, "output-dir")
    assert "does not remove the 1 old checkpoint" in found[0].message


def test_every_problem_at_once_with_json(project, catalog, orch):
    path = write(project, tiny_config(catalog, template="qwen2", max_samples=0, lora_rank="x", dataset="nope"))
    result = orch("validate", "--config", str(path), "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    rules = {p["rule"] for p in report["configs"]["hand.yaml"] if p["severity"] == "error"}
    assert {"template", "range", "type", "datasets"} <= rules
    assert report["ok"] is False and report["counts"]["error"] >= 4


def test_broken_yaml_is_reported(project, catalog, orch):
    path = project.root / "broken.yaml"
    path.write_text("model_name_or_path: [unclosed\n", encoding="utf-8")
    result = orch("validate", "--config", str(path))
    assert result.exit_code == 1 and "broken.yaml:2" in result.output and "flow sequence" in result.output


def test_validate_all_on_the_repository_passes(monkeypatch, orch, smollm2_dir):
    """The acceptance check: every shipped model and method, with only SmolLM2 prepared."""
    monkeypatch.setenv("ORCH_ROOT", str(REPO))
    monkeypatch.delenv("ORCH_MODEL_CACHE", raising=False)
    result = orch("validate", "--all", "-q")
    assert result.exit_code == 0, result.output
    assert "72 config(s): 0 error(s)" in result.output  # 9 models x 2 methods x 4 stages (sft, dpo, predict, export)
    assert "train_smollm2-135m_lora.yaml" in result.output and "dpo_smollm2-135m_lora.yaml" in result.output
