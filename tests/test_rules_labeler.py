"""The rules labeler: lexicons and formula are task-file data, one generic labeler reads them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.data.dialogue import ROLE_LABELS, Dialogue, Turn
from orchestrator.data.label import label_with_rules
from orchestrator.errors import OrchError
from orchestrator.rules_labeler import has_rules, load_rules
from orchestrator.task import load_task

REPO = Path(__file__).resolve().parents[1]
STUDENT_TASK = REPO / "templates/tasks/student_mental.yaml"


def client_text(dialogue: str) -> str:
    """The client's lines of a rendered dialogue, prefix stripped (as the evaluator reads them)."""
    prefix = ROLE_LABELS["user"] + "："
    return "\n".join(line[len(prefix) :] for line in dialogue.splitlines() if line.startswith(prefix))


@pytest.fixture(scope="module")
def student_labeler():
    return load_rules(load_task(STUDENT_TASK))


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_task_file_rules_reproduce_the_shipped_labels(student_labeler, split):
    """The shipped data was labeled by the rules: the task-file spec must give every row's labels back."""
    rows = [json.loads(line) for line in (REPO / f"data/student_mental/{split}.jsonl").read_text().splitlines()]
    assert rows
    wrong = []
    for row in rows:
        got = student_labeler.label(client_text(row["input"]))
        if got != json.loads(row["output"]) or json.dumps(got, ensure_ascii=False) != row["output"]:
            wrong.append((row["id"], got, row["output"]))
    assert not wrong, f"{len(wrong)}/{len(rows)} rows differ, first: {wrong[:3]}"


def test_student_rules_formula_at_the_edges(student_labeler):
    """What the shipped data rarely shows: risk order, top levels and the clamp of the distress sum."""
    heavy = "抑郁绝望无助空虚自卑 焦虑紧张担心害怕恐惧 我想报复，也想自残"
    assert student_labeler.label(heavy) == {
        "depression_level": 3,
        "anxiety_level": 3,
        "risk_flag": "self_harm",  # self_harm is listed before violence
        "student_distress_score": 9,  # 3 + 3 + 3 + 1 = 10, clamped
    }
    assert student_labeler.label("我很难过，也很焦虑和紧张") == {
        "depression_level": 1,
        "anxiety_level": 1,
        "risk_flag": "none",
        "student_distress_score": 3,
    }
    assert student_labeler.label("想报复他") == {
        "depression_level": 0,
        "anxiety_level": 0,
        "risk_flag": "violence",
        "student_distress_score": 2,  # no bonus: both levels are 0
    }
    assert student_labeler.label("") == {
        "depression_level": 0,
        "anxiety_level": 0,
        "risk_flag": "none",
        "student_distress_score": 0,
    }


# A made-up second task: other field names, a minimum of 1, a sum with an add map.
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["mood", "stress", "sleep", "total"],
    "properties": {
        "mood": {"type": "string", "enum": ["calm", "upset", "angry"]},
        "stress": {"type": "integer", "minimum": 1, "maximum": 5},
        "sleep": {"type": "integer", "minimum": 0, "maximum": 2},
        "total": {"type": "integer", "minimum": 0, "maximum": 6},
    },
}
RULES = {
    "fields": {
        # Written in another order than the schema, the sum first.
        "total": {
            "sum": {
                "of": ["stress", "sleep"],
                "add": {"mood": {"upset": 1, "angry": 2}},
                "add_if_any_positive": 1,
            }
        },
        "mood": {"match": {"default": "calm", "classes": {"angry": ["气死", "恨"], "upset": ["难过", "烦"]}}},
        "stress": {"count": {"cues": ["累", "忙", "考试", "熬夜"], "levels": [1, 2, 4]}},
        "sleep": {"count": {"cues": ["失眠", "睡不着"], "levels": [1, 2]}},
    }
}


