"""DPO pairs from the SFT model's own mistakes (`orch dpo pairs`): relevant to their prompts by construction.

The unit tests build pairs from hand-written scorings; the end-to-end one trains the tiny model for real
(llamafactory-cli, local executor), scores it on the train split with orch's scorer and checks every pair.
"""

from __future__ import annotations

import json

import pytest
from test_submit import FAST, SFT

from orchestrator.errors import OrchError
from orchestrator.monitor import wait
from orchestrator.preference import (
    MODEL_ERROR,
    NEAR_MISS,
    RISK_NEGATIVE,
    check_pairs,
    pairs_from_scoring,
    stats_path,
)
from orchestrator.submit import SubmitOptions, submit

GOLD = {"depression_level": 2, "anxiety_level": 1, "risk_flag": "suicidal", "student_distress_score": 7}
CALM = {"depression_level": 0, "anxiety_level": 1, "risk_flag": "none", "student_distress_score": 2}


def _row(i, gold):
    return {"id": f"r{i}", "instruction": "assess", "input": f"dialogue {i}", "gold": gold}


def test_each_kind_of_rejected_answer_is_valid_different_and_for_the_same_prompt(catalog):
    task = catalog.task()
    rows = [_row(0, GOLD), _row(1, CALM), _row(2, CALM), _row(3, GOLD), _row(4, CALM)]
    certain = {name: {str(v): 0.0 for v in task.field_values(name)} for name in task.field_names}
    probs = {name: dict(dist) for name, dist in certain.items()}
    for name, value in CALM.items():
        probs[name][str(value)] = 0.9
    probs["student_distress_score"].update({"2": 0.55, "3": 0.45})  # the least certain field: runner-up 3
    predictions = [
        {"parsed": {**GOLD, "risk_flag": "none"}},  # the model misses the risk: its error == the risk negative
        {"parsed": {**CALM, "anxiety_level": 3}},  # a plain mistake
        {"parsed": dict(CALM), "probabilities": probs},  # right: skipped unless kept
        {"parsed": {**GOLD, "student_distress_score": 29}},  # invalid: never a rejected answer
        {"parsed": None},  # nothing parsed
    ]
    built = pairs_from_scoring(task, rows, predictions, keep_correct=1.0)
    by_id = {}
    for pair in built.pairs:
        by_id.setdefault(pair["id"], []).append(pair)
        assert json.loads(pair["chosen"]) == next(r["gold"] for r in rows if r["id"] == pair["id"])
        assert task.answer_errors(json.loads(pair["rejected"])) == [] and pair["rejected"] != pair["chosen"]
        assert (pair["instruction"], pair["input"]) == ("assess", f"dialogue {pair['id'][1:]}")
    assert [p["kind"] for p in by_id["r0"]] == [MODEL_ERROR]  # the same answer is not rejected twice
    assert [p["kind"] for p in by_id["r1"]] == [MODEL_ERROR]
    assert [p["kind"] for p in by_id["r2"]] == [NEAR_MISS]
    assert json.loads(by_id["r2"][0]["rejected"])["student_distress_score"] == 3
    assert [p["kind"] for p in by_id["r3"]] == [RISK_NEGATIVE]  # its own answer is invalid; the risk negative stays
    assert json.loads(by_id["r3"][0]["rejected"]) == {**GOLD, "risk_flag": "none"}
    assert "r4" not in by_id
    stats = built.stats
    assert stats["pairs"] == 4 and stats["rows_without_pair"] == 1
    assert stats["by_kind"] == {MODEL_ERROR: 2, NEAR_MISS: 1, RISK_NEGATIVE: 1}
    assert stats["by_field"]["risk_flag"] == 2 and stats["by_field"]["anxiety_level"] == 1


def test_shares_and_seed_decide_which_rows_get_extra_pairs(catalog):
    task = catalog.task()
    rows = [_row(i, GOLD) for i in range(40)]
    right = [{"parsed": dict(GOLD)} for _ in rows]
    none = pairs_from_scoring(task, rows, right, risk_share=0.0)
    assert none.pairs == [] and none.stats["rows_without_pair"] == 40  # right everywhere, no risk negatives asked
    half = pairs_from_scoring(task, rows, right, risk_share=0.5, seed=3)
    assert (
        8 <= len(half.pairs) <= 32 and pairs_from_scoring(task, rows, right, risk_share=0.5, seed=3).pairs == half.pairs
    )
    with pytest.raises(OrchError, match="between 0 and 1"):
        pairs_from_scoring(task, rows, right, risk_share=1.5)


