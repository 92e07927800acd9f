"""Every input file is read one way (orchestrator.inputs): nothing silently dropped, every error names file:line.

Each malformed-input case runs the real CLI and asserts the exit code, the file:line in the one-line
message, no traceback, and that no output was half-written (or an earlier output left untouched).
"""

from __future__ import annotations

import ast
import codecs
import json
from pathlib import Path

import pytest

from orchestrator import inputs
from orchestrator.inputs import InputError

REPO = Path(__file__).resolve().parents[1]
DIALOGUE = (
    "来访者：老师您好，我最近压力很大，有时想自杀。\n\n心理咨询师：谢谢你愿意告诉我，我们慢慢说。\n\n来访者：好的。"
)
CLIENT_TURN = "老师您好，我最近压力很大，有时想自杀。"


def clean_error(result, *fragments: str) -> None:
    """Exit 2, one message naming every fragment, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


# --- the reader itself -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (codecs.BOM_UTF8 + DIALOGUE.encode("utf-8"), "utf-8-sig"),
        (DIALOGUE.encode("utf-16"), "utf-16"),  # Python writes the BOM
        (DIALOGUE.encode("utf-32"), "utf-32"),
        (DIALOGUE.encode("gbk"), "gb18030"),
        (DIALOGUE.encode("gb18030"), "gb18030"),
        (DIALOGUE.replace("\n", "\r\n").encode("utf-8"), "utf-8"),
        (DIALOGUE.replace("\n", "\r").encode("utf-8"), "utf-8"),
    ],
)
def test_every_encoding_reads_to_the_same_text(tmp_path, raw, encoding):
    path = tmp_path / "case.txt"
    path.write_bytes(raw)
    decoded = inputs.read_text(path)
    assert decoded.text == DIALOGUE and decoded.encoding == encoding


def test_a_declared_encoding_is_used_and_an_unknown_one_refused(tmp_path):
    path = tmp_path / "big5.txt"
    path.write_bytes("來訪者：你好".encode("big5"))
    assert inputs.read_text(path, "big5").text == "來訪者：你好"
    with pytest.raises(InputError, match="not a text encoding"):
        inputs.read_text(path, "no-such-codec")


@pytest.mark.parametrize(
    "raw",
    [
        "来访者：".encode() + b"\x80\xff\x80 broken",  # neither UTF-8 nor GB18030
        bytes(range(256)) * 4,
        "来访者：你好\n".encode() + "第二行".encode("utf-16-le"),
    ],
)
def test_undecodable_bytes_name_file_line_and_offset(tmp_path, raw):
    path = tmp_path / "bad.txt"
    path.write_bytes(raw)
    with pytest.raises(InputError) as caught:
        inputs.read_text(path)
    assert str(path) in caught.value.where and "byte offset" in caught.value.message
    assert "UTF-8" in (caught.value.fix or "")


def test_jsonl_is_split_on_newlines_only(tmp_path):
    """json.dumps(ensure_ascii=False) writes U+2028 raw; str.splitlines would break the row in two."""
    rows = [{"text": "一\u2028二\u2029三\x1c四\x85五"}, {"text": "six"}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert [line.data for line in inputs.read_jsonl(path)] == rows


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ('{"a": 1}\n{"a": 2,}\n', 2, 9, "not valid JSON"),
        ('{"a": 1}\n\n{"a": NaN}\n', 3, None, "NaN is not valid JSON"),
        ('{"a": 1, "a": 2}\n', 1, None, "appears twice"),
        ('{"a": 1} {"b": 2}\n', 1, 10, "Extra data"),
        ('{"a": "unterminated\n', 1, 7, "Unterminated string"),
    ],
)
def test_json_errors_name_line_and_column(tmp_path, text, line, column, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        inputs.read_jsonl(path)
    error = caught.value
    assert (error.line, message in error.message) == (line, True), error.render()
    if column:
        assert error.where == f"{path}:{line}:{column}"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: [1, 2\n", 3, "not valid YAML"),
        ("a: 1\nb:\n  c: 1\n  c: 2\n", 4, "appears twice (first on line 3)"),
        ("a: 1\n\tb: 2\n", 2, "not valid YAML"),
    ],
)
def test_yaml_errors_name_line(tmp_path, text, line, message):
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        inputs.read_yaml(path)
    assert caught.value.line == line and message in caught.value.message, caught.value.render()
    assert caught.value.where.startswith(f"{path}:{line}:")


def test_missing_file_and_folder_are_clear(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        inputs.read_text(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="is a folder"):
        inputs.read_text(tmp_path)


# Modules that read only what orch itself wrote (ledger, job records, checkpoints, its own outputs),
# tolerating torn lines by design, or parse strings that are not files (model answers, --set values).
OWN_OUTPUT_READERS = {
    "orchestrator/inputs.py": "the reader",
    "orchestrator/ledger.py": "the ledger: torn last line tolerated",
    "orchestrator/outputs.py": "LLaMA-Factory's checkpoint files: binary headers, trainer logs",
    "orchestrator/executors/local.py": "job records orch wrote, /proc",
    "orchestrator/monitor.py": "job logs (tail, bytes)",
    "orchestrator/runs.py": "hashing bytes",
    "orchestrator/fileio.py": "writing, hashing bytes",
    "orchestrator/render.py": "--set values and rendered text compared with the committed file",
    "orchestrator/answers.py": "model answers (strings)",
    "orchestrator/datasets.py": "a row's answer string",
    "orchestrator/evaluation/evaluate.py": "a checked row's answer string",
    "orchestrator/data/pipeline.py": "answer strings of rows it built",
    "orchestrator/data/label.py": "its own answer cache: torn last line tolerated",
    "orchestrator/report.py": "steps.md it wrote",
    "orchestrator/jobrun.py": "job.json orch wrote, the config it copies",
    "orchestrator/templating.py": "rendered text",
    "orchestrator/cli/jobs.py": "showing a job log",
}
RAW_READS = {"read_text", "read_bytes", "loads", "load", "safe_load", "safe_load_all", "open"}


def test_only_the_reader_reads_input_files():
    """A new `json.loads(path.read_text())` outside inputs.py fails here: route it through orchestrator.inputs."""
    offenders = []
    for path in sorted((REPO / "orchestrator").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        if rel in OWN_OUTPUT_READERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in RAW_READS and not (isinstance(func, ast.Attribute) and _is_os(func)):
                    offenders.append(f"{rel}:{node.lineno}: {name}()")
    assert not offenders, "read input files through orchestrator.inputs:\n" + "\n".join(offenders)


def _is_os(func: ast.Attribute) -> bool:
    return isinstance(func.value, ast.Name) and func.value.id in ("os", "fcntl", "inputs")


# --- raw corpora through `orch data normalize` --------------------------------------------------------
def normalized(orch, tmp_path: Path, name: str, raw: bytes, *extra: str):
    source = tmp_path / "raw"
    source.mkdir(exist_ok=True)
    (source / name).write_bytes(raw)
    out = tmp_path / "out" / "unified.jsonl"
    return orch("data", "normalize", str(source / name), "-o", str(out), *extra), out


def first_turn(out: Path) -> dict:
    return json.loads(out.read_text(encoding="utf-8").splitlines()[0])["turns"][0]


def test_bom_keeps_the_first_client_turn(orch, tmp_path):
    """The issue's reproduction: a BOM used to hide the first speaker label and drop 有时想自杀."""
    result, out = normalized(orch, tmp_path, "case_1.txt", codecs.BOM_UTF8 + DIALOGUE.encode("utf-8"))
    assert result.exit_code == 0, result.output
    assert first_turn(out) == {"role": "user", "text": CLIENT_TURN}
    assert "warning" not in result.output


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (DIALOGUE.encode("gbk"), "gb18030"),
        (DIALOGUE.replace("\n", "\r\n").encode("utf-8"), "utf-8"),
        (DIALOGUE.replace("\n\n", "\n").encode("utf-8"), "utf-8"),  # one newline between turns
        (DIALOGUE.replace("来访者：", "来访者 : ").encode("utf-8"), "utf-8"),  # half-width colon, spaces
        (("\u200b" + DIALOGUE).encode("utf-8"), "utf-8"),  # an invisible mark before the first label
    ],
)
def test_real_world_variants_keep_every_turn(orch, tmp_path, raw, encoding):
    result, out = normalized(orch, tmp_path, "case_1.txt", raw)
    assert result.exit_code == 0, result.output
    turns = json.loads(out.read_text(encoding="utf-8").splitlines()[0])["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["text"] == CLIENT_TURN
    stats = json.loads(out.with_name("stats.json").read_text(encoding="utf-8"))
    assert stats["encodings"] == {encoding: 1} and stats["unattributed_text"]["count"] == 0


def test_text_without_a_speaker_is_reported_not_dropped_silently(orch, tmp_path):
    result, out = normalized(orch, tmp_path, "case_1.txt", ("案例：考试压力\n\n" + DIALOGUE).encode("utf-8"))
    assert result.exit_code == 0, result.output
    assert "1 text block(s) had no speaker label" in result.output and "case_1.txt:1: 案例：考试压力" in result.output
    stats = json.loads(out.with_name("stats.json").read_text(encoding="utf-8"))
    assert stats["unattributed_text"]["count"] == 1


def test_an_undecodable_corpus_file_stops_with_file_line_and_nothing_written(orch, tmp_path):
    raw = DIALOGUE.encode("utf-8") + b"\n\n\x80\xff\x80"
    result, out = normalized(orch, tmp_path, "case_1.txt", raw)
    clean_error(result, "case_1.txt:7", "byte offset", "fix:")
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_declared_encoding_overrides_detection(orch, tmp_path):
    traditional = "來訪者：我最近壓力很大。\n\n心理諮詢師：我明白。"
    result, out = normalized(orch, tmp_path, "case_1.txt", traditional.encode("big5"), "--encoding", "big5")
    assert result.exit_code == 0, result.output
    assert json.loads(out.with_name("stats.json").read_text())["encodings"] == {"big5": 1}


def test_an_unknown_speaker_in_a_json_corpus_is_an_error(orch, tmp_path):
    rows = [{"conversations": [{"from": "human", "value": "我很难过"}, {"from": "robot", "value": "嗯"}]}]
    result, _ = normalized(orch, tmp_path, "chat.json", json.dumps(rows, ensure_ascii=False).encode())
    clean_error(result, "chat.json", "speaker 'robot'")


def test_files_in_a_corpus_folder_that_are_not_read_are_listed(orch, tmp_path):
    source = tmp_path / "raw"
    source.mkdir()
    (source / "case_1.txt").write_text(DIALOGUE, encoding="utf-8")
    (source / "notes.docx").write_bytes(b"PK")
    result = orch("data", "normalize", str(source), "-o", str(tmp_path / "u.jsonl"))
    assert result.exit_code == 0 and "notes.docx" in result.output


# --- every other input through the CLI ---------------------------------------------------------------
def test_malformed_predictions_name_file_and_line(project, orch, tmp_path):
    good = json.dumps({"predict": "{}", "label": _answer()}, ensure_ascii=False)
    cases = {
        "broken.jsonl": (good + "\n{not json\n", "broken.jsonl:2:2"),
        "shape.jsonl": (good + "\n[1, 2]\n", "shape.jsonl:2"),
        "label.jsonl": (good + '\n{"predict": "x", "label": "nope"}\n', "label.jsonl:2"),
        "empty.jsonl": ("\n", "holds no predictions"),
    }
    for name, (text, where) in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        clean_error(orch("eval", "--predictions", str(tmp_path / name)), where)
    (tmp_path / "gbk.jsonl").write_bytes((good + "\n").encode("gb18030") + b"\x80\x80")
    clean_error(orch("eval", "--predictions", str(tmp_path / "gbk.jsonl")), "gbk.jsonl:2", "byte offset")
    clean_error(orch("eval", "--predictions", str(tmp_path)), "is a folder")


def _answer(risk: str = "none") -> str:
    return json.dumps(
        {"depression_level": 1, "anxiety_level": 1, "risk_flag": risk, "student_distress_score": 3},
        ensure_ascii=False,
    )


def labeled_row(i: int, risk: str = "none") -> dict:
    return {
        "id": f"d{i}",
        "source": "test",
        "turns": [{"role": "user", "text": f"第{i}个来访者说话"}, {"role": "assistant", "text": "我在听"}],
        "labels": json.loads(_answer(risk)),
    }


def split_files(project) -> dict[str, bytes]:
    folder = project.root / "data/student_mental"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jsonl"))}


@pytest.mark.parametrize(
    ("bad_line", "where"),
    [
        ("{broken", "labeled.jsonl:3:2"),
        ('{"id": "x", "source": "s", "turns": []}', "labeled.jsonl:3"),  # no labels
        ('{"id": "x", "source": "s"}', "labeled.jsonl:3"),  # no turns
        (json.dumps({**labeled_row(99), "labels": {"depression_level": 7}}), "labeled.jsonl:3"),
    ],
)
def test_malformed_labeled_rows_stop_prepare_with_nothing_written(project, orch, tmp_path, bad_line, where):
    before = split_files(project)
    rows = [json.dumps(labeled_row(i), ensure_ascii=False) for i in range(2)] + [bad_line]
    (tmp_path / "labeled.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    clean_error(orch("data", "prepare", str(tmp_path / "labeled.jsonl")), where)
    assert split_files(project) == before


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("train=x", "'train=x' is not NAME=FRACTION"),
        ("train=-0.1,test=1.1", "not NAME=FRACTION"),
        ("train=0.9,test=0.3", "sum to 1.2"),
        ("train=0.5,train=0.5", "'train' is given twice"),
        ("train=0.9,holdout=0.1", "declares no split 'holdout'"),
        ("val=0.5,test=0.5", "no train split"),
        ("train=1,test=0", "not NAME=FRACTION"),
        ("train", "not NAME=FRACTION"),
        ("train=0.9,test=0.1", "val.jsonl exist(s) from an earlier split"),  # the stale val would overlap train
    ],
)
def test_bad_splits_are_refused_before_anything_is_written(project, orch, tmp_path, spec, message):
    before = split_files(project)
    (tmp_path / "labeled.jsonl").write_text(
        "".join(json.dumps(labeled_row(i), ensure_ascii=False) + "\n" for i in range(30)), encoding="utf-8"
    )
    clean_error(orch("data", "prepare", str(tmp_path / "labeled.jsonl"), "--split", spec), message)
    assert split_files(project) == before


