"""A second labeling task added as files only, run end to end beside the first on the same model.

The promise under test: "a new task is a new file, no code". The task `mood`
has other field names and kinds, another risk field (`danger`), no rules
lexicons, and its own data. It goes through render -> validate -> submit ->
eval (both decodings, the base model, the majority baseline) -> collect ->
report -> diagnose on the local executor and on the real SLURM, next to a
finished student_mental run of the same model, and neither task's outputs,
evaluations or comparison rows may touch the other's.
"""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
from test_submit import FAST, SFT, SLURM_RESOURCES, go, wait_state

from orchestrator import ledger
from orchestrator.catalog import Catalog
from orchestrator.collect import compare
from orchestrator.diagnose import diagnose
from orchestrator.errors import OrchError
from orchestrator.evaluation.evaluate import Scored, evaluate_baseline, evaluate_decodings
from orchestrator.layout import BASE, MAJORITY, RULES, Run
from orchestrator.submit import SubmitOptions, submit

MOOD_TASK = """\
name: mood
description: The client's mood, how strong it is, and whether anyone is in danger.
instruction: |-
  Read the dialogue and answer with one JSON object: mood (calm, upset or angry),
  intensity (1-5) and danger (no or yes).
schema:
  type: object
  additionalProperties: false
  required: [mood, intensity, danger]
  properties:
    mood: {type: string, enum: [calm, upset, angry]}
    intensity: {type: integer, minimum: 1, maximum: 5}
    danger: {type: string, enum: ["no", "yes"]}
fields:
  mood: categorical
  intensity: ordinal
  danger: categorical
risk:
  field: danger
  negative: "no"
  min_recall: 0.5
datasets:
  train: {name: mood_train, file: data/mood/train.jsonl}
  val: {name: mood_val, file: data/mood/val.jsonl}
  test: {name: mood_test, file: data/mood/test.jsonl}
"""
MOOD = Run("tiny-qwen3", "lora", "sft", "mood")
INSTRUCTION = (
    "Read the dialogue and answer with one JSON object: mood (calm, upset or angry),\n"
    "intensity (1-5) and danger (no or yes)."
)


def _labels(text: str) -> dict:
    digest = hashlib.sha256(text.encode()).digest()
    return {
        "mood": ["calm", "upset", "angry"][digest[0] % 3],
        "intensity": 1 + digest[1] % 5,
        "danger": "yes" if digest[2] % 4 == 0 else "no",
    }


def add_mood_task(project) -> None:
    """Files only: the task file and its data (inputs borrowed from student_mental)."""
    (project.templates / "tasks/mood.yaml").write_text(MOOD_TASK, encoding="utf-8")
    for split in ("train", "val", "test"):
        source = project.root / f"data/student_mental/{split}.jsonl"
        rows = []
        for line in source.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            answer = json.dumps(_labels(row["input"]), ensure_ascii=False)
            rows.append(json.dumps({"instruction": INSTRUCTION, "input": row["input"], "output": answer}))
        target = project.root / f"data/mood/{split}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _mood_opts(executor: str, *extra: str, dry_run: bool = False) -> SubmitOptions:
    sets = FAST + ("max_steps=4", "save_steps=2", "logging_steps=1") + extra
    return SubmitOptions(
        executor=executor, task="mood", sets=sets, resources=dict(SLURM_RESOURCES), dry_run=dry_run, command="pytest"
    )


