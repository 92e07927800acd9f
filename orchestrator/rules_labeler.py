"""The rules labeler: a transparent lexicon baseline, driven by the task file.

A task file declares `baselines: rules:` (inline, or a path to a YAML file
relative to the task file) with one rule per schema field:

    baselines:
      rules:
        fields:
          risk_flag:                # categorical: first class with a phrase in the text wins
            match: {default: none, classes: {suicidal: [自杀, 想死], violence: [报复]}}
          depression_level:         # ordinal: distinct cues present, mapped by thresholds
            count: {cues: [抑郁, 绝望, 无助], levels: [1, 3, 5]}
          student_distress_score:   # ordinal: other fields added up, clamped to the range
            sum: {of: [depression_level], add: {risk_flag: {suicidal: 3}}, add_if_any_positive: 1}

`match` tries classes in file order, else gives `default`. `count` takes the
number of distinct cues contained in the text; the level is how many of the
ascending `levels` thresholds that number reaches, plus the field's minimum.
`sum` adds the `of` fields, the `add` amount for each other field's value, and
`add_if_any_positive` when any `of` field is above 0; it is clamped to the
field's range and may refer only to `match` and `count` fields.

This is a baseline row in the comparison table, not clinical ground truth:
phrases are plain substrings, so it does not understand negation or who a
phrase is about ("他自杀以求我原谅" is flagged). Callers give it the client's
turns only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import inputs
from orchestrator.errors import OrchError
from orchestrator.task import Task

RULE_KINDS = ("match", "count", "sum")
FIX_SEE = "see the `baselines: rules:` section of templates/tasks/student_mental.yaml"


@dataclass(frozen=True)
class _Where:
    """Where a spec lives (the file) and the key path inside it, for error messages."""

    file: Path
    key: str

    def child(self, key: Any) -> _Where:
        return _Where(self.file, f"{self.key}.{key}" if self.key else str(key))

    def error(self, message: str, fix: str | None = FIX_SEE) -> OrchError:
        return OrchError(f"{self.key}: {message}" if self.key else message, where=str(self.file), fix=fix)


@dataclass(frozen=True)
class MatchRule:
    """The first class (in file order) with any phrase in the text, else `default`."""

    default: Any
    classes: tuple[tuple[Any, tuple[str, ...]], ...]

    def apply(self, text: str) -> Any:
        return next((value for value, phrases in self.classes if any(p in text for p in phrases)), self.default)


@dataclass(frozen=True)
class CountRule:
    """`minimum` plus how many `levels` thresholds the number of distinct cues in the text reaches."""

    cues: tuple[str, ...]
    levels: tuple[int, ...]
    minimum: int

    def apply(self, text: str) -> int:
        hits = sum(cue in text for cue in self.cues)
        return self.minimum + sum(hits >= threshold for threshold in self.levels)


@dataclass(frozen=True)
class SumRule:
    """The `of` fields plus per-value additions plus a bonus when any `of` field is above 0, clamped."""

    of: tuple[str, ...]
    add: tuple[tuple[str, tuple[tuple[Any, int], ...]], ...]
    bonus: int
    minimum: int
    maximum: int

    def apply(self, labels: dict[str, Any]) -> int:
        total = sum(labels[name] for name in self.of)
        total += sum(dict(amounts).get(labels[name], 0) for name, amounts in self.add)
        if any(labels[name] > 0 for name in self.of):
            total += self.bonus
        return max(self.minimum, min(self.maximum, total))


Rule = MatchRule | CountRule | SumRule


class RulesLabeler:
    """Labels for every field of a task from a text, by the task file's rules."""

    def __init__(self, task: Task, rules: dict[str, Rule]):
        self.task = task
        self.rules = rules

    def label(self, client_text: str) -> dict[str, object]:
        """Every field's label for `client_text`, in schema order."""
        labels: dict[str, Any] = {
            name: rule.apply(client_text) for name, rule in self.rules.items() if not isinstance(rule, SumRule)
        }
        for name, rule in self.rules.items():
            if isinstance(rule, SumRule):
                labels[name] = rule.apply(labels)
        return {name: labels[name] for name in self.task.field_names}


