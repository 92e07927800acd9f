"""The learning curve: each checkpoint's own adapter scored, the curve's table and its verdict.

The end-to-end test trains the tiny Qwen3 for real (4 steps, a checkpoint every 2) and scores its
checkpoints; the rest are pure functions on crafted inputs.
"""

from __future__ import annotations

import json
import shutil

import pytest

from orchestrator.evaluation import operating_point as op
from orchestrator.evaluation.learning_curve import CurvePoint, curve_row, mean_loss
from orchestrator.evaluation.metrics import score
from orchestrator.evaluation.prior import RISK_SEPARATION, beyond_prior

ROW = {"depression_level": 1, "anxiety_level": 1, "student_distress_score": 3}


def test_positive_ranks_are_worst_case_on_ties():
    scores = [0.9, 0.1, 0.5, 0.5, None, 0.2]
    positives = [True, False, True, False, True, False]
    assert op.positive_ranks(scores, positives) == [1, 3, None]  # 0.5 ties with a negative: ranked below it
    assert op.positive_ranks([0.3] * 4, [True, False, False, True]) == [4, 4]  # a constant separates nothing


def test_mean_loss_is_the_window_since_the_previous_checkpoint():
    losses = [(1, 4.0), (2, 2.0), (3, 1.0), (4, 3.0)]
    assert mean_loss(losses, 0, 2) == 3.0 and mean_loss(losses, 2, 4) == 2.0
    assert mean_loss(losses, 4, 6) is None
    resumed = losses + [(3, 0.5), (4, 0.5)]  # a resume repeats the steps after its checkpoint: the last one counts
    assert mean_loss(resumed, 2, 4) == 0.5


def _metrics(task, gold_risk, pred_risk, constant=False, split="test"):
    varied = [{**ROW, "depression_level": i % 4} for i in range(len(gold_risk))]
    gold = [{**b, "risk_flag": r} for b, r in zip(varied, gold_risk, strict=True)]
    pred = [{**(ROW if constant else b), "risk_flag": r} for b, r in zip(varied, pred_risk, strict=True)]
    metrics = score(task, gold, pred, [True] * len(gold))
    metrics["split"] = split
    return metrics


def test_curve_rows_say_when_the_model_leaves_the_prior(catalog):
    task = catalog.task()
    gold = ["suicidal", "self_harm"] + ["none"] * 18
    majority = _metrics(task, gold, ["none"] * 20, constant=True)
    prior = _metrics(task, gold, ["none"] * 20, constant=True)
    prior["risk"]["positive_ranks"] = [20, 20]
    row = curve_row(task, CurvePoint("checkpoint-10", 10, 1.23456, prior), majority)
    assert row["step"] == "10" and row["train loss"] == "1.235" and row["distinct answers"] == "1"
    assert row["verdict"].startswith("learned the label prior only: the same answer to 20/20")
    assert row["at-risk P(risk) ranks"] == "20, 20 of 20"
    assert row["all fields right"].startswith("0.") and "/20," in row["all fields right"]
    learned = _metrics(task, gold, gold)
    row = curve_row(task, CurvePoint("checkpoint-20", 20, None, learned), majority)
    assert row["train loss"] == "n/a" and row["verdict"].startswith("beyond the prior on: all_fields_correct")
    assert "depression_level.accuracy" in beyond_prior(task, learned, majority)
    assert RISK_SEPARATION in beyond_prior(task, learned, majority)  # 2/2 caught (0.34-1) vs 0/18 (0-0.18)
    assert RISK_SEPARATION not in beyond_prior(task, prior, majority)


def test_learning_curve_scores_each_checkpoint_own_adapter(project, catalog, orch):
    from test_submit import FAST, SFT, wait_state

    from orchestrator.submit import SubmitOptions, submit

    sets = FAST + ("max_steps=4", "save_steps=2", "logging_steps=1", "learning_rate=0.01")
    submit(catalog, ["tiny-qwen3"], SubmitOptions(executor="local", sets=sets), log=lambda _m: None)
    wait_state(project, SFT)
    run_dir = project.root / "saves/tiny-qwen3/lora/sft"

    final = orch("eval", "tiny-qwen3/lora")
    assert final.exit_code == 0, final.output
    curve = orch("eval", "tiny-qwen3/lora", "--checkpoint", "all")
    assert curve.exit_code == 0, curve.output
    assert "| 2 |" in curve.stdout and "| 4 |" in curve.stdout and "label prior" in curve.stdout

    def probabilities(folder):
        lines = (folder / "predictions.jsonl").read_text().splitlines()
        rows = [json.loads(line)["probabilities"] for line in lines]
        return [p for row in rows for field in sorted(row) for _, p in sorted(row[field].items())]

    at = {s: run_dir / f"eval/checkpoints/checkpoint-{s}/test/constrained" for s in (2, 4)}
    last = probabilities(run_dir / "eval/test/constrained")
    # The last checkpoint is the final adapter; the earlier one is another model, not the final one again.
    assert probabilities(at[4]) == pytest.approx(last, rel=1e-4, abs=1e-6)
    assert probabilities(at[2]) != pytest.approx(last, rel=1e-4, abs=1e-6)
    assert json.loads((at[2] / "metrics.json").read_text())["checkpoint"] == "checkpoint-2"

    saved = json.loads((run_dir / "eval/checkpoints/learning-curve-test.json").read_text())
    assert [p["step"] for p in saved["points"]] == [2, 4]
    assert all(p["train_loss"] is not None for p in saved["points"])
    assert "learning curve: 2 checkpoint(s)" in project.steps.read_text()
    compared = orch("collect")  # checkpoints are not rows of the comparison
    assert compared.exit_code == 0 and compared.stdout.count("tiny-qwen3 | lora | constrained") == 1

    one = orch("eval", "tiny-qwen3/lora", "--checkpoint", "2", "--limit", "2")
    assert one.exit_code == 0, one.output
    missing = orch("eval", "tiny-qwen3/lora", "--checkpoint", "3")
    assert missing.exit_code != 0 and "checkpoint-2, checkpoint-4" in missing.output
    assert "Traceback" not in missing.output
    broken = run_dir / "checkpoint-2"
    shutil.move(broken / "optimizer.pt", run_dir / "optimizer.pt.away")
    cut = orch("eval", "tiny-qwen3/lora", "--checkpoint", "checkpoint-2")
    assert cut.exit_code != 0 and "incomplete" in cut.output and "optimizer.pt" in cut.output
    with_base = orch("eval", "tiny-qwen3/lora", "--checkpoint", "4", "--base")
    assert with_base.exit_code != 0 and "--checkpoint" in with_base.output


def test_checkpoint_arguments_that_name_nothing_are_clear_errors(project, orch):
    for value in ("²", "", "checkpoint-abc", "../x", "all"):
        result = orch("eval", "tiny-qwen3/lora", "--checkpoint", value)
        assert result.exit_code == 2 and "Traceback" not in result.output, (value, result.output)
        assert "has no output folder" in result.output and "train it first" in result.output