def write_task(folder: Path, rules: Any = None, **extra: Any) -> Path:
    """A task file for the made-up task; `rules` None leaves `baselines` out."""
    raw: dict[str, Any] = {
        "name": "mood_check",
        "instruction": "评估情绪，只输出JSON。",
        "schema": SCHEMA,
        "fields": {"mood": "categorical", "stress": "ordinal", "sleep": "ordinal", "total": "ordinal"},
        "datasets": {
            "train": {"name": "mood_train", "file": "data/mood/train.jsonl"},
            "test": {"name": "mood_test", "file": "data/mood/test.jsonl"},
        },
        **extra,
    }
    if rules is not None:
        raw["baselines"] = {"rules": rules}
    path = folder / "mood_check.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


CASES = [
    ("今天很平静", {"mood": "calm", "stress": 1, "sleep": 0, "total": 2}),
    ("考试好累，有点烦", {"mood": "upset", "stress": 3, "sleep": 0, "total": 5}),
    ("累累累", {"mood": "calm", "stress": 2, "sleep": 0, "total": 3}),  # a cue counts once
    ("失眠", {"mood": "calm", "stress": 1, "sleep": 1, "total": 3}),
    # angry is listed before upset, so it wins over 难过; 1+4+2+2+1 = 9 is clamped to 6.
    ("气死了，难过，考试熬夜又忙又累，失眠睡不着", {"mood": "angry", "stress": 4, "sleep": 2, "total": 6}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_a_new_task_is_a_file_not_code(tmp_path, text, expected):
    task = load_task(write_task(tmp_path, RULES))
    assert has_rules(task)
    labels = load_rules(task).label(text)
    assert labels == expected
    assert list(labels) == ["mood", "stress", "sleep", "total"]  # schema order
    assert task.answer_errors(labels) == []


def test_rules_from_a_file_beside_the_task(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules/mood.yaml").write_text(yaml.safe_dump(RULES, allow_unicode=True, sort_keys=False), "utf-8")
    labeler = load_rules(load_task(write_task(tmp_path, "rules/mood.yaml")))
    for text, expected in CASES:
        assert labeler.label(text) == expected


def test_label_with_rules_serves_any_task_with_rules(tmp_path):
    source = tmp_path / "unified.jsonl"
    dialogue = Dialogue(
        "d1", "test", (Turn("user", "考试好累"), Turn("assistant", "气死了吧？"), Turn("user", "有点烦"))
    )
    source.write_text(json.dumps(dialogue.to_json(), ensure_ascii=False) + "\n", encoding="utf-8")
    task = load_task(write_task(tmp_path, RULES))
    assert label_with_rules(task, source, tmp_path / "labeled.jsonl") == {"labeled": 1, "failed": 0}
    row = json.loads((tmp_path / "labeled.jsonl").read_text(encoding="utf-8"))
    # The counselor's 气死 is not read: the client's turns only.
    assert row["labels"] == {"mood": "upset", "stress": 3, "sleep": 0, "total": 5} and row["labeler"] == "rules"

    bare = load_task(write_task(tmp_path, None))
    with pytest.raises(OrchError, match="names no rules lexicons"):
        label_with_rules(bare, source, tmp_path / "labeled.jsonl")


def test_a_task_without_rules(tmp_path):
    task = load_task(write_task(tmp_path, None))
    assert not has_rules(task)
    with pytest.raises(OrchError) as info:
        load_rules(task)
    assert "mood_check names no rules lexicons" in info.value.message
    assert info.value.where == str(task.path) and "baselines: rules:" in info.value.fix


def _edit(path: str, value: Any = None, *, delete: bool = False) -> dict:
    """RULES with the value at a dotted `path` (under fields) replaced or deleted."""
    rules = copy.deepcopy(RULES)
    *parents, last = path.split(".")
    node = rules["fields"]
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return rules


BAD = [
    # (what is wrong, rules, key the error must name, words it must say)
    ("class not in enum", _edit("mood.match.classes.furious", ["怒"]), "fields.mood.match.classes.furious", "furious"),
    ("default not in enum", _edit("mood.match.default", "happy"), "fields.mood.match.default", "happy"),
    ("field without a rule", _edit("sleep", delete=True), "fields", "sleep"),
    ("rule for no field", _edit("energy", {"count": {"cues": ["累"], "levels": [1]}}), "fields.energy", "energy"),
    ("two rule kinds", _edit("sleep.match", {"default": 0, "classes": {1: ["失眠"]}}), "fields.sleep", "one rule"),
    ("unknown rule kind", _edit("sleep", {"regex": {}}), "fields.sleep", "one rule"),
    ("sum of unknown field", _edit("total.sum.of", ["stress", "energy"]), "fields.total.sum.of.1", "energy"),
    ("sum adds unknown field", _edit("total.sum.add.energy", {"1": 1}), "fields.total.sum.add.energy", "energy"),
    ("sum adds non-value", _edit("total.sum.add.mood.sad", 1), "fields.total.sum.add.mood.sad", "sad"),
    ("sum of a categorical", _edit("total.sum.of", ["mood"]), "fields.total.sum.of.0", "ordinal"),
    ("levels not increasing", _edit("stress.count.levels", [1, 3, 3]), "fields.stress.count.levels", "increasing"),
    ("levels past the maximum", _edit("sleep.count.levels", [1, 2, 3]), "fields.sleep.count.levels", "maximum"),
    ("levels not integers", _edit("sleep.count.levels", [1, "2"]), "fields.sleep.count.levels", "integers"),
    ("non-string phrase", _edit("mood.match.classes.upset", ["难过", 3]), "fields.mood.match.classes.upset.1", "3"),
    ("empty phrase list", _edit("stress.count.cues", []), "fields.stress.count.cues", "non-empty"),
    ("a cue twice", _edit("stress.count.cues", ["累", "忙", "累"]), "fields.stress.count.cues.2", "twice"),
    (
        "count on a categorical",
        _edit("mood", {"count": {"cues": ["烦"], "levels": [1]}}),
        "fields.mood.count",
        "ordinal",
    ),
    ("unknown key in a rule", _edit("stress.count.level", [1]), "fields.stress.count.level", "unknown key"),
    ("missing key in a rule", _edit("stress.count.levels", delete=True), "fields.stress.count", "levels"),
]


@pytest.mark.parametrize(("rules", "key", "words"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_specs_name_the_file_and_key(tmp_path, rules, key, words):
    path = write_task(tmp_path, rules)
    with pytest.raises(OrchError) as info:
        load_rules(load_task(path))
    assert info.value.where == str(path)
    assert info.value.message.startswith(f"baselines.rules.{key}: ")
    assert words in info.value.message


def test_a_sum_of_a_sum_is_refused(tmp_path):
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["grand"] = {"type": "integer", "minimum": 0, "maximum": 9}
    schema["required"].append("grand")
    rules = _edit("grand", {"sum": {"of": ["total"]}})
    path = write_task(tmp_path, rules)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["schema"], raw["fields"]["grand"] = schema, "ordinal"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(OrchError, match=r"baselines\.rules\.fields\.grand\.sum\.of\.0: 'total' is itself a sum"):
        load_rules(load_task(path))


def test_rules_layout_mistakes(tmp_path):
    with pytest.raises(OrchError, match=r"baselines\.rules\.total: unknown key; the per-field rules go under"):
        load_rules(load_task(write_task(tmp_path, RULES["fields"])))  # fields written without `fields:`
    with pytest.raises(OrchError, match=r"baselines: must be a mapping"):
        load_rules(load_task(write_task(tmp_path, None, baselines=["rules"])))


def test_rules_file_that_does_not_exist(tmp_path):
    path = write_task(tmp_path, "rules/missing.yaml")
    with pytest.raises(OrchError) as info:
        load_rules(load_task(path))
    assert info.value.where == str(path)
    assert "baselines.rules: rules file" in info.value.message and "missing.yaml not found" in info.value.message


def test_a_bad_rules_file_names_that_file(tmp_path):
    bad = tmp_path / "mood.rules.yaml"
    bad.write_text(yaml.safe_dump(_edit("mood.match.classes.furious", ["怒"]), allow_unicode=True), "utf-8")
    with pytest.raises(OrchError) as info:
        load_rules(load_task(write_task(tmp_path, "mood.rules.yaml")))
    assert info.value.where == str(bad)
    assert info.value.message.startswith("fields.mood.match.classes.furious: 'furious' is not a value of mood")