def test_the_checks_name_every_broken_pair(catalog):
    task = catalog.task()
    good = {"id": "a", "chosen": json.dumps(GOLD), "rejected": json.dumps(CALM)}
    same = {"id": "b", "chosen": json.dumps(GOLD), "rejected": json.dumps(GOLD)}
    invalid = {"id": "c", "chosen": json.dumps(GOLD), "rejected": '{"depression_level": 9}'}
    moved = {"id": "d", "chosen": json.dumps(GOLD), "rejected": json.dumps(CALM), "input": "another prompt"}
    training = {"a": [1, 2], "d": [1, 2]}
    problems = check_pairs(task, [good, same, invalid, moved], lambda p: [1, 2] if "input" not in p else [9], training)
    assert problems == [
        "pair 2 (b): rejected equals chosen",
        "pair 3 (c): rejected is not a valid answer",
        "pair 4 (d): its prompt tokens differ from the training row's",
    ]


def test_pairs_from_a_real_sft_run_of_the_tiny_model(project, catalog, orch):
    opts = SubmitOptions(
        method="lora", executor="local", sets=FAST + ("max_steps=2", "save_steps=1", "logging_steps=1")
    )
    plans = submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
    assert wait(project, plans[0].run, poll=0.5).state == "COMPLETED"
    result = orch("dpo", "pairs", "tiny-qwen3/lora", "--limit", "12", "--keep-correct", "1")
    assert result.exit_code == 0, result.output
    out = project.root / "saves/tiny-qwen3/lora/sft/preference/pairs-train.jsonl"
    assert f"pairs: {project.relative(out)}" in result.output
    pairs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    stats = json.loads(stats_path(out).read_text())
    task = catalog.task()
    train = [json.loads(line) for line in (project.root / "data/student_mental/train.jsonl").read_text().splitlines()]
    by_prompt = {(r["instruction"], r["input"]): json.loads(r["output"]) for r in train[:12]}
    assert pairs and stats["pairs"] == len(pairs) and stats["run"] == SFT.name and stats["split"] == "train"
    for pair in pairs:
        gold = by_prompt[(pair["instruction"], pair["input"])]  # the training prompt, unchanged
        assert json.loads(pair["chosen"]) == gold
        rejected = json.loads(pair["rejected"])
        assert task.answer_errors(rejected) == [] and rejected != gold
    at_risk = sum(task.at_risk(gold) for gold in by_prompt.values())
    assert stats["by_kind"].get(RISK_NEGATIVE, 0) + stats["by_kind"].get(MODEL_ERROR, 0) >= min(at_risk, 1)
    assert (project.root / "saves/tiny-qwen3/lora/sft/eval/train/constrained/metrics.json").is_file()  # orch's scorer
    info = json.loads((out.parent / "dataset_info.json").read_text())  # declared for the dpo stage, as ranking data
    assert info == {
        "student_mental_train_pairs": {
            "file_name": "pairs-train.jsonl",
            "formatting": "alpaca",
            "ranking": True,
            "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
        }
    }
    # -o into another folder: its own dataset_info.json is not orch's to rewrite.
    registry = project.root / "llamafactory_configs/dataset_info.json"
    before = registry.read_bytes()
    result = orch(
        "dpo", "pairs", "tiny-qwen3/lora", "--limit", "4", "--keep-correct", "1", "-o", str(registry.parent / "p.jsonl")
    )
    assert result.exit_code == 0, result.output
    assert registry.read_bytes() == before and (registry.parent / "p.jsonl").is_file()


def test_a_model_that_gives_one_answer_to_everything_is_warned_about(catalog):
    task = catalog.task()
    rows = [_row(i, GOLD if i % 2 else CALM) for i in range(20)]
    constant = [{"parsed": dict(CALM)} for _ in rows]
    built = pairs_from_scoring(task, rows, constant)
    assert built.stats["most_common_answer_share"] == 1.0 and "learned the label prior" in built.stats["warning"]
    varied = [{"parsed": dict(r["gold"])} for r in rows]
    assert "warning" not in pairs_from_scoring(task, rows, varied, keep_correct=1.0).stats
