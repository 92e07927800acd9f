"""The dpo stage: pairs from the SFT run's own mistakes, then LLaMA-Factory DPO from the SFT adapter.

Real parts throughout: `llamafactory-cli` trains the tiny model (SFT, then `stage: dpo`) on the local
executor and on the localhost SLURM; orch's scorer builds the pairs and scores SFT and SFT+DPO; the
comparison shows both rows. Resuming after a cancel paces the steps (tests/pacer) so that no machine is
too fast for the cancel to land mid-run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml
from test_submit import FAST, SFT, events, go, wait_for_event, wait_state

from orchestrator import ledger
from orchestrator.collect import compare
from orchestrator.diagnose import diagnose
from orchestrator.errors import OrchError
from orchestrator.monitor import cancel
from orchestrator.outputs import is_complete
from orchestrator.runs import Run, last_submission
from orchestrator.submit import SubmitOptions, submit

PAIRS, DPO, EVAL = (Run("tiny-qwen3", "lora", s) for s in ("pairs", "dpo", "eval"))
# SFT 2 steps; pairs from 12 train rows (every row kept, so the set is never empty); DPO 3 steps.
CHAIN = ("max_steps=2", "save_steps=1", "logging_steps=1", "pairs.limit=12", "pairs.keep_correct=1")


def plan(catalog, *sets, then=("dpo",), executor="local", restart=False):
    """Plan a submission without submitting it (FAST settings, then the given ones)."""
    opts = SubmitOptions(method="lora", executor=executor, sets=FAST + sets, then=then, restart=restart, dry_run=True)
    return submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)


def dpo_dir(project) -> Path:
    return project.root / "saves/tiny-qwen3/lora/dpo"


def pairs_file(project) -> Path:
    return project.root / "saves/tiny-qwen3/lora/sft/preference/pairs-train.jsonl"


def test_dpo_chain_trains_from_the_sft_adapter_on_its_own_mistakes(project, catalog, executor):
    sets = (*CHAIN, "dpo.max_steps=3", "eval.decoding=constrained")
    plans = go(catalog, executor, *sets, then=("dpo", "eval"))
    assert [p.run.stage for p in plans] == ["sft", "pairs", "dpo", "eval"]  # dpo brings the pairs it reads
    for run in (SFT, PAIRS, DPO, EVAL):
        wait_state(project, run, timeout=600)
    wait_for_event(project, EVAL, "finished")
    submitted = {r["run"]: r for r in ledger.read(project.ledger) if r["event"] == "submitted"}
    assert submitted[PAIRS.name]["depends_on"] == [plans[0].job_id]  # pairs wait for SFT, dpo for its pairs
    assert submitted[DPO.name]["depends_on"] == [plans[1].job_id]

    # The pairs: ranking data declared beside them, every rejected answer valid, different, same prompt.
    task = catalog.task()
    info = json.loads((pairs_file(project).parent / "dataset_info.json").read_text())
    assert info["student_mental_train_pairs"]["ranking"] is True
    assert info["student_mental_train_pairs"]["file_name"] == "pairs-train.jsonl"
    train = [json.loads(x) for x in (project.root / "data/student_mental/train.jsonl").read_text().splitlines()]
    gold = {(r["instruction"], r["input"]): json.loads(r["output"]) for r in train[:12]}
    pairs = [json.loads(x) for x in pairs_file(project).read_text().splitlines()]
    assert pairs
    for pair in pairs:
        assert json.loads(pair["chosen"]) == gold[(pair["instruction"], pair["input"])]
        rejected = json.loads(pair["rejected"])
        assert task.answer_errors(rejected) == [] and pair["rejected"] != pair["chosen"]

    # DPO ran as LLaMA-Factory's dpo stage, from the SFT adapter (merged, a new adapter on top).
    config = yaml.safe_load((dpo_dir(project) / "orch_config.yaml").read_text())
    assert config["stage"] == "dpo" and config["adapter_name_or_path"] == "saves/tiny-qwen3/lora/sft"
    assert config["dataset_dir"] == "saves/tiny-qwen3/lora/sft/preference"
    log = (project.root / last_submission(project, DPO)["log"]).read_text()
    assert "Merged 1 adapter(s)" in log, log[-3000:]
    state = json.loads((dpo_dir(project) / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    # The pairs did not exist when dpo was submitted: its start event (and steps.md entry) names them.
    started = next(r for r in ledger.for_run(project.ledger, DPO.name) if r["event"] == "started")
    assert started["dataset"] == project.relative(pairs_file(project)) and len(started["dataset_sha256"]) == 16
    assert f"| dataset | {started['dataset']}" in project.steps.read_text()
    assert any("rewards/margins" in h and "rewards/accuracies" in h for h in state["log_history"])

    # The eval job scored the SFT adapter and the DPO one; the comparison shows both rows.
    comparison = compare(project, task)
    methods = {(r.values["model"], r.values["method"]) for r in comparison.rows if r.values["split"] == "test"}
    assert {("tiny-qwen3", "lora"), ("tiny-qwen3", "lora+dpo")} <= methods
    dpo_row = next(r for r in comparison.rows if r.values["method"] == "lora+dpo")
    assert dpo_row.values["steps"] == 3  # the DPO run's own training facts
    findings, _ = diagnose(project, task, DPO)
    preference = [f for f in findings if f.topic == "preference"]
    assert preference and "reward margin" in preference[0].message and "preference accuracy" in preference[0].message


def test_a_dpo_run_resumes_after_a_cancel(project, catalog, executor, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent / "pacer"))
    # Paced: 300 DPO steps take at least 60 s, which outlasts the refusals and the cancel below however fast
    # the machine; the resumed job runs unpaced (pacing is the environment's, not the config's).
    monkeypatch.setenv("ORCH_TEST_STEP_SECONDS", "0.2")
    sets = (*CHAIN, "dpo.max_steps=300", "dpo.save_steps=5")
    go(catalog, executor, *sets, then=("dpo",))
    deadline = time.time() + 600
    while not (dpo_dir(project) / "checkpoint-5" / "trainer_state.json").is_file():
        assert time.time() < deadline, "no DPO checkpoint-5"
        time.sleep(0.5)
    # Retraining SFT now would move the adapter the running DPO job reads: refused.
    with pytest.raises(OrchError, match="would be moved aside while tiny-qwen3/lora/dpo may read it"):
        plan(catalog, *CHAIN[:3], then=(), executor=executor, restart=True)
    # ... and so would rebuilding the pairs it trains on.
    with pytest.raises(OrchError, match="would rewrite the pairs it trains on"):
        plan(catalog, *CHAIN, then=("pairs",), executor=executor)
    cancel(project, DPO)
    wait_state(project, DPO, ("CANCELLED",), timeout=120)

    monkeypatch.setenv("ORCH_TEST_STEP_SECONDS", "0")
    plans = go(catalog, executor, *sets, then=("dpo",))
    actions = {p.run.stage: p.action for p in plans}
    assert actions == {"sft": "skip", "pairs": "skip", "dpo": "resume"}  # the pairs it trained on are kept
    assert "reused" in next(p.note for p in plans if p.run.stage == "pairs")
    complete = sorted(int(p.name.split("-")[1]) for p in dpo_dir(project).glob("checkpoint-*") if is_complete(p))
    assert complete and complete[-1] >= 5
    wait_state(project, DPO, timeout=600)
    wait_for_event(project, DPO, "resumed")
    record = [r for r in ledger.for_run(project.ledger, DPO.name) if r["event"] == "resumed"][0]
    assert record["resumed_from"].startswith("saves/tiny-qwen3/lora/dpo/checkpoint-")
    state = json.loads((dpo_dir(project) / "trainer_state.json").read_text())
    assert state["global_step"] == 300
    logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged == sorted(set(logged)), "DPO began again from scratch"
    assert events(project, PAIRS).count("submitted") == 1


def test_retraining_sft_rebuilds_the_pairs_and_asking_for_them_too(project, catalog):
    go(catalog, "local", "max_steps=2", "save_steps=1", "logging_steps=1")
    wait_state(project, SFT)
    # A chain after a finished SFT run with no pairs yet builds them.
    plans = go(catalog, "local", *CHAIN, "dpo.max_steps=2", then=("dpo",))
    assert {p.run.stage: p.action for p in plans} == {"sft": "skip", "pairs": "fresh", "dpo": "fresh"}
    wait_state(project, DPO, timeout=600)
    sets = (*CHAIN, "dpo.max_steps=2")
    plans = plan(catalog, *sets)
    assert {p.run.stage: p.action for p in plans} == {"sft": "skip", "pairs": "skip", "dpo": "skip"}
    # Other settings, or asked for: the pairs are rebuilt, so the DPO run trained on the old ones starts over.
    for then, extra in ((("dpo",), ("pairs.seed=7",)), (("pairs", "dpo"), ())):
        plans = plan(catalog, *sets, *extra, then=then)
        assert {p.run.stage: p.action for p in plans} == {"sft": "skip", "pairs": "fresh", "dpo": "restart"}
        assert "its inputs are rebuilt by this submission (pairs)" in plans[2].note
    # Stats that describe another pairs file (a build cut off between its writes): rebuilt.
    stats = pairs_file(project).with_name("pairs-train.stats.json")
    stats.write_text(stats.read_text().replace('"pairs_sha256": "', '"pairs_sha256": "0'))
    assert plan(catalog, *sets)[1].action == "fresh"
    # The DPO model is the SFT adapter plus its own: scored on top of another SFT adapter, refused; and it
    # has no merged or GGUF model (those stages merge the SFT adapter).
    from orchestrator.evaluation.evaluate import Scored, evaluate

    adapter = project.root / "saves/tiny-qwen3/lora/sft/adapter_model.safetensors"
    later = (dpo_dir(project) / "adapter_model.safetensors").stat().st_mtime + 60
    os.utime(adapter, (later, later))
    with pytest.raises(OrchError, match="which was trained again since"):
        evaluate(project, catalog.task(), Scored(DPO), limit=1)
    for subject in ("merged", "gguf"):
        with pytest.raises(OrchError, match="the export and gguf stages merge the SFT adapter"):
            Scored(DPO, subject)
    # SFT trained anew: the pairs are its mistakes, so they are rebuilt, and dpo restarts.
    plans = plan(catalog, *CHAIN, restart=True)
    assert {p.run.stage: p.action for p in plans} == {"sft": "restart", "pairs": "fresh", "dpo": "restart"}


def test_bad_pairs_settings_and_stale_dpo_inputs_are_refused_before_queueing(project, catalog):
    for bad, message in (
        ("pairs.risk_share=2", "between 0 and 1"),
        ("pairs.limit=0", "whole number >= 1"),
        ("pairs.split=val", "no such setting"),
    ):
        with pytest.raises(OrchError, match=message):
            plan(catalog, bad)
    # The eval stage scoring a DPO model that is neither in the chain nor on disk.
    with pytest.raises(OrchError, match="reads the dpo stage's output"):
        plan(catalog, "eval.subjects=adapter,dpo", then=("eval",))
    # The dpo run writing into the SFT run's folder (it would be "finished" there, or clobber it).
    for folder in ("saves/tiny-qwen3/lora/sft", "saves/tiny-qwen3/lora/sft/preference"):
        with pytest.raises(OrchError, match=f"its output folder {folder} is \\(inside\\) the sft stage's"):
            plan(catalog, f"dpo.output_dir={folder}")
    # The chain writes the pairs under one dataset name: any other name in its folder would not be there.
    with pytest.raises(OrchError, match="dataset 'student_mental_val_pairs' is not what the pairs stage writes"):
        plan(catalog, "dpo.dataset=student_mental_val_pairs")
    # QLoRA cannot merge the SFT adapter into a 4-bit base: LLaMA-Factory's own check, at submit.
    with pytest.raises(OrchError, match="Cannot create new adapter upon a quantized model"):
        plan(catalog, "dpo.quantization_bit=4", executor="slurm")


GOLD = {"depression_level": 2, "anxiety_level": 1, "risk_flag": "suicidal", "student_distress_score": 7}
MISS = {**GOLD, "risk_flag": "none"}


def _pairs_on_disk(project, catalog, lines: list[str]) -> Path:
    """A pairs file in the SFT run's preference folder, declared as the pairs stage declares it."""
    from orchestrator.preference import write_dataset_info

    out = pairs_file(project)
    out.parent.mkdir(parents=True)
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    write_dataset_info(project, catalog.task(), out, "train")
    return out