def test_second_task_runs_beside_the_first_and_never_touches_it(project, executor, orch):
    # A finished student_mental run of the same model, scored, in the comparison.
    go(Catalog(project), executor, "max_steps=4", "save_steps=2", "logging_steps=1")
    wait_state(project, SFT)
    student_eval = evaluate_decodings(project, Catalog(project).task(), Scored(SFT), decodings=("constrained",))
    student_metrics = student_eval["constrained"].predictions.parent / "metrics.json"
    student_before = student_metrics.read_bytes()

    add_mood_task(project)
    rendered = orch("render", "--all")
    assert rendered.exit_code == 0, rendered.output
    assert (project.configs / "train_tiny-qwen3_lora_mood.yaml").is_file()
    info = json.loads((project.configs / "dataset_info.json").read_text())
    assert {"mood_train", "student_mental_train"} <= set(info)
    checked = orch("validate", "tiny-qwen3", "--method", "lora", "--task", "mood", "--set", "bf16=false")
    assert checked.exit_code == 0, checked.output

    # The reproduction of the issue: the other task's dry run must not find student_mental's finished run.
    catalog = Catalog(project)
    plan = submit(catalog, ["tiny-qwen3"], _mood_opts(executor, dry_run=True), log=lambda _m: None)[0]
    assert plan.run == MOOD and plan.action == "fresh", plan.note
    assert plan.values["output_dir"] == "saves/tiny-qwen3/lora/sft@mood"
    assert plan.values["dataset"] == "mood_train" and plan.values["eval_dataset"] == "mood_val"

    submit(catalog, ["tiny-qwen3"], _mood_opts(executor), log=lambda _m: None)
    wait_state(project, MOOD)
    mood_dir = project.root / "saves/tiny-qwen3/lora/sft@mood"
    assert (mood_dir / "adapter_model.safetensors").is_file()
    assert [r["event"] for r in ledger.for_run(project.ledger, MOOD.name)][0] == "submitted"

    task = catalog.task("mood")
    results = evaluate_decodings(project, task, Scored(MOOD), batch_size=4)
    results |= {f"{d}-base": r for d, r in evaluate_decodings(project, task, Scored(MOOD, BASE)).items()}
    majority = evaluate_baseline(project, task, MAJORITY)
    for name, result in results.items():
        assert result.predictions.parent == mood_dir / "eval/test" / name
        assert result.metrics["task"] == "mood" and result.metrics["run"] == MOOD.name
        assert set(result.metrics["fields"]) == {"mood", "intensity", "danger"}
    assert results["constrained"].metrics["valid_rate"] == 1.0
    assert results["constrained"].metrics["risk"]["field"] == "danger"
    assert majority.predictions.parent == project.root / "saves/_baselines/mood/eval/test/majority"
    with pytest.raises(OrchError, match="names no rules lexicons"):
        evaluate_baseline(project, task, RULES)
    # Scoring a run on a task it was not trained for is refused, both ways.
    with pytest.raises(OrchError, match="was trained on"):
        evaluate_decodings(project, task, Scored(SFT), decodings=("constrained",))
    with pytest.raises(OrchError, match="was trained on"):
        evaluate_decodings(project, catalog.task(), Scored(MOOD), decodings=("constrained",))

    mood_cmp = compare(project, task)
    student_cmp = compare(project, catalog.task())
    mood_rows = {(r.values["model"], r.values["method"], r.values["decoding"]) for r in mood_cmp.rows}
    assert mood_rows == {
        ("tiny-qwen3", "lora", "constrained"),
        ("tiny-qwen3", "lora", "free"),
        ("tiny-qwen3", "base (untrained)", "constrained"),
        ("tiny-qwen3", "base (untrained)", "free"),
        ("majority", "majority baseline", "majority"),
    }
    assert all("danger" not in c for r in student_cmp.rows for c in r.values if c.startswith("recall_"))
    assert {r.values["decoding"] for r in student_cmp.rows} == {"constrained", "majority"}
    assert all("recall_yes" in r.values and "mood_acc" in r.values for r in mood_cmp.rows)
    assert all("risk_flag_acc" in r.values and "mood_acc" not in r.values for r in student_cmp.rows)
    # Each task's report in its own folder; the journal names the task.
    assert mood_cmp.paths["index"] == project.root / "reports/mood/index.html"
    assert student_cmp.paths["index"] == project.root / "reports/index.html"
    mood_csv = list(csv.DictReader((project.root / "reports/mood/comparison.csv").open()))
    assert len(mood_csv) == 5 and "student_distress_score_acc" not in mood_csv[0]
    assert "(danger not no) below 0.50" in mood_cmp.table  # the task's own risk field and min_recall
    assert "collected · all runs · mood" in project.steps.read_text()

    findings, verdict = diagnose(project, task, MOOD)
    task_lines = [f.message for f in findings if f.topic == "task"]
    assert task_lines and all("majority baseline" in m for m in task_lines)
    recalls = [r.metrics["risk"]["any_risk_recall"] for k, r in results.items() if not k.endswith("-base")]
    missed = any(r is not None and r < 0.5 for r in recalls)
    assert ("any-risk recall below 50% (mood's risk.min_recall)" in verdict) == missed, verdict
    diagnosed = orch("diagnose", "tiny-qwen3/lora@mood")
    assert diagnosed.exit_code == 0 and "verdict:" in diagnosed.stdout, diagnosed.output
    # student_mental's run and its evaluation were not touched.
    assert student_metrics.read_bytes() == student_before
    assert not list((project.root / "saves/tiny-qwen3/lora/sft/eval/test").glob("*base*"))
    assert json.loads(student_metrics.read_text())["task"] == "student_mental"


def test_a_run_named_on_the_command_line_belongs_to_one_task(project, orch):
    add_mood_task(project)
    layout = Catalog(project).layout
    assert layout.parse_run("m/lora", "mood") == Run("m", "lora", "sft", "mood")
    assert layout.parse_run("m/lora@mood") == Run("m", "lora", "sft", "mood")
    assert layout.parse_run("m/lora", "student_mental") == Run("m", "lora", "sft")  # the default task: today's paths
    with pytest.raises(OrchError, match="names task"):
        layout.parse_run("m/lora@mood", "student_mental")
    result = orch("eval", "--rules", "--task", "mood")
    assert result.exit_code == 2 and "names no rules lexicons" in result.output
    assert "Traceback" not in result.output


