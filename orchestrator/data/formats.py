"""Readers of raw counseling corpora into the unified dialogue format.

Supported: CPsyCounD `.txt` (`来访者：`/`心理咨询师：` turns), CPsyCounE JSON
lists of strings (`求助者：`/`支持者：`), PsyQA JSON (question + description
as the user turn, each answer as an assistant turn), SMILE-style JSON
(`role: client|counselor`), and LLaMA-Factory alpaca and sharegpt. The format
is detected per file or given explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.data.dialogue import Dialogue, Turn, split_role
from orchestrator.errors import OrchError

FORMATS = ("cpsycound", "cpsycoune", "psyqa", "smile", "alpaca", "sharegpt")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
SMILE_ROLES = {"client": "user", "counselor": "assistant"}


def _load_json(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise OrchError(f"not valid JSON: {exc.msg}", where=f"{path}:{number}") from None
        return rows
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OrchError(f"not valid JSON: {exc.msg}", where=f"{path}:{exc.lineno}") from None


def detect(path: Path) -> str:
    """The format of one raw file, from its extension and content."""
    if path.suffix == ".txt":
        return "cpsycound"
    data = _load_json(path)
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


def read(path: Path, fmt: str | None = None) -> Iterator[Dialogue]:
    """Dialogues of one raw file."""
    fmt = fmt or detect(path)
    if fmt not in FORMATS:
        raise OrchError(f"unknown format {fmt!r}", fix=f"one of {', '.join(FORMATS)}")
    stem = f"{fmt}/{path.stem}" if fmt == "cpsycound" else f"{fmt}/{path.parent.name}/{path.stem}"
    if fmt == "cpsycound":
        yield _text_turns(stem, "CPsyCounD", path.read_text(encoding="utf-8").split("\n\n"), None)
        return
    data = _load_json(path)
    if fmt == "cpsycoune":
        yield _text_turns(stem, "CPsyCounE", data, path.parent.name)
    elif fmt == "smile":
        yield Dialogue(stem, "SMILE", tuple(Turn(SMILE_ROLES.get(t["role"], "user"), str(t["content"])) for t in data))
    elif fmt == "psyqa":
        for item in data:
            user = "\n".join(x for x in (item.get("question", ""), item.get("description", "")) if x)
            answers = tuple(Turn("assistant", a.get("answer_text", "")) for a in item.get("answers", []))
            topic = (item.get("keywords") or "").split(",")[0] or None
            yield Dialogue(f"psyqa/{item.get('questionID', len(user))}", "PsyQA", (Turn("user", user), *answers), topic)
    elif fmt == "sharegpt":
        for i, item in enumerate(data):
            turns = tuple(
                Turn(
                    SHAREGPT_ROLES.get(t.get("from", t.get("role")), "user"), str(t.get("value", t.get("content", "")))
                )
                for t in item["conversations"]
            )
            yield Dialogue(f"{stem}/{i}", "sharegpt", turns)
    elif fmt == "alpaca":
        for i, item in enumerate(data):
            user = "\n".join(x for x in (item.get("instruction", ""), item.get("input", "")) if x)
            yield Dialogue(
                f"{stem}/{i}", "alpaca", (Turn("user", user), Turn("assistant", str(item.get("output", ""))))
            )


def _text_turns(dialogue_id: str, source: str, blocks: list[str], topic: str | None) -> Dialogue:
    turns: list[Turn] = []
    for block in blocks:
        block = " ".join(str(block).split())
        turn = split_role(block)
        if turn is not None:
            turns.append(turn)
        elif turns and block:  # a continuation paragraph of the previous turn
            turns[-1] = Turn(turns[-1].role, f"{turns[-1].text} {block}")
    return Dialogue(dialogue_id, source, tuple(turns), topic)