def _pair(chosen, rejected, **extra) -> str:
    row = {"instruction": "assess", "input": "来访者：我不想活了", "chosen": chosen, "rejected": rejected, **extra}
    return json.dumps(row, ensure_ascii=False)


def test_validate_names_the_file_and_line_of_every_bad_pair(project, catalog, orch):
    good = _pair(json.dumps(GOLD), json.dumps(MISS))
    out = _pairs_on_disk(
        project,
        catalog,
        [
            good,
            _pair(json.dumps(GOLD), json.dumps(GOLD)),  # 2: the same answer twice
            _pair(json.dumps(GOLD), '{"depression_level": 9}'),  # 3: rejected breaks the schema
            '{"instruction": "assess", "input": "", "chosen": "{}"}',  # 4: no rejected column
            "{not json",  # 5
            _pair("not an answer", json.dumps(MISS)),  # 6: chosen is no JSON
            _pair(json.dumps(GOLD), json.dumps(GOLD, indent=1, sort_keys=True)),  # 7: the same answer, respaced
            _pair(json.dumps(GOLD), json.dumps(MISS), instruction=5),  # 8: a prompt that is no text
            json.dumps({**json.loads(good), "input": "\ud800"}),  # 9: a lone surrogate escaped (not valid Unicode)
            json.dumps({"instruction": "assess", "chosen": json.dumps(GOLD), "rejected": json.dumps(MISS)}),  # 10: fine
            _pair(json.dumps(GOLD), json.dumps({**GOLD, "depression_level": 2.0})),  # 11: 2.0 is the label 2
        ],
    )
    result = orch("validate", "tiny-qwen3", "--method", "lora")
    assert result.exit_code != 0
    rel = project.relative(out)
    text = result.output
    assert f"{rel}:2" in text and "rejected equals chosen" in text
    assert f"{rel}:3" in text and "rejected: answer does not match the student_mental schema" in text
    assert f"{rel}:4" in text and "missing column(s) ['rejected']" in text
    assert f"{rel}:5" in text
    assert f"{rel}:6" in text and "chosen: response is not valid JSON" in text
    assert f"{rel}:7" in text and f"{rel}:8" in text and "column 'instruction' is int, not text" in text
    assert f"{rel}:9" in text and "lone surrogate" in text
    assert f"{rel}:10" not in text  # no input in one row (others have it): LLaMA-Factory reads it as null
    for line in (2, 7, 11):  # the same answer, however written (11: 2.0 is the label 2)
        assert f"{rel}:{line}: rejected equals chosen" in text
    assert f"{rel}:1:" not in text and f"{rel}:1 " not in text
    assert "Traceback" not in text and result.exit_code == 1


