"""Find and repair the JSON object in a model's free-form output.

Field failures this handles: code fences and prose around the object, single
quotes, trailing commas, unquoted keys, spaced or miscased keys
(`" Anxiety_level"`), keys with a range suffix (`depression_level(0-3)`),
and Chinese keys and values (`风险_flag:自杀`), mapped through the task
file's `aliases` where the mapping is unambiguous.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.task import Task

FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)
PAIR = re.compile(
    r"""["']?\s*([\w\u4e00-\u9fff][\w\u4e00-\u9fff\s\-]*?)\s*(?:\([^)]*\)|（[^）]*）)?\s*["']?\s*[:：=]\s*["']?([\w\u4e00-\u9fff\-\.]+)"""
)


@dataclass(frozen=True)
class Extraction:
    """What came out of one raw output."""

    labels: dict[str, Any] | None
    strict: bool  # the output as it is: one JSON object that satisfies the schema
    repaired: bool  # an object was recovered (as it is, or after repair)
    valid: bool  # the recovered labels satisfy the task's schema
    errors: tuple[str, ...] = field(default_factory=tuple)


def extract(task: Task, raw: str) -> Extraction:
    """Parse `raw` strictly, else repair it; then map keys and values onto the task's schema."""
    try:
        return _extract(task, raw)
    except RecursionError:  # a degenerate output of thousands of `[`: no answer, not a crash
        return Extraction(None, False, False, False, ("nested too deeply to read",))


def _extract(task: Task, raw: str) -> Extraction:
    strict_obj = _strict(raw)
    if strict_obj is not None:
        errors = task.answer_errors(strict_obj)
        if not errors:
            return Extraction(strict_obj, True, True, True)
    obj = strict_obj if strict_obj is not None else _repair(raw)
    if obj is None:
        obj = _pairs(raw)
    if not obj:
        return Extraction(None, False, False, False, ("no JSON object found",))
    labels = normalize(task, obj)
    errors = tuple(task.answer_errors(labels))
    return Extraction(labels, False, True, not errors, errors)


def _strict(raw: str) -> dict | None:
    try:
        value = json.loads(raw.strip())
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _candidates(raw: str) -> list[str]:
    texts = [m.group(1) for m in FENCE.finditer(raw)] + [raw]
    out = []
    for text in texts:
        start = text.find("{")
        while start != -1:
            end = _matching_brace(text, start)
            out.append(text[start : end + 1] if end != -1 else text[start:] + "}")
            start = text.find("{", start + 1) if end == -1 else text.find("{", end + 1)
    return out


def _matching_brace(text: str, start: int) -> int:
    depth, quote = 0, None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _repair(raw: str) -> dict | None:
    for text in _candidates(raw):
        fixed = text.replace("\u201c", '"').replace("\u201d", '"').replace("：", ":").replace("，", ",")
        fixed = re.sub(r"'([^']*)'", r'"\1"', fixed)  # single -> double quotes
        fixed = re.sub(r",\s*([}\]])", r"\1", fixed)  # trailing commas
        fixed = re.sub(r'([{,]\s*)([^"\s{},:][^:,{}"]*?)\s*:', r'\1"\2":', fixed)  # unquoted keys
        try:
            value = json.loads(fixed)
        except json.JSONDecodeError:
            pairs = _pairs(text)
            if pairs:
                return pairs
            continue
        if isinstance(value, dict):
            return value
    return None


def _pairs(raw: str) -> dict | None:
    """Last resort: `key: value` pairs anywhere in the text."""
    found = {m.group(1).strip(): m.group(2) for m in PAIR.finditer(raw)}
    return found or None


def canonical_key(task: Task, key: Any) -> str | None:
    """The schema key meant by `key`, or None when it is not clear."""
    text = re.sub(r"\(.*?\)|（.*?）", "", str(key)).strip().strip("\"'").strip()
    norm = re.sub(r"[\s\-]+", "_", text).lower()
    names = task.field_names
    if norm in names:
        return norm
    aliases = {str(k).lower(): v for k, v in (task.raw.get("aliases", {}).get("keys") or {}).items()}
    if norm in aliases:
        return aliases[norm]
    for alias, target in aliases.items():  # 风险_flag: the Chinese part decides
        if alias and alias in norm:
            return target
    close = difflib.get_close_matches(norm, names, n=1, cutoff=0.8)
    return close[0] if close else None


def canonical_value(task: Task, key: str, value: Any) -> Any:
    """The schema value meant by `value` (ints from numeric text, enum members from aliases)."""
    spec = task.schema["properties"][key]
    if spec.get("type") == "integer":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and float(value).is_integer():
            return int(value)
        match = re.search(r"-?\d+", str(value))
        return int(match.group()) if match else value
    if "enum" in spec:
        text = str(value).strip().lower() if value is not None else "none"
        if text in spec["enum"]:
            return text
        aliases = (task.raw.get("aliases", {}).get("values") or {}).get(key) or {}
        for alias, target in aliases.items():
            if str(alias).lower() == text:
                return target
        return value
    return value


def normalize(task: Task, obj: dict[str, Any]) -> dict[str, Any]:
    """Map an object's keys and values onto the schema; unknown keys are kept so validation names them."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = canonical_key(task, key)
        if name is None:
            out[str(key)] = value
        elif name not in out:
            out[name] = canonical_value(task, name, value)
    return out
