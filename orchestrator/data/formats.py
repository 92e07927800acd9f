"""Readers of raw counseling corpora into the unified dialogue format.

Supported: CPsyCounD `.txt` (`来访者：`/`心理咨询师：` turns), CPsyCounE JSON
lists of strings (`求助者：`/`支持者：`), PsyQA JSON (question + description
as the user turn, each answer as an assistant turn), SMILE-style JSON
(`role: client|counselor`), and LLaMA-Factory alpaca and sharegpt. The format
is detected per file or given explicitly. Every file is read through
`orchestrator.inputs` (BOM, encoding, newlines); text that cannot be given a
speaker is not dropped silently: `ReadStats` records where it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import inputs
from orchestrator.data.dialogue import INLINE_LABEL, LABEL_LIKE, Dialogue, Turn, split_role
from orchestrator.errors import OrchError
from orchestrator.inputs import InputError

FORMATS = ("cpsycound", "cpsycoune", "psyqa", "smile", "alpaca", "sharegpt")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
SMILE_ROLES = {"client": "user", "counselor": "assistant"}
SYSTEM_ROLES = ("system",)  # instructions, not dialogue: left out and counted


@dataclass
class ReadStats:
    """What reading raw files met: encodings used, text left out (with where), turns skipped."""

    encodings: Counter = field(default_factory=Counter)
    unattributed: list[str] = field(default_factory=list)  # "file:line: text" with no speaker label
    unknown_labels: list[str] = field(default_factory=list)  # "file:line: 旁白：" kept in the turn before it
    skipped_turns: Counter = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        """The stats.json part: encodings and everything left out."""
        return {
            "encodings": dict(self.encodings),
            "unattributed_text": {"count": len(self.unattributed), "where": self.unattributed[:20]},
            "unknown_labels": {"count": len(self.unknown_labels), "where": self.unknown_labels[:20]},
            "skipped_turns": dict(self.skipped_turns),
        }


def _load(path: Path, encoding: str | None, stats: ReadStats | None) -> Any:
    decoded = inputs.read_text(path, encoding)
    if stats is not None:
        stats.encodings[decoded.encoding] += 1
    if path.suffix == ".jsonl":
        return [line.data for line in inputs.iter_jsonl(decoded)]
    if path.suffix == ".txt":
        return decoded
    return inputs.parse_json(decoded.text, path)


def detect(path: Path, encoding: str | None = None) -> str:
    """The format of one raw file, from its extension and content."""
    if path.suffix == ".txt":
        return "cpsycound"
    return _detect(path, _load(path, encoding, None))


def _detect(path: Path, data: Any) -> str:
    first = data[0] if isinstance(data, list) and data else data
    if isinstance(first, str):
        return "cpsycoune"
    if isinstance(first, dict):
        if "conversations" in first:
            return "sharegpt"
        if "answers" in first and "question" in first:
            return "psyqa"
        if "role" in first and "content" in first:
            return "smile"
        if "instruction" in first and "output" in first:
            return "alpaca"
    raise OrchError(
        "cannot tell the format of this file", where=str(path), fix=f"pass --format, one of {', '.join(FORMATS)}"
    )


def read(
    path: Path, fmt: str | None = None, *, encoding: str | None = None, stats: ReadStats | None = None
) -> Iterator[Dialogue]:
    """Dialogues of one raw file; `stats` collects encodings and text that had no speaker."""
    if fmt is not None and fmt not in FORMATS:
        raise OrchError(f"unknown format {fmt!r}", fix=f"one of {', '.join(FORMATS)}")
    stats = stats if stats is not None else ReadStats()
    data = _load(path, encoding, stats)
    fmt = fmt or ("cpsycound" if path.suffix == ".txt" else _detect(path, data))
    stem = f"{fmt}/{path.stem}" if fmt == "cpsycound" else f"{fmt}/{path.parent.name}/{path.stem}"
    for dialogue in _dialogues(path, fmt, data, stem, stats):
        yield Dialogue(dialogue.id, dialogue.source, dialogue.turns, dialogue.topic, {"where": str(path)})


def _dialogues(path: Path, fmt: str, data: Any, stem: str, stats: ReadStats) -> Iterator[Dialogue]:
    if fmt == "cpsycound":
        if not isinstance(data, inputs.Decoded):
            raise InputError(path, "the cpsycound format is a .txt file of `来访者：`/`心理咨询师：` lines")
        blocks = [(f"{path}:{number}", line) for number, line in data.lines()]
        yield _text_turns(stem, "CPsyCounD", blocks, None, stats)
        return
    if fmt == "cpsycoune":
        blocks = [(f"{path} item {i}", text) for i, text in enumerate(_list_of(path, data, str), start=1)]
        yield _text_turns(stem, "CPsyCounE", blocks, path.parent.name, stats)
    elif fmt == "smile":
        turns = [
            _turn(path, i, t, "role", "content", SMILE_ROLES, stats)
            for i, t in enumerate(_list_of(path, data, dict), 1)
        ]
        yield Dialogue(stem, "SMILE", tuple(t for t in turns if t is not None))
    elif fmt == "psyqa":
        for i, item in enumerate(_list_of(path, data, dict), start=1):
            user = "\n".join(_text(path, i, item.get(k)) for k in ("question", "description") if item.get(k))
            answers = item.get("answers") or []
            if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
                raise InputError(path, f"item {i}: `answers` must be a list of objects with `answer_text`")
            answers = tuple(Turn("assistant", _text(path, i, a.get("answer_text"))) for a in answers)
            topic = _text(path, i, item.get("keywords")).split(",")[0] or None
            yield Dialogue(f"psyqa/{item.get('questionID', len(user))}", "PsyQA", (Turn("user", user), *answers), topic)
    elif fmt == "sharegpt":
        for i, item in enumerate(_list_of(path, data, dict)):
            if not isinstance(item.get("conversations"), list):
                raise InputError(path, f"item {i + 1} has no `conversations` list", fix="sharegpt rows hold one")
            turns = [
                _turn(path, i + 1, t, ("from", "role"), ("value", "content"), SHAREGPT_ROLES, stats)
                for t in item["conversations"]
            ]
            yield Dialogue(f"{stem}/{i}", "sharegpt", tuple(t for t in turns if t is not None))
    elif fmt == "alpaca":
        for i, item in enumerate(_list_of(path, data, dict)):
            user = "\n".join(_text(path, i + 1, item.get(k)) for k in ("instruction", "input") if item.get(k))
            answer = _text(path, i + 1, item.get("output"))
            yield Dialogue(f"{stem}/{i}", "alpaca", (Turn("user", user), Turn("assistant", answer)))


def _list_of(path: Path, data: Any, kind: type) -> list:
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items, start=1):
        if not isinstance(item, kind):
            raise InputError(
                path,
                f"item {i} is a {type(item).__name__}, not a {kind.__name__} like the others",
                fix="every item of one file has the same shape",
            )
    return items


def _turn(
    path: Path,
    item: int,
    turn: Any,
    role_keys: str | tuple[str, ...],
    text_keys: str | tuple[str, ...],
    roles: dict[str, str],
    stats: ReadStats,
) -> Turn | None:
    """One role-tagged turn; a system turn is skipped (counted), an unknown role is an error."""
    role_keys = (role_keys,) if isinstance(role_keys, str) else role_keys
    text_keys = (text_keys,) if isinstance(text_keys, str) else text_keys
    if not isinstance(turn, dict):
        raise InputError(path, f"item {item}: a turn is a {type(turn).__name__}, not an object")
    role = next((turn[k] for k in role_keys if k in turn), None)
    text = next((turn[k] for k in text_keys if k in turn), "")
    if role in SYSTEM_ROLES:
        stats.skipped_turns[f"{role} turn"] += 1
        return None
    if role not in roles:
        raise InputError(
            path,
            f"item {item}: speaker {role!r} is not one orch knows",
            fix=f"speakers: {', '.join(sorted(roles))} (system turns are left out)",
        )
    return Turn(roles[role], _text(path, item, text))


def _text(path: Path, item: int, value: Any) -> str:
    """A text field: a string (None: empty); a number, list or object is an error, not its repr."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(
            path,
            f"item {item}: a text field holds a {type(value).__name__}, not a string",
            fix="write the text as a JSON string",
        )
    return value


def _text_turns(
    dialogue_id: str, source: str, blocks: list[tuple[str, Any]], topic: str | None, stats: ReadStats
) -> Dialogue:
    """Turns from labelled text blocks; an unlabelled block continues the turn before it."""
    turns: list[Turn] = []
    for where, text in blocks:
        for block in INLINE_LABEL.split(" ".join(str(text).split())):
            if not block:
                continue
            turn = split_role(block)
            if turn is not None:
                turns.append(turn)
                continue
            if LABEL_LIKE.match(block):
                stats.unknown_labels.append(f"{where}: {block[:20]}")
            if turns:  # a continuation paragraph of the previous turn
                turns[-1] = Turn(turns[-1].role, f"{turns[-1].text} {block}")
            else:
                stats.unattributed.append(f"{where}: {block[:40]}")
    return Dialogue(dialogue_id, source, tuple(turns), topic)