def test_validate_refuses_a_pairs_registry_llamafactory_cannot_load(project, catalog, orch):
    out = _pairs_on_disk(project, catalog, [_pair(json.dumps(GOLD), json.dumps(MISS))])
    info = out.parent / "dataset_info.json"
    for entry, message in (
        ('"pairs-train.jsonl"', "its entry is str, not an object"),
        ('{"formatting": "alpaca", "ranking": true}', "its entry names no source"),
        ('{"file_name": 5, "ranking": true}', "file_name is not a string"),
        ('{"file_name": "pairs-train.jsonl", "ranking": true, "columns": ["chosen"]}', "columns is not an object"),
    ):
        info.write_text('{"student_mental_train_pairs": ' + entry + "}")
        result = orch("validate", "tiny-qwen3", "--method", "lora")
        assert result.exit_code == 1 and message in result.output, result.output
        assert "orch dpo pairs" in result.output  # the fix: what writes that file


def test_validate_fails_an_empty_pair_set_and_passes_a_good_one(project, catalog, orch):
    out = _pairs_on_disk(project, catalog, [])
    result = orch("validate", "tiny-qwen3", "--method", "lora")
    assert (
        result.exit_code != 0
        and f"{project.relative(out)}: dataset 'student_mental_train_pairs' has no usable rows" in (result.output)
    )
    out.write_text(_pair(json.dumps(GOLD), json.dumps(MISS)) + "\n", encoding="utf-8")
    (out.parent.parent / "adapter_config.json").write_text("{}")  # the SFT adapter's marker (no weights are read)
    result = orch("validate", "tiny-qwen3", "--method", "lora", "--set", "bf16=false", "--set", "logging_steps=1")
    assert result.exit_code == 0, result.output
    # The pairs are checked against cutoff_len as LLaMA-Factory's pairwise processor cuts them.
    result = orch("validate", "tiny-qwen3", "--method", "lora", "--set", "cutoff_len=16")
    assert result.exit_code != 0 and "cuts the answer of 1 of 1 rows of student_mental_train_pairs" in result.output


