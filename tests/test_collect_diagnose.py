"""orch collect over several finished runs, and orch diagnose on crafted training logs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import write_checkpoint

from orchestrator.diagnose import diagnose
from orchestrator.evaluation.metrics import score
from orchestrator.fileio import write_json_atomic
from orchestrator.layout import Run

M = Run("m", "lora", "sft")
BASE = {"depression_level": 1, "anxiety_level": 1, "student_distress_score": 3}


def fake_run(root: Path, model: str, log: list[dict], history: list[dict], checkpoints: int = 1) -> Path:
    run = root / "saves" / model / "lora" / "sft"
    run.mkdir(parents=True)
    (run / "trainer_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    write_json_atomic(
        run / "trainer_state.json", {"global_step": log[-1]["current_steps"], "epoch": 3.0, "log_history": history}
    )
    write_json_atomic(run / "train_results.json", {"train_loss": log[-1]["loss"], "train_runtime": 12.5})
    write_json_atomic(run / "eval_results.json", {"eval_loss": 0.5})
    for i in range(1, checkpoints + 1):
        write_checkpoint(run / f"checkpoint-{i * 10}", i * 10)
    return run


def healthy_log(n: int = 10) -> tuple[list[dict], list[dict]]:
    log = [{"current_steps": 10 * i, "total_steps": 10 * n, "loss": 2.0 / i} for i in range(1, n + 1)]
    history = [{"step": e["current_steps"], "loss": e["loss"]} for e in log]
    history += [{"step": 50, "eval_loss": 0.45}, {"step": 100, "eval_loss": 0.3}]
    return log, history


def write_eval(task, run: Path, predicted_risk: list[str], gold_risk: list[str], constant: bool = False) -> None:
    """Metrics of predictions whose other fields vary by row and are right (or one fixed answer: `constant`)."""
    varied = [{**BASE, "depression_level": i % 4} for i in range(len(gold_risk))]
    gold = [{**base, "risk_flag": r} for base, r in zip(varied, gold_risk, strict=True)]
    pred = [{**(BASE if constant else base), "risk_flag": r} for base, r in zip(varied, predicted_risk, strict=True)]
    metrics = score(task, gold, pred, [True] * len(gold))
    metrics.update(
        {
            "split": "test",
            "decoding": "constrained",
            "model": "adapter",
            "parse": {"strict_rate": 1.0, "repaired_rate": 1.0, "schema_valid_rate": 1.0},
        }
    )
    write_json_atomic(run / "eval/test/constrained/metrics.json", metrics)


def test_collect_puts_runs_side_by_side_and_flags_low_risk_recall(project, catalog, orch):
    task = catalog.task()
    log, history = healthy_log()
    good = fake_run(project.root, "model-a", log, history)
    weak = fake_run(project.root, "model-b", log, history)
    gold = ["suicidal", "self_harm", "none", "none"]
    write_eval(task, good, ["suicidal", "self_harm", "none", "none"], gold)
    write_eval(task, weak, ["none", "self_harm", "none", "none"], gold)  # misses the suicidal one
    result = orch("collect", "--sort", "all_fields_correct")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((project.root / "reports/comparison.csv").open()))
    majority = [r for r in rows if r["method"] == "majority baseline"]
    assert len(majority) == 1 and majority[0]["model"] == "majority" and majority[0]["split"] == "test"
    rows = [r for r in rows if r not in majority]
    assert [r["model"] for r in rows] == ["model-a", "model-b"]
    assert float(rows[0]["any_risk_recall"]) == 1.0 and float(rows[1]["any_risk_recall"]) == 0.5
    assert rows[1]["risk_recall_low"] == "True" and rows[0]["risk_recall_low"] == "False"
    assert float(rows[1]["recall_suicidal"]) == 0.0 and rows[0]["steps"] == "100"
    assert float(rows[0]["train_loss"]) == 0.2 and float(rows[0]["eval_loss"]) == 0.5
    assert float(rows[0]["repaired_rate"]) == 1.0 and float(rows[0]["strict_rate"]) == 1.0
    html = (project.root / "reports/comparison.html").read_text()
    assert html.count("<tr") == 4 and 'class="flagged"' in html  # header, two runs, the majority baseline
    assert html.count('alt="loss curve" src="data:image/png;base64,') == 2
    assert html.count('alt="risk confusion matrix" src="data:image/png;base64,') == 3
    md = (project.root / "reports/comparison.md").read_text()
    assert "| model-b | lora | constrained |" in md
    assert "collected · all runs · student_mental" in project.steps.read_text()
    index = (project.root / "reports/index.html").read_text()
    assert "<h2>Journal (steps/steps.md)</h2>" in index and 'href="../steps/steps.md"' in index


def test_collect_sorts_and_rejects_unknown_columns(project, catalog, orch):
    log, history = healthy_log()
    run = fake_run(project.root, "model-a", log, history)
    write_eval(catalog.task(), run, ["none"], ["none"])
    assert orch("collect", "--sort", "nonsense").exit_code == 2


def test_diagnose_healthy_run(project, catalog):
    log, history = healthy_log()
    fake_run(project.root, "m", log, history, checkpoints=2)
    findings, verdict = diagnose(project, catalog.task(), M)
    levels = {f.topic: f.level for f in findings}
    assert levels["trend"] == "ok" and levels["overfit"] == "ok" and levels["checkpoints"] == "ok"
    assert levels["task"] == "warning" and "not evaluated" in verdict  # a low loss alone is no verdict


def test_diagnose_sees_a_loss_reset(project, catalog):
    log = [{"current_steps": s, "loss": loss} for s, loss in [(10, 3.69), (20, 1.2), (30, 0.6), (10, 3.69), (20, 1.3)]]
    fake_run(project.root, "m", log, [{"step": 20, "loss": 1.3}])
    findings, _ = diagnose(project, catalog.task(), M)
    reset = [f for f in findings if f.topic == "reset"]
    assert reset and reset[0].level == "problem" and "restarted from scratch" in reset[0].message
    assert "step 30" in reset[0].message and "step 10" in reset[0].message


def test_diagnose_sees_overfitting(project, catalog):
    log, history = healthy_log()
    history = [h for h in history if "eval_loss" not in h]
    history += [{"step": 30, "eval_loss": 0.9}, {"step": 60, "eval_loss": 0.7}, {"step": 100, "eval_loss": 1.1}]
    fake_run(project.root, "m", log, history)
    findings, _ = diagnose(project, catalog.task(), M)
    overfit = [f for f in findings if f.topic == "overfit"][0]
    assert overfit.level == "problem" and "checkpoint-60" in overfit.message


def test_task_metrics_decide_the_verdict(project, catalog):
    log, history = healthy_log()
    run = fake_run(project.root, "m", log, history)
    write_eval(catalog.task(), run, ["none", "violence"], ["suicidal", "none"])
    _, verdict = diagnose(project, catalog.task(), M)
    assert verdict.startswith("not usable:") and "any-risk recall below 90%" in verdict


def test_a_constant_model_learned_the_prior_whatever_the_loss(project, catalog, orch):
    """Loss fell 90%, every answer the same: the verdict is the prior, in diagnose and in the comparison."""
    log, history = healthy_log()
    run = fake_run(project.root, "m", log, history)
    gold = ["suicidal", "none", "none", "none", "self_harm", "none"]
    write_eval(catalog.task(), run, ["none"] * 6, gold, constant=True)
    findings, verdict = diagnose(project, catalog.task(), M)
    assert verdict.startswith("not usable: learned the label prior only (the same answer to 6/6 inputs)"), verdict
    assert "any-risk recall below 90%" in verdict
    prior = [f for f in findings if f.topic == "prior"]
    assert prior and prior[0].level == "problem"
    assert [f for f in findings if f.topic == "trend"][0].level == "ok"  # the loss looked fine
    assert orch("collect").exit_code == 0
    rows = list(csv.DictReader((project.root / "reports/comparison.csv").open()))
    model = [r for r in rows if r["model"] == "m"][0]
    assert model["prior_only"] == "the same answer to 6/6 inputs"
    assert model["any_risk_recall_k"] == "0" and model["any_risk_recall_n"] == "2"
    assert float(model["all_fields_correct_high"]) < 1 and model["all_fields_correct_k"] == "2"  # rows 1 and 5
    md = (project.root / "reports/comparison.md").read_text()
    assert "| 0.000 (0/2, 0.00-0.66) |" in md  # any-risk recall with its count and interval


def test_rules_baseline_is_a_row_in_the_comparison(project, orch):
    result = orch("eval", "--rules")
    assert result.exit_code == 0, result.output
    assert "saves/_baselines/student_mental/eval/test/rules/predictions.jsonl" in result.output
    assert orch("collect").exit_code == 0
    rows = list(csv.DictReader((project.root / "reports/comparison.csv").open()))
    baseline = [r for r in rows if r["method"] == "rules baseline"]
    assert len(baseline) == 1 and baseline[0]["decoding"] == "rules" and float(baseline[0]["valid_rate"]) == 1.0
    # The shipped labels come from the same rules, so the baseline reproduces them exactly.
    assert float(baseline[0]["all_fields_correct"]) == 1.0


# --- files as they are found on real clusters, not as orch wrote them -----------------------------------


def test_a_symlinked_model_folder_is_collected(project, catalog, tmp_path):
    log, history = healthy_log()
    elsewhere = fake_run(tmp_path / "scratch", "m", log, history)  # scratch/saves/m/lora/sft
    write_eval(catalog.task(), elsewhere, ["none"], ["none"])
    (project.root / "saves").mkdir(exist_ok=True)
    (project.root / "saves/m").symlink_to(elsewhere.parent.parent)
    from orchestrator.collect import compare

    rows = [r for r in compare(project, catalog.task()).rows if r.values["model"] == "m"]
    assert len(rows) == 1 and rows[0].values["steps"] == 100
    findings, _ = diagnose(project, catalog.task(), M)
    assert [f for f in findings if f.topic == "task"]


def test_diagnose_survives_hand_edited_trainer_files_and_flags_divergence(project, catalog):
    log = [{"current_steps": "2", "loss": 1.0}, {"current_steps": 4, "loss": float("nan")}]
    log += [{"current_steps": 6, "loss": 0.9}, {"current_steps": 8, "loss": 0.5}]
    history = [
        {"eval_loss": 0.4},
        {"step": "2", "loss": "2.0"},
        {"step": 4, "eval_loss": None},
        {"step": 8, "loss": 0.5},
    ]
    fake_run(project.root, "m", log, history)
    findings, _ = diagnose(project, catalog.task(), M)
    diverged = [f for f in findings if f.topic == "loss" and f.level == "problem"]
    assert diverged and "nan at step 4" in diverged[0].message
    assert any(f.topic == "eval" for f in findings)  # no usable eval loss: said, not crashed


def test_unknown_risk_recall_is_not_called_catching_risk(project, catalog):
    log, history = healthy_log()
    write_eval(catalog.task(), fake_run(project.root, "m", log, history), ["none"] * 12, ["none"] * 12)
    findings, verdict = diagnose(project, catalog.task(), M)
    assert "risk recall unknown" in verdict and "catches" not in verdict
    assert any("no at-risk examples" in f.message for f in findings if f.topic == "task")


def test_a_cut_off_adapter_and_flag_sorting(project, catalog):
    from orchestrator.collect import RISK_LOW, collect

    log, history = healthy_log()
    for model, predicted in (("a", ["none", "none"]), ("b", ["suicidal", "none"])):
        run = fake_run(project.root, model, log, history)
        write_eval(catalog.task(), run, predicted, ["suicidal", "none"])
        (run / "adapter_model.safetensors").write_text("garbage")
    rows = collect(project, catalog.task(), sort=RISK_LOW)
    assert [r.values[RISK_LOW] for r in rows][0] is False  # unflagged first: best first
    assert all(r.values["trainable_params"] is None for r in rows)


def test_diagnose_judges_as_the_comparison_does_with_counts(project, catalog, orch):
    """Flagging every input 'suicidal' catches every risk and separates nothing: diagnose says so, as collect does."""
    from orchestrator.collect import compare, row_verdict

    log, history = healthy_log()
    run = fake_run(project.root, "m", log, history)
    gold = ["suicidal", "self_harm", "violence"] + ["none"] * 27
    write_eval(catalog.task(), run, ["suicidal"] * 30, gold)
    findings, verdict = diagnose(project, catalog.task(), M)
    row = [r for r in compare(project, catalog.task()).rows if r.values["model"] == "m"][0]
    assert verdict.startswith("not usable:") and row_verdict(row, catalog.task()).startswith("NOT USABLE")
    assert "does not separate at-risk examples" in verdict
    task_line = [f for f in findings if f.topic == "task"][0]
    assert task_line.level == "problem" and "1.000 (3/3, 0.44-1.00)" in task_line.message
    assert "anecdotal" in task_line.message and "(30/30," in task_line.message  # valid, with its count


def test_the_verdict_comes_from_the_test_split_not_any_split(project, catalog):
    log, history = healthy_log()
    run = fake_run(project.root, "m", log, history)
    gold = ["suicidal", "self_harm", "violence", "suicidal", "self_harm"] + ["none"] * 25
    write_eval(catalog.task(), run, gold, gold)  # test: every label right
    val = json.loads((run / "eval/test/constrained/metrics.json").read_text())
    write_json_atomic(run / "eval/val/constrained/metrics.json", {**val, "split": "val", "risk": None})
    _, verdict = diagnose(project, catalog.task(), M)
    assert verdict.startswith("candidate:") and "(judged on test/constrained)" in verdict, verdict


def test_without_test_scores_the_verdict_comes_from_val_never_train(project, catalog):
    """The train split is scored for DPO pairs (in-sample): it judges a run only when nothing else was scored."""
    log, history = healthy_log()
    run = fake_run(project.root, "m", log, history)
    gold = ["suicidal", "self_harm", "violence", "suicidal", "self_harm"] + ["none"] * 25
    write_eval(catalog.task(), run, gold, gold)
    test = run / "eval/test/constrained/metrics.json"
    scored = json.loads(test.read_text())
    for split in ("val", "train"):
        write_json_atomic(run / f"eval/{split}/constrained/metrics.json", {**scored, "split": split})
    test.unlink()
    _, verdict = diagnose(project, catalog.task(), M)
    assert "(judged on val/constrained)" in verdict, verdict
    (run / "eval/val/constrained/metrics.json").unlink()
    _, verdict = diagnose(project, catalog.task(), M)
    assert "(judged on train/constrained)" in verdict, verdict


def test_a_malformed_metrics_file_is_named_not_a_crash(project, catalog, orch):
    log, history = healthy_log()
    run = fake_run(project.root, "m", log, history)
    write_eval(catalog.task(), run, ["none"] * 6, ["none"] * 6)
    path = run / "eval/test/constrained/metrics.json"
    metrics = json.loads(path.read_text())
    metrics["rates"]["all_fields_correct"] = {"k": 9, "n": 6}
    write_json_atomic(path, metrics)
    result = orch("collect")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "saves/m/lora/sft/eval/test/constrained/metrics.json" in result.output
    assert "rates.all_fields_correct" in result.output


def test_the_verdict_speaks_of_the_evaluation_it_judges(project, catalog):
    """Constrained catches every risk, free none: the verdict is the constrained one's, without free's shortfall."""
    log, history = healthy_log()
    run = fake_run(project.root, "m", log, history)
    gold = ["suicidal", "self_harm", "violence", "suicidal", "self_harm"] * 2 + ["none"] * 10
    write_eval(catalog.task(), run, gold, gold)
    path = run / "eval/test/constrained/metrics.json"
    good = json.loads(path.read_text())
    write_eval(catalog.task(), run, ["none"] * 20, gold)
    missed = json.loads(path.read_text())
    write_json_atomic(path, good)
    write_json_atomic(run / "eval/test/free/metrics.json", {**missed, "decoding": "free", "valid_rate": 0.95})
    findings, verdict = diagnose(project, catalog.task(), M)
    assert verdict.startswith("candidate:") and "below 90%" not in verdict, verdict
    free = [f for f in findings if f.topic == "task" and "test/free" in f.message][0]
    assert free.level == "problem"
    constrained = [f for f in findings if f.topic == "task" and "test/constrained" in f.message][0]
    assert constrained.level == "ok"
    write_json_atomic(path, {**good, "split": None})  # a file without a split: judged, not a crash
    _, verdict = diagnose(project, catalog.task(), M)
    assert verdict


def test_a_merged_evaluation_named_by_its_folder_is_the_runs(project, catalog):
    """An older merged metrics.json without a `run` key is identified from its folder (the export stage)."""
    log, history = healthy_log()
    run = fake_run(project.root, "m", log, history)
    gold = ["suicidal", "self_harm", "violence", "suicidal", "self_harm"] * 2 + ["none"] * 10
    write_eval(catalog.task(), run, gold, gold)
    good = json.loads((run / "eval/test/constrained/metrics.json").read_text())
    (run / "eval/test/constrained/metrics.json").unlink()
    merged = run.parent / "merged/eval/test/constrained/metrics.json"
    merged.parent.mkdir(parents=True)
    write_json_atomic(merged, {**good, "model": "merged"})
    findings, verdict = diagnose(project, catalog.task(), M)
    assert verdict.startswith("candidate:") and "(judged on test/constrained (merged))" in verdict, verdict