def test_splits_are_written_as_one_set_in_any_order(project, orch, tmp_path):
    rows = [labeled_row(i, "suicidal" if i % 10 == 0 else "none") for i in range(40)]
    (tmp_path / "labeled.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    result = orch("data", "prepare", str(tmp_path / "labeled.jsonl"), "--split", "test=0.1,val=0.1,train=0.8")
    assert result.exit_code == 0, result.output
    counts = {name: len(text.splitlines()) for name, text in split_files(project).items()}
    assert counts["train.jsonl"] > counts["val.jsonl"] and counts["train.jsonl"] > counts["test.jsonl"]
    assert sum(counts.values()) == len(rows)
    folder = project.root / "data/student_mental"
    assert not list(folder.glob(".*.tmp")), "staging files left behind"
    check = orch("data", "check", *(str(folder / f"{s}.jsonl") for s in ("train", "val", "test")))
    assert check.exit_code == 0, check.output


def test_too_few_rows_for_a_split_is_refused(project, orch, tmp_path):
    before = split_files(project)
    (tmp_path / "labeled.jsonl").write_text(json.dumps(labeled_row(0), ensure_ascii=False) + "\n", encoding="utf-8")
    clean_error(orch("data", "prepare", str(tmp_path / "labeled.jsonl")), "would be empty")
    assert split_files(project) == before


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("default_task: [unclosed\n", "project.yaml:2"),
        ("default_task: a\ndefault_task: b\n", "project.yaml:2"),
        ("- a list\n", "project.yaml"),
    ],
)
def test_a_malformed_project_file_names_its_line(project, orch, text, where):
    (project.templates / "project.yaml").write_text(text, encoding="utf-8")
    clean_error(orch("data", "check", str(project.root / "data/student_mental/test.jsonl")), where)