def test_scoring_stacks_adapters_as_llamafactory_trained_them(project):
    """lora: the SFT adapter was merged and a new one trained on top; qlora (no merge into 4 bits): the SFT
    adapter was trained further, so it is the run's own and nothing is merged first."""
    from orchestrator.evaluation.evaluate import starting_adapters

    sft = "saves/tiny-qwen3/lora/sft"
    assert starting_adapters(project, {"adapter_name_or_path": sft, "create_new_adapter": True}) == [project.root / sft]
    assert starting_adapters(project, {"adapter_name_or_path": sft, "create_new_adapter": False}) == []
    assert (
        starting_adapters(project, {"adapter_name_or_path": sft, "create_new_adapter": True, "quantization_bit": 4})
        == []
    )
    assert starting_adapters(project, {"adapter_name_or_path": f"a,{sft}"}) == [project.root / "a"]
    assert starting_adapters(project, {}) == []


def test_diagnose_says_whether_dpo_learned_the_preference():
    from orchestrator.diagnose import OK, WARN, preference_findings

    learned = preference_findings([(1, 0.0), (10, 0.8)], [(1, 0.5), (10, 0.9)])
    assert learned[0].level == OK and "0.000 at step 1 -> 0.800 at step 10" in learned[0].message
    assert "preference accuracy 90%" in learned[0].message
    flat = preference_findings([(1, 0.0), (10, -0.1)], [(1, 0.5), (10, 0.4)])
    assert flat[0].level == WARN and "does not prefer the gold answers" in flat[0].message
    assert preference_findings([], [])[0].level == WARN


def test_rows_are_read_with_the_columns_llamafactory_reads(tmp_path, catalog):
    """Declared `columns` replace the alpaca defaults (an undeclared role is None, as LLaMA-Factory sets it);
    a declared prompt column may be missing from some rows (null) but not from the whole file (KeyError)."""
    from orchestrator.datasets import check_rows, user_content

    task = catalog.task()
    path = tmp_path / "pairs.jsonl"
    rows = [{"q": "来访者：我不想活了", "c": json.dumps(GOLD), "r": json.dumps(MISS)}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    columns = {"prompt": "q", "chosen": "c", "rejected": "r"}
    found, problems = check_rows(path, columns, task, ranking=True)
    assert len(found) == 1 and problems == []  # no `input` needed: the query role is not declared
    assert user_content({"q": "hello", "input": "ignored"}, columns) == "hello"
    found, problems = check_rows(path, {**columns, "query": "context"}, task, ranking=True)
    assert found and [p.message for p in problems] == [
        "no row has the column(s) ['context'] that dataset_info.json declares (LLaMA-Factory stops with KeyError)"
    ]
    found, problems = check_rows(path, {"prompt": "q", "chosen": "c"}, task, ranking=True)
    assert found == [] and "declares no rejected column" in problems[0].message