def test_layout_is_the_only_owner_of_run_folders(project):
    """Every stage's config output comes from the layout; two tasks never share any folder."""
    add_mood_task(project)
    catalog = Catalog(project)
    layout = catalog.layout
    from orchestrator import stages
    from orchestrator.render import render_run

    seen = {}
    for task_name in ("student_mental", "mood"):
        configs = render_run(catalog, "tiny-qwen3", "lora", catalog.task(task_name))
        for stage, config in configs.items():
            run = layout.run("tiny-qwen3", "lora", stage, task_name)
            key = stages.get(stage).output_key
            assert config.values[key] == layout.output_setting(run)
            assert layout.owns(layout.output_dir(run), run)
            assert config.values[key] not in seen, f"{task_name}/{stage} shares {seen.get(config.values[key])}"
            seen[config.values[key]] = f"{task_name}/{stage}"
        expected = "tiny-qwen3_lora_sft" + ("" if task_name == "student_mental" else "_mood")
        assert layout.job_root(layout.run("tiny-qwen3", "lora", "sft", task_name)).name == expected
    sft = layout.run("tiny-qwen3", "lora", "sft")
    for foreign in (project.root / "data", project.root, layout.output_dir(sft).parent, layout.saves_root):
        assert not layout.owns(foreign, sft)
    assert not layout.owns(layout.output_dir(sft), layout.run("tiny-qwen3", "lora", "sft", "mood"))


def test_restart_moves_aside_only_the_runs_own_folder(project, catalog):
    """`--restart --set output_dir=data` must not move the project's data folder aside."""
    for target in ("data", "."):
        opts = SubmitOptions(
            executor="local", sets=FAST + (f"output_dir={target}",), restart=True, dry_run=True, command="pytest"
        )
        with pytest.raises(OrchError, match="orch moves aside only its own run folders"):
            submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
        assert (project.root / "data/student_mental/train.jsonl").is_file()


# --- what a tester broke (each was a silent wrong answer or a traceback) --------------------------------


def test_a_task_file_must_carry_its_own_name(project, orch):
    """A copied task file whose `name:` was not renamed would render over the first task's configs."""
    text = (project.templates / "tasks/student_mental.yaml").read_text(encoding="utf-8")
    (project.templates / "tasks/third.yaml").write_text(text.replace("student_mental_", "third_"), encoding="utf-8")
    result = orch("render", "--all")
    assert result.exit_code == 2 and "differs from the file name" in result.output and "third.yaml" in result.output
    assert "dataset: student_mental_train" in (project.configs / "train_smollm2-135m_lora.yaml").read_text()
    for bad in ("With Space", "a@b", "a.b", "-dash"):
        (project.templates / "tasks/third.yaml").write_text(
            text.replace("name: student_mental", f'name: "{bad}"', 1), encoding="utf-8"
        )
        with pytest.raises(OrchError, match="is not a task name"):
            Catalog(project).task("third")


def test_an_unknown_default_task_is_refused(project, orch):
    (project.templates / "project.yaml").write_text("default_task: nosuch\n", encoding="utf-8")
    result = orch("render", "--all")
    assert result.exit_code == 2 and "default_task: 'nosuch' is not a task" in result.output


def test_moved_aside_runs_are_history_not_rows(project, catalog):
    """After a restart the old folder's evaluations must not count as the new run's."""
    from test_collect_diagnose import fake_run, healthy_log, write_eval

    log, history = healthy_log()
    live = fake_run(project.root, "m", log, history)
    write_eval(catalog.task(), live, ["none"], ["none"])
    old = live.with_name("sft.bak-20260101-000000")
    old.mkdir()
    (old / "eval").mkdir()
    import shutil

    shutil.copytree(live / "eval", old / "eval", dirs_exist_ok=True)
    rows = [r for r in compare(project, catalog.task()).rows if r.values["model"] == "m"]
    assert len(rows) == 1
    findings, _ = diagnose(project, catalog.task(), Run("m", "lora", "sft"))
    assert len([f for f in findings if f.topic == "task"]) == 1


def test_incomplete_or_foreign_metrics_are_named_or_survived(project, catalog):
    from test_collect_diagnose import fake_run, healthy_log

    from orchestrator.fileio import write_json_atomic

    log, history = healthy_log()
    run = fake_run(project.root, "m", log, history)
    write_json_atomic(run / "eval/test/constrained/metrics.json", {"task": "student_mental", "split": "test", "n": 0})
    findings, verdict = diagnose(project, catalog.task(), Run("m", "lora", "sft"))  # no valid_rate: no traceback
    assert any("n/a" in f.message for f in findings if f.topic == "task") and verdict
    write_json_atomic(run / "eval/test/free/metrics.json", {"task": "student_mental", "run": "garbage"})
    with pytest.raises(OrchError, match="eval/test/free/metrics.json"):
        compare(project, catalog.task())


def test_status_and_logs_read_the_default_task_suffix_as_the_default_task(project, orch):
    ledger.append(
        project.ledger,
        {
            "event": "submitted",
            "run": "m/lora/sft",
            "executor": "local",
            "job_id": "1",
            "output_dir": "saves/m/lora/sft",
            "log": "jobs/m_lora_sft/x/job.log",
        },
    )
    result = orch("logs", "m/lora@student_mental")
    assert result.exit_code == 0 and "no log yet" in result.output