def test_a_task_file_with_a_repeated_key_names_its_line(project, orch):
    path = project.templates / "tasks/student_mental.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("name:"))
    lines.insert(at + 1, "name: another_task")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    clean_error(
        orch("data", "check", str(project.root / "data/student_mental/test.jsonl")), f"student_mental.yaml:{at + 2}"
    )


def test_a_bom_or_gbk_task_file_still_loads(project, catalog):
    path = project.templates / "tasks/student_mental.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert catalog.task("student_mental").name == "student_mental"
    path.write_bytes(text.encode("gb18030"))
    assert catalog.task("student_mental").instruction


def test_a_gbk_dataset_is_flagged_for_llamafactory(project, orch):
    path = project.root / "data/student_mental/test.jsonl"
    path.write_bytes(path.read_text(encoding="utf-8").encode("gb18030"))
    result = orch("data", "check", str(path))
    assert result.exit_code == 1 and "LLaMA-Factory reads datasets as UTF-8" in result.output


def test_an_unexpected_failure_is_one_line_not_a_traceback(project, monkeypatch):
    """A bug (not bad input) still reaches the user as one line and exit 70; ORCH_DEBUG=1 shows it."""
    from click.testing import CliRunner

    from orchestrator.cli import cli
    from orchestrator.data import pipeline

    def broken(*_args, **_kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(pipeline, "check", broken)
    result = CliRunner().invoke(cli, ["data", "check", str(project.root / "data/student_mental/test.jsonl")])
    assert result.exit_code == 70 and "RuntimeError: simulated bug" in result.output
    assert "ORCH_DEBUG=1" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("ORCH_DEBUG", "1")
    result = CliRunner().invoke(cli, ["data", "check", str(project.root / "data/student_mental/test.jsonl")])
    assert isinstance(result.exception, RuntimeError)


# --- the break pass's cases: labels, types, paths --------------------------------------------------------
def test_decorated_and_inline_labels_keep_each_speaker(orch, tmp_path):
    text = (
        "来访者：老师好。\n心理咨询师：你好。\n来访者（母亲）：我是孩子的妈妈。\n心理咨询师：好的，请说。\n"
        "来访者A：我觉得他太敏感了。\n【来访者】：我不敏感！\n**心理咨询师**：我们慢慢来。\n"
        "来访者：好的。心理咨询师：那我们开始吧。\n"
    )
    result, out = normalized(orch, tmp_path, "case_1.txt", text.encode("utf-8"))
    assert result.exit_code == 0, result.output
    turns = json.loads(out.read_text(encoding="utf-8").splitlines()[0])["turns"]
    roles = [t["role"] for t in turns]
    assert roles == ["user", "assistant", "user", "assistant", "user", "user", "assistant", "user", "assistant"]
    assert turns[-2]["text"] == "好的。" and turns[-1]["text"] == "那我们开始吧。"


def test_an_unknown_label_is_reported(orch, tmp_path):
    text = DIALOGUE + "\n旁白：两人沉默了一会儿。\n"
    result, out = normalized(orch, tmp_path, "case_1.txt", text.encode("utf-8"))
    assert result.exit_code == 0 and "speaker label orch does not know" in result.output
    assert "case_1.txt:6: 旁白" in result.output


def test_traditional_labels_are_read(orch, tmp_path):
    text = "來訪者：我最近壓力很大。\n\n心理諮詢師：我明白你的感受。"
    result, out = normalized(orch, tmp_path, "case_1.txt", text.encode("big5"), "--encoding", "big5")
    assert result.exit_code == 0, result.output
    assert [t["role"] for t in json.loads(out.read_text(encoding="utf-8"))["turns"]] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("name", "rows", "message"),
    [
        ("psyqa.json", [{"question": "怎么办", "answers": "not a list"}], "`answers` must be a list"),
        ("psyqa.json", [{"question": "怎么办", "answers": [1, 2]}], "`answers` must be a list"),
        ("smile.json", [{"role": "client", "content": ["我很难过"]}], "holds a list, not a string"),
    ],
)
def test_corpus_values_of_the_wrong_type_are_errors_not_text(orch, tmp_path, name, rows, message):
    result, _ = normalized(orch, tmp_path, name, json.dumps(rows, ensure_ascii=False).encode())
    clean_error(result, name, message)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "no dialogues"),
        ("来访者：你好\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
        (("[" * 5000 + "]" * 5000).encode(), "nested too deeply"),
    ],
)
def test_empty_utf16_and_nested_inputs_are_clear(orch, tmp_path, raw, message):
    name = "x.json" if raw.startswith(b"[") else "case_1.txt"
    result, _ = normalized(orch, tmp_path, name, raw)
    clean_error(result, message)