def has_rules(task: Task) -> bool:
    """Whether the task file declares `baselines: rules:`."""
    baselines = task.raw.get("baselines")
    return isinstance(baselines, dict) and baselines.get("rules") is not None


def load_rules(task: Task) -> RulesLabeler:
    """The task's rules labeler; every problem in the spec is an OrchError naming the file and key."""
    baselines = task.raw.get("baselines")
    if baselines is not None and not isinstance(baselines, dict):
        raise _Where(task.path, "baselines").error("must be a mapping (e.g. `rules:`)")
    if not has_rules(task):
        raise OrchError(
            f"task {task.name} names no rules lexicons",
            where=str(task.path),
            fix="add `baselines: rules:` to the task file, as templates/tasks/student_mental.yaml does",
        )
    spec, where = _rules_spec(task, baselines["rules"])
    fields = _fields_spec(task, spec, where)
    return RulesLabeler(task, _parse_rules(task, fields, where.child("fields")))


def _rules_spec(task: Task, rules: Any) -> tuple[Any, _Where]:
    """The rules mapping, read from its own file when the task gives a path."""
    where = _Where(task.path, "baselines.rules")
    if not isinstance(rules, str):
        return rules, where
    path = task.path.parent / rules
    if not path.is_file():
        raise where.error(f"rules file {path} not found", fix="give a YAML file relative to the task file")
    return inputs.read_yaml(path), _Where(path, "")


def _fields_spec(task: Task, spec: Any, where: _Where) -> dict[Any, Any]:
    if not isinstance(spec, dict):
        raise where.error("must be a mapping with `fields:` (one rule per schema field)")
    extra = [key for key in spec if key != "fields"]
    if extra:
        raise where.child(extra[0]).error("unknown key; the per-field rules go under `fields:`")
    if "fields" not in spec:
        raise where.error("missing key `fields` (one rule per schema field)")
    fields, where = spec["fields"], where.child("fields")
    if not isinstance(fields, dict):
        raise where.error("must map each schema field to one rule")
    for name in fields:
        if name not in task.fields:
            raise where.child(name).error(f"{name!r} is not a field of task {task.name}", fix=_fields_fix(task))
    missing = [name for name in task.field_names if name not in fields]
    if missing:
        raise where.error(f"no rule for field(s) {missing}", fix=_fields_fix(task))
    return fields


def _fields_fix(task: Task) -> str:
    return f"give each of {task.field_names} exactly one rule: {' or '.join(RULE_KINDS)}"


def _parse_rules(task: Task, fields: dict[str, Any], where: _Where) -> dict[str, Rule]:
    kinds = {name: _rule_kind(spec, where.child(name)) for name, spec in fields.items()}
    rules: dict[str, Rule] = {}
    for name in task.field_names:
        kind, body = kinds[name]
        at = where.child(name).child(kind)
        if kind == "match":
            rules[name] = _parse_match(task, name, body, at)
        elif kind == "count":
            rules[name] = _parse_count(task, name, body, at)
        else:
            rules[name] = _parse_sum(task, name, body, at, kinds)
    return rules


def _rule_kind(spec: Any, where: _Where) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in RULE_KINDS:
        raise where.error(f"needs exactly one rule: a mapping with one key of {list(RULE_KINDS)}")
    kind, body = next(iter(spec.items()))
    if not isinstance(body, dict):
        raise where.child(kind).error("must be a mapping")
    return kind, body


