"""`orch pipeline` (what `make demo` runs), end to end with the tiny model: the fast version of the demo.

Real llamafactory-cli training on the local executor and on the real
single-node SLURM, real scoring of the adapter, the base model and the rules
labeler, the comparison, the report and the journal.
"""

from __future__ import annotations

import json

import pytest
from test_submit import FAST, SFT, SLURM_RESOURCES, add_broken_model

from orchestrator import ledger
from orchestrator.errors import OrchError
from orchestrator.submit import SubmitOptions
from orchestrator.workflow import PipelineOptions, run_pipeline

TRAIN = FAST + ("max_steps=4", "save_steps=2", "logging_steps=1")
EVAL_DIRS = ("constrained", "free", "constrained-base", "free-base")


def _opts(executor: str, *extra: str) -> SubmitOptions:
    return SubmitOptions(
        executor=executor, sets=TRAIN + extra, resources=dict(SLURM_RESOURCES), command="pytest pipeline"
    )


def test_pipeline_trains_scores_baselines_and_compares(project, catalog, executor):
    seen: list[tuple[str, int, int]] = []
    result = run_pipeline(
        catalog,
        "tiny-qwen3",
        _opts(executor),
        PipelineOptions(batch_size=4, command="pytest pipeline"),
        log=lambda _m: None,
        progress=lambda phase, done, total: seen.append((phase, done, total)),
    )
    assert result.status.state == "COMPLETED" and result.status.step == "4/4"
    assert ("training", 4, 4) in seen  # training progress reached the end
    val_n = len((project.root / "data/student_mental/val.jsonl").read_text().splitlines())
    total = 10 + val_n  # the val split is scored too, to choose the risk threshold
    # Scoring ran as a job on the executor; its progress came from the job's log (the last count at least).
    scoring = [item for item in seen if item[0].startswith("scoring")]
    assert scoring[-1] == ("scoring base", 10, 10)  # base: test only
    eval_log = next((project.root / "jobs").glob("tiny-qwen3_lora_eval/*/job.log")).read_text()
    assert f"orch: scoring adapter: {total}/{total}" in eval_log and "orch: scoring base: 10/10" in eval_log
    phases = [name for name, _ in result.timeline]
    assert phases == ["submit", "training", "scoring (eval job)", "model-free baselines", "comparison and report"]
    evals = [r for r in ledger.read(project.ledger) if r["event"] == "submitted" and r["stage"] == "eval"]
    assert len(evals) == 1 and evals[0]["executor"] == executor and evals[0]["depends_on"]
    assert all(seconds >= 0 for _, seconds in result.timeline)
    eval_root = project.root / "saves/tiny-qwen3/lora/sft/eval/test"
    metrics = {d: json.loads((eval_root / d / "metrics.json").read_text()) for d in EVAL_DIRS}
    assert metrics["constrained"]["valid_rate"] == 1.0 and metrics["constrained-base"]["valid_rate"] == 1.0
    assert metrics["constrained"]["subject"] == "adapter" and metrics["free-base"]["subject"] == "base"
    assert all(m["task"] == "student_mental" and m["run"] == SFT.name for m in metrics.values())
    assert all(m["n"] == 10 for m in metrics.values())
    assert 0 < metrics["free"]["max_new_tokens"] <= 100
    # The risk operating point: chosen on val for the constrained rows (a threshold, or why there is none).
    point = metrics["constrained"]["risk"]["operating_point"]
    assert point["chosen_on"] == "val" and point["target"] == 0.9 and point["reason"]
    assert (point["threshold"] is None) == ("no at-risk examples" in point["reason"])
    assert "operating_point" not in metrics["free"]["risk"] and "operating_point" not in metrics["free-base"]["risk"]
    assert "operating_point" not in metrics["constrained-base"]["risk"]  # a reference row: no threshold chosen
    assert metrics["constrained"]["rates"]["all_fields_correct"]["n"] == 10
    baselines = project.root / "saves/_baselines/student_mental/eval/test"
    rules = json.loads((baselines / "rules/metrics.json").read_text())
    majority = json.loads((baselines / "majority/metrics.json").read_text())
    assert rules["n"] == 10 and majority["n"] == 10 and majority["task"] == "student_mental"
    # One row per scored model and decoding, and the report with it.
    rows = result.comparison.rows
    assert len(rows) == 6
    assert sorted(r.values["decoding"] for r in rows) == sorted(["constrained", "free"] * 2 + ["rules", "majority"])
    assert {r.values["method"] for r in rows} == {"lora", "base (untrained)", "rules baseline", "majority baseline"}
    index = (project.root / "reports/index.html").read_text()
    assert index.count("<tr") >= 6 and "risk" in index
    assert index.count('alt="risk operating points" src="data:image/png;base64,') == 1  # the trained constrained row
    # The journal says what was scored and what came out; the ledger keeps the trained run's evaluations.
    steps_md = project.steps.read_text()
    assert steps_md.count(f"evaluated · {SFT.name}") == 4
    assert "evaluated · rules baseline · student_mental" in steps_md and "collected · all runs" in steps_md
    assert "evaluated · majority baseline · student_mental" in steps_md
    assert "any-risk recall" in steps_md and "all fields right" in steps_md
    evaluated = [r for r in ledger.for_run(project.ledger, SFT.name) if r["event"] == "evaluated"]
    assert len(evaluated) == 4 and all(r["command"] == "pytest pipeline" for r in evaluated)


def test_pipeline_again_reuses_the_finished_run_and_cli_prints_the_report(project, catalog, orch):
    run_pipeline(catalog, "tiny-qwen3", _opts("local"), PipelineOptions(baselines=False), log=lambda _m: None)
    submitted = [r for r in ledger.for_run(project.ledger, SFT.name) if r["event"] == "submitted"]
    args = ["pipeline", "tiny-qwen3", "--executor", "local", "--no-baselines"]
    for item in TRAIN:
        args += ["--set", item]
    result = orch(*args)
    assert result.exit_code == 0, result.output
    # Not trained twice: the finished run is scored again, nothing new submitted.
    assert [r for r in ledger.for_run(project.ledger, SFT.name) if r["event"] == "submitted"] == submitted
    assert "already finished" in result.output
    assert "Report: reports/index.html" in result.stdout and "Journal: steps/steps.md" in result.stdout
    assert "| tiny-qwen3 | lora | constrained | " in result.stdout  # the compact comparison table
    assert "| majority | majority baseline | majority | " in result.stdout
    verdicts = [line for line in result.stdout.splitlines() if line.startswith("tiny-qwen3/lora (")]
    assert len(verdicts) == 2 and all(": NOT USABLE: " in v or ": CANDIDATE: " in v for v in verdicts), verdicts
    assert "Full table: reports/comparison.md" in result.stdout
    timeline = next(line for line in result.stdout.splitlines() if line.startswith("Timeline: "))
    assert "scoring (eval job)" in timeline and "training" not in timeline  # reused: nothing trained
    diagnosed = orch("diagnose", "tiny-qwen3/lora")
    assert diagnosed.exit_code == 0 and "verdict:" in diagnosed.stdout and "task" in diagnosed.stdout


def test_pipeline_stops_before_scoring_when_training_fails(project, catalog, model_cache):
    add_broken_model(project, model_cache)
    with pytest.raises(OrchError, match="ended FAILED; nothing was scored"):
        run_pipeline(catalog, "broken-qwen3", _opts("local"), log=lambda _m: None)
    assert not (project.root / "saves/broken-qwen3/lora/sft/eval").exists()
    assert not (project.root / "reports").exists()