@pytest.mark.parametrize("encoding", ["rot13", "base64", "no-such"])
def test_a_non_text_encoding_is_refused(orch, tmp_path, encoding):
    result, _ = normalized(orch, tmp_path, "case_1.txt", DIALOGUE.encode(), "--encoding", encoding)
    clean_error(result, "not a text encoding")


def test_output_paths_that_cannot_be_written_are_clear(orch, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/case_1.txt").write_text(DIALOGUE, encoding="utf-8")
    (tmp_path / "folder").mkdir()
    clean_error(orch("data", "normalize", str(tmp_path / "raw"), "-o", str(tmp_path / "folder")), "is a folder")
    clean_error(
        orch("data", "normalize", str(tmp_path / "raw"), "-o", str(tmp_path / "raw/u.jsonl")), "inside the corpus"
    )


def test_same_named_files_in_two_folders_do_not_share_an_id(orch, tmp_path):
    texts = {"a": DIALOGUE, "b": "来访者：我和室友相处不好，每天都很烦。\n\n心理咨询师：能说说发生了什么吗？"}
    for folder, text in texts.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "case_0.txt").write_text(text, encoding="utf-8")
    result = orch("data", "normalize", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "u.jsonl"))
    clean_error(result, "two dialogues get the id 'cpsycound/case_0'")