def _check_keys(body: dict[str, Any], where: _Where, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    for key in required:
        if key not in body:
            raise where.error(f"missing key `{key}`")
    for key in body:
        if key not in required + optional:
            raise where.child(key).error(f"unknown key; expected {list(required + optional)}")


def _check_value(task: Task, name: str, value: Any, where: _Where) -> None:
    allowed = task.field_values(name)
    # bool is an int in Python: True must not pass for 1.
    if isinstance(value, bool) or value not in allowed:
        raise where.error(f"{value!r} is not a value of {name}; allowed: {allowed}")


def _phrases(value: Any, where: _Where, *, distinct: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise where.error("must be a non-empty list of phrases")
    for i, phrase in enumerate(value):
        if not isinstance(phrase, str) or not phrase:
            raise where.child(i).error(f"{phrase!r} is not a phrase (a non-empty string; quote numbers)")
        if distinct and phrase in value[:i]:
            raise where.child(i).error(f"{phrase!r} is listed twice (each cue counts once)")
    return tuple(value)


def _parse_match(task: Task, name: str, body: dict[str, Any], where: _Where) -> MatchRule:
    _check_keys(body, where, ("default", "classes"))
    _check_value(task, name, body["default"], where.child("default"))
    classes = body["classes"]
    if not isinstance(classes, dict) or not classes:
        raise where.child("classes").error("must map values of the field to phrase lists")
    parsed = []
    for value, phrases in classes.items():
        at = where.child("classes").child(value)
        _check_value(task, name, value, at)
        parsed.append((value, _phrases(phrases, at)))
    return MatchRule(default=body["default"], classes=tuple(parsed))


def _parse_count(task: Task, name: str, body: dict[str, Any], where: _Where) -> CountRule:
    _require_ordinal(task, name, where)
    _check_keys(body, where, ("cues", "levels"))
    cues = _phrases(body["cues"], where.child("cues"), distinct=True)
    levels = body["levels"]
    at = where.child("levels")
    if not isinstance(levels, list) or not levels or not all(_is_int(t) and t >= 1 for t in levels):
        raise at.error("must be a non-empty list of cue-count thresholds (integers >= 1)")
    if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
        raise at.error(f"thresholds must be strictly increasing, got {levels}")
    spec = task.schema["properties"][name]
    if spec["minimum"] + len(levels) > spec["maximum"]:
        raise at.error(
            f"{len(levels)} thresholds give levels up to {spec['minimum'] + len(levels)}, "
            f"above the maximum {spec['maximum']} of {name}"
        )
    return CountRule(cues=cues, levels=tuple(levels), minimum=spec["minimum"])


def _parse_sum(
    task: Task, name: str, body: dict[str, Any], where: _Where, kinds: dict[str, tuple[str, Any]]
) -> SumRule:
    _require_ordinal(task, name, where)
    _check_keys(body, where, (), ("of", "add", "add_if_any_positive"))
    of = body.get("of", [])
    if not isinstance(of, list) or len(set(of)) != len(of):
        raise where.child("of").error("must be a list of distinct field names")
    for i, other in enumerate(of):
        _check_source(task, other, kinds, where.child("of").child(i))
        _require_ordinal(task, other, where.child("of").child(i))
    add = _parse_add(task, body.get("add", {}), where.child("add"), kinds)
    if not of and not add:
        raise where.error("adds nothing: give `of` and/or `add`")
    bonus = body.get("add_if_any_positive", 0)
    if not _is_int(bonus):
        raise where.child("add_if_any_positive").error(f"{bonus!r} is not an integer")
    spec = task.schema["properties"][name]
    return SumRule(tuple(of), add, bonus, spec["minimum"], spec["maximum"])


def _parse_add(
    task: Task, add: Any, where: _Where, kinds: dict[str, tuple[str, Any]]
) -> tuple[tuple[str, tuple[tuple[Any, int], ...]], ...]:
    if not isinstance(add, dict):
        raise where.error("must map field names to {value: amount}")
    parsed = []
    for other, amounts in add.items():
        at = where.child(other)
        _check_source(task, other, kinds, at)
        if not isinstance(amounts, dict) or not amounts:
            raise at.error(f"must map values of {other} to integer amounts")
        for value, amount in amounts.items():
            _check_value(task, other, value, at.child(value))
            if not _is_int(amount):
                raise at.child(value).error(f"{amount!r} is not an integer")
        parsed.append((other, tuple(amounts.items())))
    return tuple(parsed)


def _check_source(task: Task, other: Any, kinds: dict[str, tuple[str, Any]], where: _Where) -> None:
    """A sum reads only fields computed by match or count rules (so there are no cycles)."""
    if other not in task.fields:
        raise where.error(f"{other!r} is not a field of task {task.name}; fields: {task.field_names}")
    if kinds[other][0] == "sum":
        raise where.error(f"{other!r} is itself a sum; a sum may refer only to match and count fields")


def _require_ordinal(task: Task, name: str, where: _Where) -> None:
    if task.fields[name] != "ordinal":
        raise where.error(f"{name} is {task.fields[name]}; this needs an ordinal (integer) field")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
