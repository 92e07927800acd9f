"""The task file: one source of truth for instruction, schema and data."""

from __future__ import annotations

import json

import pytest
import yaml

from orchestrator.errors import OrchError
from orchestrator.render import render_dataset_info, render_run
from orchestrator.task import load_task


def test_student_task_schema(catalog):
    task = catalog.task()
    assert task.field_names == ["depression_level", "anxiety_level", "risk_flag", "student_distress_score"]
    assert task.field_values("risk_flag") == ["none", "suicidal", "self_harm", "violence"]
    assert task.field_values("student_distress_score") == list(range(10))
    assert task.fields["risk_flag"] == "categorical" and task.fields["anxiety_level"] == "ordinal"
    good = {"depression_level": 1, "anxiety_level": 2, "risk_flag": "none", "student_distress_score": 6}
    assert task.answer_errors(good) == []
    assert task.canonical_answer(dict(reversed(good.items()))) == json.dumps(good, ensure_ascii=False)
    assert task.answer_errors({**good, "risk_flag": "自杀"})
    assert task.answer_errors({**good, "depression_level": 4})
    assert task.answer_errors({**good, " Anxiety_level": 0})


def test_second_task_needs_only_a_file(project, catalog):
    """A new labeling task: one YAML file; render picks up its datasets and schema."""
    second = {
        "name": "sleep",
        "instruction": "Rate the sleep quality.",
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["sleep"],
            "properties": {"sleep": {"type": "integer", "minimum": 0, "maximum": 4}},
        },
        "fields": {"sleep": "ordinal"},
        "datasets": {
            "train": {"name": "sleep_train", "file": "data/sleep/train.jsonl"},
            "test": {"name": "sleep_test", "file": "data/sleep/test.jsonl"},
        },
    }
    (project.templates / "tasks/sleep.yaml").write_text(yaml.safe_dump(second), encoding="utf-8")
    info = json.loads(render_dataset_info(catalog))
    assert info["sleep_train"]["file_name"] == "../data/sleep/train.jsonl"
    configs = render_run(catalog, "qwen3-1p7b", "lora", catalog.task("sleep"))
    assert configs["sft"].values["dataset"] == "sleep_train"
    assert configs["sft"].values["val_size"] == 0.05 and "eval_dataset" not in configs["sft"].values  # no val split
    assert configs["sft"].path.name == "train_qwen3-1p7b_lora_sleep.yaml"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.pop("schema"), "missing key `schema`"),
        (lambda t: t["fields"].pop("risk_flag"), "`fields` must name every schema property"),
        (lambda t: t["fields"].update(risk_flag="nominal"), "unknown kind 'nominal'"),
        (lambda t: t["schema"]["properties"]["anxiety_level"].pop("maximum"), "ordinal field needs"),
        (lambda t: t["datasets"].pop("test"), "missing split"),
        (lambda t: t["risk"].update(negative="safe"), "risk.negative"),
    ],
)
def test_bad_task_file_names_file_and_key(project, edit, message):
    path = project.templates / "tasks/student_mental.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(OrchError) as err:
        load_task(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
