"""The data pipeline on the real CPsyCoun sample (tests/fixtures/cpsycoun) and crafted files per format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.data import formats
from orchestrator.data.clean import anonymize
from orchestrator.data.pipeline import check, normalize, prepare, read_unified, select
from orchestrator.errors import OrchError

FIXTURES = Path(__file__).parent / "fixtures/cpsycoun"

SECRETS = {
    "PHONE": ["13812345678", "010-87654321"],
    "ID_CARD": ["11010519900307123X"],
    "EMAIL": ["li.xiaoming@example.com"],
    "QQ": ["QQ号：98765432"],
    "WECHAT": ["微信号：lxm_2021abc"],
    "URL": ["https://example.com/private?id=7"],
    "STUDENT_ID": ["学号2021123456"],
    "NAME": ["我叫李小明，"],
}


def secret_values():
    """The parts that must never survive (the cue words like 学号 may)."""
    return [
        "13812345678",
        "87654321",
        "11010519900307123X",
        "li.xiaoming@example.com",
        "98765432",
        "lxm_2021abc",
        "example.com/private",
        "2021123456",
        "李小明",
    ]


def test_every_placeholder_type():
    for kind, samples in SECRETS.items():
        for sample in samples:
            out = anonymize(f"来访者说：{sample}请帮帮我。")
            assert f"[{kind}]" in out, (kind, out)
    text = "我叫李小明，学号2021123456，电话13812345678"
    assert anonymize(text) == "我叫[NAME]，学号[STUDENT_ID]，电话[PHONE]"


def write_formats(tmp: Path) -> dict[str, Path]:
    secret = "我叫李小明，我的手机是13812345678，邮箱li.xiaoming@example.com，学号2021123456。"
    files = {
        "cpsycound": tmp / "case_x.txt",
        "cpsycoune": tmp / "Education" / "1.json",
        "psyqa": tmp / "psyqa.json",
        "smile": tmp / "smile.json",
        "alpaca": tmp / "alpaca.jsonl",
        "sharegpt": tmp / "sharegpt.json",
    }
    files["cpsycoune"].parent.mkdir(parents=True)
    files["cpsycound"].write_text(
        f"来访者：{secret}最近考试压力很大。\n\n心理咨询师：我理解你的压力，能具体说说吗？\n\n来访者：好。"
    )
    files["cpsycoune"].write_text(
        json.dumps([f"求助者：{secret}", "支持者：谢谢你告诉我，我们一起来看看。"], ensure_ascii=False)
    )
    files["psyqa"].write_text(
        json.dumps(
            [
                {
                    "questionID": "q1",
                    "question": "考试焦虑怎么办",
                    "description": secret,
                    "keywords": "学习,考试",
                    "answers": [{"answer_text": "可以试试放松训练。"}],
                }
            ],
            ensure_ascii=False,
        )
    )
    files["smile"].write_text(
        json.dumps(
            [{"role": "client", "content": secret}, {"role": "counselor", "content": "我在听。"}], ensure_ascii=False
        )
    )
    files["alpaca"].write_text(
        json.dumps({"instruction": "咨询", "input": secret, "output": "请多休息。"}, ensure_ascii=False) + "\n"
    )
    files["sharegpt"].write_text(
        json.dumps(
            [{"conversations": [{"from": "human", "value": secret}, {"from": "gpt", "value": "我明白你的感受。"}]}],
            ensure_ascii=False,
        )
    )
    return files


def test_each_format_is_read_and_detected(tmp_path):
    for fmt, path in write_formats(tmp_path).items():
        assert formats.detect(path) == fmt
        dialogues = list(formats.read(path))
        assert dialogues and dialogues[0].turns[0].role == "user"
        assert any(t.role == "assistant" for t in dialogues[0].turns), fmt
        assert not dialogues[0].turns[0].text.startswith(("来访者", "求助者")), "role prefix kept"


def test_no_secret_survives_into_any_output(tmp_path):
    files = write_formats(tmp_path / "raw")
    out = tmp_path / "out"
    out.mkdir()
    summary = normalize([tmp_path / "raw"], out / "unified.jsonl")
    assert summary["anonymized"]["PHONE"] >= 6 and summary["anonymized"]["NAME"] >= 6
    select(out / "unified.jsonl", out / "selected.jsonl", {"keywords": [], "min_assistant_chars": 1})
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8")
        for value in secret_values():
            assert value not in text, (path.name, value)
    assert summary["dialogues"] + sum(summary["dropped_dialogues"].values()) == len(files)


def test_normalize_real_sample_with_stats(tmp_path):
    summary = normalize([FIXTURES], tmp_path / "unified.jsonl")
    dialogues = read_unified(tmp_path / "unified.jsonl")
    assert summary["read"] == {"CPsyCounD": 24, "CPsyCounE": 2} and len(dialogues) == summary["dialogues"]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["by_source"]["CPsyCounE"] == 2 and stats["by_topic"]["Education"] == 1
    assert {"min", "p50", "p95", "max"} <= set(stats["turns"])
    assert all(t.role in ("user", "assistant") and len(t.text) > 1 for d in dialogues for t in d.turns)


def test_duplicates_are_dropped(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    text = (FIXTURES / "CPsyCounD/case_0.txt").read_text(encoding="utf-8")
    (raw / "case_a.txt").write_text(text)
    (raw / "case_b.txt").write_text(text)  # exact copy
    (raw / "case_c.txt").write_text(text.replace("心理咨询师，", "心理咨询师您好，", 1))  # near copy
    summary = normalize([raw], tmp_path / "unified.jsonl")
    assert summary["dialogues"] == 1
    assert summary["dropped_dialogues"] == {"exact_duplicate": 1, "near_duplicate": 1}


def test_select_filters_and_truncates(tmp_path):
    normalize([FIXTURES], tmp_path / "unified.jsonl")
    summary = select(
        tmp_path / "unified.jsonl",
        tmp_path / "selected.jsonl",
        {"keywords": ["考试", "学习"], "min_assistant_chars": 20, "max_chars": 300, "max_turns": 4},
    )
    kept = read_unified(tmp_path / "selected.jsonl")
    assert summary["dialogues"] == len(kept) > 0 and summary["dropped"].get("off_topic", 0) > 0
    assert all(len(d.turns) <= 4 for d in kept)
    assert summary["truncated"] > 0
    assert json.loads((tmp_path / "selected.stats.json").read_text())["settings"]["max_turns"] == 4


def test_rules_label_prepare_and_check(project, catalog, orch, tmp_path):
    normalize([FIXTURES], tmp_path / "unified.jsonl")
    select(
        tmp_path / "unified.jsonl",
        tmp_path / "selected.jsonl",
        {"keywords": [], "min_assistant_chars": 1, "max_chars": 600, "max_turns": 12},
    )
    result = orch(
        "data", "label", str(tmp_path / "selected.jsonl"), "-o", str(tmp_path / "labeled.jsonl"), "--labeler", "rules"
    )
    assert result.exit_code == 0, result.output
    labeled = [json.loads(x) for x in (tmp_path / "labeled.jsonl").read_text().splitlines()]
    assert any(x["labels"]["risk_flag"] == "suicidal" for x in labeled)  # case_331/505 mention 轻生/自杀
    splits = {"train": 0.8, "val": 0.1, "test": 0.1}
    first = prepare(catalog.task(), tmp_path / "labeled.jsonl", splits, project.root)
    train = (project.root / "data/student_mental/train.jsonl").read_text()
    test = (project.root / "data/student_mental/test.jsonl").read_text()
    assert prepare(catalog.task(), tmp_path / "labeled.jsonl", splits, project.root) == first
    assert (project.root / "data/student_mental/train.jsonl").read_text() == train  # deterministic
    train_ids = {json.loads(x)["id"] for x in train.splitlines()}
    test_rows = [json.loads(x) for x in test.splitlines()]
    assert not train_ids & {r["id"] for r in test_rows}
    assert "suicidal" in {json.loads(r["output"])["risk_flag"] for r in test_rows}  # every risk class in test
    report = check(
        catalog.task(),
        [project.root / "data/student_mental/train.jsonl", project.root / "data/student_mental/test.jsonl"],
    )
    assert report["ok"] and not report["overlap"]
    assert validated_ok(orch)


def validated_ok(orch) -> bool:
    result = orch("validate", "tiny-qwen3", "--method", "lora", "--set", "bf16=false")
    return result.exit_code == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"instruction": "x", "input": "y"}', "missing column(s) ['output']"),
        ('{"instruction": "x", "input": "y", "output": "{\\"depression_level\\": 1}"}', "is a required property"),
        (
            '{"instruction": "x", "input": "y", "output": "{\\"depression_level\\": 1.5, \\"anxiety_level\\": 0, '
            '\\"risk_flag\\": \\"none\\", \\"student_distress_score\\": 0}"}',
            "is not of type 'integer'",
        ),
        (
            '{"instruction": "x", "input": "y", "output": "{\\"depression_level\\": 1, \\"anxiety_level\\": 0, '
            '\\"risk_flag\\": \\"suicide\\", \\"student_distress_score\\": 0}"}',
            "is not one of",
        ),
        (
            '{"instruction": "", "input": "", "output": "{\\"depression_level\\": 1, \\"anxiety_level\\": 0, '
            '\\"risk_flag\\": \\"none\\", \\"student_distress_score\\": 0}"}',
            "empty input",
        ),
    ],
)
def test_check_names_line_and_reason(catalog, orch, tmp_path, row, message):
    good = (Path(__file__).parents[1] / "data/student_mental/test.jsonl").read_text().splitlines()[0]
    path = tmp_path / "rows.jsonl"
    path.write_text(good + "\n" + row + "\n")
    result = orch("data", "check", str(path))
    assert result.exit_code == 1
    assert f"{path}:2: " in result.output and message in result.output


def test_check_finds_overlap_between_splits(catalog, orch, tmp_path):
    rows = (Path(__file__).parents[1] / "data/student_mental/test.jsonl").read_text().splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(rows[:5]) + "\n")
    (tmp_path / "b.jsonl").write_text("\n".join(rows[3:8]) + "\n")
    result = orch("data", "check", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    assert result.exit_code == 1 and "OVERLAP" in result.output and "2 rows share" in result.output


def test_check_flags_rows_too_long_for_the_cutoff(project, orch, model_cache):
    template = (project.templates / "models/tiny-qwen3.yaml.j2").read_text()
    (project.templates / "models/tiny-qwen3.yaml.j2").write_text(template.replace("cutoff_len: 1024", "cutoff_len: 40"))
    path = project.root / "data/student_mental/test.jsonl"
    result = orch("data", "check", str(path), "--model", "tiny-qwen3")
    assert result.exit_code == 1
    assert f"{path}:1: too long for the model's cutoff" in result.output
    assert orch("data", "check", str(path)).exit_code == 0


def _row(task, row_id: str, risk: str) -> dict:
    labels = {"depression_level": 1, "anxiety_level": 1, "risk_flag": risk, "student_distress_score": 3}
    return {
        "id": row_id,
        "instruction": task.instruction,
        "input": f"来访者：{row_id}",
        "output": task.canonical_answer(labels),
    }


def test_windows_cut_a_long_dialogue_from_its_end_each_within_the_limits():
    from orchestrator.data.dialogue import Dialogue, Turn, dialogue_of, windows

    turns = tuple(Turn("user" if i % 2 == 0 else "assistant", f"第{i}句" + "话" * 40) for i in range(10))
    dialogue = Dialogue("case_1", "test", turns)
    cut = windows(dialogue, max_chars=100, max_turns=12, count=3)
    assert [w.id for w in cut] == ["case_1#w1", "case_1#w2", "case_1#w3"]
    assert cut[0].turns == turns[-2:] and cut[1].turns == turns[-4:-2]  # consecutive, most recent first
    assert all(sum(len(t.text) for t in w.turns) <= 100 for w in cut)
    assert {dialogue_of(w.id) for w in cut} == {"case_1"} and dialogue_of("case_1#w2#r3") == "case_1"
    assert windows(dialogue, 100, 12, 1)[0].id == "case_1"  # one window: the tail, under its own id
    only_counselor = Dialogue("c2", "test", (Turn("assistant", "a" * 50), Turn("user", "b" * 50)))
    assert [w.id for w in windows(only_counselor, 50, 12, 5)] == ["c2#w1"]  # the counselor-only window is skipped


def test_windows_of_one_dialogue_never_in_two_splits_and_rare_classes_in_every_split(catalog):
    from orchestrator.data.dialogue import dialogue_of
    from orchestrator.data.pipeline import split_by_dialogue

    task = catalog.task()
    rows = []
    for d in range(60):
        risk = "suicidal" if d < 3 else "self_harm" if d < 5 else "none"
        rows += [_row(task, f"d{d:02}#w{k}", risk if k == 1 else "none") for k in range(1, 4)]
    splits = split_by_dialogue(
        rows, lambda r: json.loads(r["output"])["risk_flag"], {"train": 0.8, "val": 0.1, "test": 0.1}
    )
    owners = {}
    for name, split_rows in splits.items():
        for r in split_rows:
            assert owners.setdefault(dialogue_of(r["id"]), name) == name  # one dialogue, one split
    assert sum(len(v) for v in splits.values()) == len(rows)
    for name in ("train", "val", "test"):  # three suicidal dialogues: one in each split
        assert "suicidal" in {json.loads(r["output"])["risk_flag"] for r in splits[name]}, name
    held_out = {json.loads(r["output"])["risk_flag"] for r in splits["test"]}
    assert "self_harm" in held_out  # two dialogues: test gets one, train the other


@pytest.mark.parametrize(("share", "added"), [(0.0, 0), (0.25, 3), (0.5, 12), (0.05, 0)])
def test_oversampling_repeats_at_risk_train_rows_to_the_share(catalog, share, added):
    from orchestrator.data.pipeline import oversampled

    task = catalog.task()
    train = [_row(task, f"r{i}", "suicidal" if i < 2 else "none") for i in range(16)]
    out, got = oversampled(task, train, share)
    assert got == added and len(out) == 16 + added
    at_risk = [r for r in out if json.loads(r["output"])["risk_flag"] != "none"]
    if share:
        assert len(at_risk) / len(out) >= share
    assert len({r["id"] for r in out}) == len(out)  # repeats get their own ids (`#r<k>`)
    assert oversampled(task, train, share) == (out, got)  # deterministic


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"oversample_risk": 1.5}, "not a share in [0, 0.5)"),
        ({"oversample_risk": 0.5}, "not a share in [0, 0.5)"),
        ({"oversample_risk": 0.999}, "would make them the label prior"),
        ({"oversample_risk": "lots"}, "not a share"),
        ({"oversample_risk": True}, "not a share"),
        ({"oversampel_risk": 0.2}, "data.prepare.oversampel_risk: unknown setting"),
        ("0.25", "must be a mapping"),
    ],
)
def test_bad_oversampling_settings_are_named(catalog, settings, message):
    from orchestrator.data.pipeline import oversample_share

    task = catalog.task()
    task.raw.setdefault("data", {})["prepare"] = settings
    with pytest.raises(OrchError, match=re.escape(message)):
        oversample_share(task)


def test_prepare_windows_end_to_end_records_counts_and_oversampling(project, catalog, orch, tmp_path):
    normalize([FIXTURES], tmp_path / "unified.jsonl")
    summary = select(
        tmp_path / "unified.jsonl",
        tmp_path / "selected.jsonl",
        {"keywords": [], "min_assistant_chars": 1, "max_chars": 200, "max_turns": 12, "max_windows": 4},
    )
    assert summary["dialogues"] > summary["source_dialogues"]  # long dialogues became several windows
    assert (
        orch(
            "data",
            "label",
            str(tmp_path / "selected.jsonl"),
            "-o",
            str(tmp_path / "labeled.jsonl"),
            "--labeler",
            "rules",
        ).exit_code
        == 0
    )
    stats = prepare(
        catalog.task(), tmp_path / "labeled.jsonl", {"train": 0.8, "val": 0.1, "test": 0.1}, project.root, 0.3
    )
    written = json.loads((project.root / "data/student_mental/prepare.stats.json").read_text())
    assert written == stats and stats["oversampling"]["risk_share"] == 0.3
    train = [json.loads(x) for x in (project.root / "data/student_mental/train.jsonl").read_text().splitlines()]
    assert stats["train"]["rows"] == len(train)
    at_risk = [r for r in train if json.loads(r["output"])["risk_flag"] != "none"]
    if at_risk:
        assert len(at_risk) / len(train) >= 0.3 and stats["oversampling"]["rows_added"] > 0
    report = check(catalog.task(), [project.root / f"data/student_mental/{s}.jsonl" for s in ("train", "val", "test")])
    assert not report["overlap"]  # no window (and no repeat) of a dialogue crosses splits


@pytest.mark.parametrize("seed", range(12))
def test_every_class_with_a_dialogue_per_split_is_in_every_split(catalog, seed):
    """Random corpora of multi-label dialogues and skewed fractions: the split guarantee holds for each class."""
    import random

    from orchestrator.data.dialogue import dialogue_of
    from orchestrator.data.pipeline import split_by_dialogue

    task = catalog.task()
    rng = random.Random(seed)
    classes = ["suicidal", "self_harm", "violence"]
    rows = []
    for d in range(rng.randint(8, 60)):
        labels = ["none"] + [c for c in classes if rng.random() < 0.12]
        rows += [_row(task, f"g{seed}d{d:02}#w{k}", label) for k, label in enumerate(labels, 1)]
    fractions = rng.choice(
        [{"train": 0.8, "val": 0.1, "test": 0.1}, {"train": 0.2, "val": 0.4, "test": 0.4}, {"train": 0.9, "test": 0.1}]
    )
    risk = lambda r: json.loads(r["output"])["risk_flag"]  # noqa: E731
    splits = split_by_dialogue(rows, risk, fractions)
    assert sorted(r["id"] for s in splits.values() for r in s) == sorted(r["id"] for r in rows)
    owner = {dialogue_of(r["id"]): name for name, s in splits.items() for r in s}
    assert len(owner) == len({dialogue_of(r["id"]) for r in rows})  # a dialogue in one split only
    for cls in classes:
        holding = {dialogue_of(r["id"]) for r in rows if risk(r) == cls}
        if len(holding) >= len(fractions):
            assert {owner[d] for d in holding} == set(fractions), (cls, seed, fractions)


def test_the_reported_multi_label_case_keeps_suicidal_in_val():
    """Three suicidal dialogues, one of them also violent (its stratum: violence): val still gets one."""
    from orchestrator.data.pipeline import split_by_dialogue

    labels = {"sui0": ["suicidal"], "sui1": ["suicidal"], "mix1": ["suicidal", "violence"]}
    labels.update({f"n{i}": ["none"] for i in range(12)})
    rows = [{"id": f"{d}#w{k}", "risk": c} for d, cs in labels.items() for k, c in enumerate(cs, 1)]
    splits = split_by_dialogue(rows, lambda r: r["risk"], {"train": 0.8, "val": 0.1, "test": 0.1})
    for name, split_rows in splits.items():
        assert "suicidal" in {r["risk"] for r in split_rows}, name


def test_oversampling_a_task_without_risk_is_refused_from_the_command_line_too(catalog):
    import dataclasses

    from orchestrator.data.pipeline import check_share

    task = catalog.task()
    no_risk = dataclasses.replace(task, risk_field=None, risk_negative=None)
    with pytest.raises(OrchError, match=re.escape("--oversample needs a `risk:` field")):
        check_share(no_risk, 0.3, "the command line", "--oversample")
    with pytest.raises(OrchError, match=re.escape("--oversample: 0.7 is not a share")):
        check_share(task, 0.7, "the command line", "--oversample")
    check_share(no_risk, 0, "the command line", "--oversample")  # none asked: fine


def test_the_cover_tries_every_donor_split():
    """c0 is in four dialogues; the first donor's cannot move without losing a label, another one's can."""
    from orchestrator.data.pipeline import split_by_dialogue

    dialogues = {
        "dlg0": "c1 c0 c0",
        "dlg1": "c1",
        "dlg2": "c2 c4 c4",
        "dlg3": "c2 c3",
        "dlg4": "c0 c0",
        "dlg5": "c1 c0",
        "dlg6": "c4",
        "dlg7": "c3 c4",
        "dlg8": "c2 c0",
    }
    rows = [{"id": f"{d}#w{i + 1}", "lab": c} for d, cs in dialogues.items() for i, c in enumerate(cs.split())]
    splits = split_by_dialogue(rows, lambda r: r["lab"], {"train": 0.8, "val": 0.1, "test": 0.1})
    for name, split_rows in splits.items():
        assert "c0" in {r["lab"] for r in split_rows}, name
