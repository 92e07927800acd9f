"""Reading and checking dataset files row by row (file:line for every problem): SFT answers, DPO pairs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import inputs
from orchestrator.inputs import InputError
from orchestrator.task import Task

# LLaMA-Factory's alpaca defaults: dataset_info.json `columns` map these roles to row keys.
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}
# Preference (ranking) rows: LLaMA-Factory has no default column for the two answers; dataset_info declares them.
RANKING_ROLES = ("prompt", "query", "chosen", "rejected")
TEXT_ROLES = ("prompt", "query")  # joined into the user turn: text (or null)
# How dialogue turns are written into a model input, by role (the data pipeline writes them so).
ROLE_LABELS = {"user": "来访者", "assistant": "咨询师"}
LF_ENCODINGS = ("utf-8", "utf-8-sig")  # what LLaMA-Factory's dataset loader can read


@dataclass(frozen=True)
class RowProblem:
    """A bad row: where (file and line), what, and how to fix it."""

    path: Path
    line: int | None
    message: str
    fix: str = ""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)


@dataclass(frozen=True)
class Row:
    """One dataset row with its 1-based line (jsonl) or item number (json list)."""

    line: int
    data: Any


def read_rows(path: Path) -> Iterator[Row | RowProblem]:
    """Rows of a `.jsonl` file (one per line) or a `.json` list; unparsable rows as problems.

    LLaMA-Factory reads dataset files as UTF-8: a file orch could only decode another way is a problem too.
    """
    problems: list[RowProblem] = []

    def bad(exc: InputError) -> None:
        message = f"{exc.message} (column {exc.column})" if exc.column else exc.message
        problems.append(RowProblem(path, exc.line, message, exc.fix or ""))

    try:
        decoded = inputs.read_text(path)
        if decoded.encoding not in LF_ENCODINGS:
            problems.append(
                RowProblem(
                    path,
                    None,
                    f"the file is {decoded.encoding}; LLaMA-Factory reads datasets as UTF-8",
                    inputs.CONVERT_FIX,
                )
            )
        json_list = path.suffix == ".json"
        lines = inputs.records_of(decoded) if json_list else list(inputs.iter_jsonl(decoded, on_error=bad))
    except InputError as exc:
        yield RowProblem(path, exc.line, exc.message, exc.fix or "")
        return
    items: list[Row | RowProblem] = [Row(line.number, line.data) for line in lines]
    yield from sorted([*items, *problems], key=lambda item: item.line or 0)


def parse_answer(text: Any) -> tuple[Any, str | None]:
    """(parsed answer, error) for a response string that must be exactly one JSON value."""
    if not isinstance(text, str):
        return None, f"response is {type(text).__name__}, not a JSON string"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"response is not valid JSON ({exc.msg}): {text[:80]!r}"


def lf_columns(columns: dict[str, Any] | None) -> dict[str, str | None]:
    """Row keys by role as LLaMA-Factory reads them: the alpaca defaults without `columns`; with it, only the
    roles it names (its `DatasetAttr.set_attr`: an undeclared role is None, never the default)."""
    if columns is None:
        return dict(ALPACA_COLUMNS)
    roles = {*ALPACA_COLUMNS, *RANKING_ROLES, *columns}
    return {role: (str(columns[role]) if columns.get(role) is not None else None) for role in roles}


def check_rows(
    path: Path, columns: dict[str, str] | None = None, task: Task | None = None, ranking: bool = False
) -> tuple[list[Row], list[RowProblem]]:
    """Rows of an alpaca dataset and every problem: missing columns, bad answers (`ranking`: both answers of
    a preference pair, which must differ). The answer columns are required in every row; a declared prompt
    column only somewhere in the file (LLaMA-Factory reads a row without it as null, a file without it
    stops with KeyError)."""
    cols = lf_columns(columns)
    answer_roles = ("chosen", "rejected") if ranking else ("response",)
    undeclared = [role for role in answer_roles if cols.get(role) is None]
    if undeclared:
        fix = "declare them: " + ", ".join(f'"{role}": "<row key>"' for role in undeclared)
        return [], [RowProblem(path, None, f"dataset_info.json declares no {'/'.join(undeclared)} column", fix)]
    answers = [str(cols[role]) for role in answer_roles]
    prompts = [str(cols[role]) for role in TEXT_ROLES if cols.get(role) is not None]
    rows: list[Row] = []
    problems: list[RowProblem] = []
    seen: set[str] = set()
    for item in read_rows(path):
        if isinstance(item, RowProblem):
            problems.append(item)
            continue
        if not isinstance(item.data, dict):
            problems.append(RowProblem(path, item.line, "a row must be a JSON object"))
            continue
        seen.update(item.data)
        missing = [key for key in answers if key not in item.data]
        if missing:
            problems.append(
                RowProblem(
                    path,
                    item.line,
                    f"missing column(s) {missing}; row keys are {sorted(item.data)}",
                    "make the row keys match `columns` in dataset_info.json",
                )
            )
            continue
        unusable = _text_problems(item.data, prompts)
        if unusable:
            problems.extend(RowProblem(path, item.line, message, fix) for message, fix in unusable)
            continue
        rows.append(item)
        if ranking and _same_answer(item.data[answers[0]], item.data[answers[1]]):
            problems.append(
                RowProblem(path, item.line, "rejected equals chosen: the pair teaches nothing", "rebuild or drop it")
            )
        for key in answers if task is not None else ():
            label = f"{key}: " if ranking else ""
            problems.extend(
                RowProblem(path, item.line, label + message, fix)
                for message, fix in answer_problems(task, item.data[key])
            )
    absent = [key for key in prompts if rows and key not in seen]
    if absent:
        problems.append(
            RowProblem(
                path,
                None,
                f"no row has the column(s) {absent} that dataset_info.json declares "
                "(LLaMA-Factory stops with KeyError)",
                "add the column to the rows, or drop it from `columns`",
            )
        )
    return rows, problems


def _text_problems(row: dict[str, Any], prompts: list[str]) -> list[tuple[str, str]]:
    """The prompt columns are text where given (LLaMA-Factory skips a null or empty one), and the row is valid
    Unicode throughout (the datasets library refuses a whole file over one lone surrogate)."""
    out = []
    for key in prompts:
        value = row.get(key)
        if value and not isinstance(value, str):
            out.append((f"column {key!r} is {type(value).__name__}, not text", f"write {key} as a JSON string"))
    if not _encodable(json.dumps(row, ensure_ascii=False)):
        out.append(("the row holds a lone surrogate (not valid Unicode)", "re-export the file as UTF-8"))
    return out


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _same_answer(chosen: Any, rejected: Any) -> bool:
    """The same answer, however it is spaced or its keys ordered (a different JSON type is a different answer)."""
    if chosen == rejected:
        return True
    parsed = [parse_answer(text)[0] for text in (chosen, rejected)]
    if any(p is None for p in parsed):
        return False
    return json.dumps(_plain(parsed[0]), sort_keys=True) == json.dumps(_plain(parsed[1]), sort_keys=True)


def _plain(value: Any) -> Any:
    """A parsed answer with whole floats as integers (1.0 is the label 1; true stays a boolean)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def answer_problems(task: Task, response: Any) -> list[tuple[str, str]]:
    """(message, fix) for each way a training answer breaks the task's format or schema."""
    answer, error = parse_answer(response)
    if error:
        return [(error, f"the answer must be JSON like {_example(task)}")]
    return [(f"answer does not match the {task.name} schema: {e}", "") for e in task.answer_errors(answer)]


def _example(task: Task) -> str:
    return task.canonical_answer({k: task.field_values(k)[0] for k in task.field_names})


def user_content(row: dict[str, Any], columns: dict[str, str] | None = None) -> str:
    """The user turn LLaMA-Factory builds from an alpaca row: prompt and query joined by a newline."""
    cols = lf_columns(columns)
    parts = [row.get(key) or "" if key else "" for key in (cols.get("prompt"), cols.get("query"))]
    return "\n".join(p for p in parts if p)


def client_text(dialogue: str) -> str:
    """The client's words from a dialogue as written into a model input (one turn a line, labels removed)."""
    prefix = ROLE_LABELS["user"] + "："
    return "\n".join(line[len(prefix) :] for line in dialogue.splitlines() if line.startswith(prefix))