def test_two_splits_on_one_file_are_refused(project, orch):
    path = project.templates / "tasks/student_mental.yaml"
    text = path.read_text(encoding="utf-8").replace("data/student_mental/test.jsonl", "data/student_mental/train.jsonl")
    path.write_text(text, encoding="utf-8")
    clean_error(orch("data", "check", str(project.root / "data/student_mental/train.jsonl")), "one split")


@pytest.mark.parametrize("bad_id", [None, 7, ["x"], ""])
def test_a_labeled_row_without_a_text_id_is_refused(project, orch, tmp_path, bad_id):
    rows = [labeled_row(0), {**labeled_row(1), "id": bad_id}]
    (tmp_path / "labeled.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    clean_error(orch("data", "prepare", str(tmp_path / "labeled.jsonl")), "labeled.jsonl:2", "`id`")


def test_a_labeled_row_without_a_client_turn_is_refused(project, orch, tmp_path):
    rows = [labeled_row(0), {**labeled_row(1), "turns": []}]
    (tmp_path / "labeled.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    clean_error(orch("data", "prepare", str(tmp_path / "labeled.jsonl")), "labeled.jsonl:2", "no client turn")


def test_select_drops_a_dialogue_without_a_counselor_turn(orch, tmp_path):
    rows = [{"id": "a", "source": "x", "turns": [{"role": "user", "text": "我学习压力很大，考试总是失眠"}]}]
    (tmp_path / "u.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = orch("data", "select", str(tmp_path / "u.jsonl"), "-o", str(tmp_path / "s.jsonl"))
    assert result.exit_code == 0 and "no_client_or_counselor_turn" in result.output


@pytest.mark.parametrize(
    ("data", "message"), [("5", "must be a mapping"), ("\n  select:\n    max_turns: many", "max_turns")]
)
def test_bad_select_settings_in_the_task_file_are_named(project, orch, tmp_path, data, message):
    import yaml

    path = project.templates / "tasks/student_mental.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["data"] = yaml.safe_load(f"x: {data}")["x"]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    (tmp_path / "u.jsonl").write_text("")
    clean_error(orch("data", "select", str(tmp_path / "u.jsonl"), "-o", str(tmp_path / "s.jsonl")), message)


def test_check_catches_overlap_whitespace_and_width_aside(project, orch, tmp_path):
    rows = (REPO / "data/student_mental/test.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    copy = json.loads(rows[0])
    copy["id"] = "another-id"
    copy["input"] = copy["input"].replace("，", "， ").replace("1", "１")
    (tmp_path / "a.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps(copy, ensure_ascii=False) + "\n", encoding="utf-8")
    result = orch("data", "check", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    assert result.exit_code == 1 and "1 rows share" in result.output


def test_deeply_nested_predictions_are_scored_as_invalid_not_a_crash(project, orch, tmp_path):
    rows = [{"predict": "[" * 5000, "label": _answer()}, {"predict": _answer(), "label": _answer()}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = orch("eval", "--predictions", str(tmp_path / "p.jsonl"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("text", ["a: &x\n  b: *x\n", "x: &a [*a]\n"])
def test_a_self_referring_yaml_anchor_is_a_finding_not_a_crash(project, orch, tmp_path, text):
    (tmp_path / "loop.yaml").write_text(text, encoding="utf-8")
    result = orch("validate", "--config", str(tmp_path / "loop.yaml"))
    assert result.exit_code == 1 and "anchor refers to itself" in result.output
    (tmp_path / "project.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="anchor refers to itself"):
        inputs.read_yaml(tmp_path / "project.yaml")
