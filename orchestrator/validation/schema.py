"""Every key's type, choices and range, derived from LLaMA-Factory's own argument dataclasses.

Nothing here names a key: the declared annotation (int, float, bool, str,
Optional, Literal, enums, lists; comma-separated lists where the help says so)
and the field's metadata choices say what a key may hold, so a key LLaMA-Factory
adds tomorrow is checked without a code change. Ranges come from `BOUNDS`, rules
over the *shape* of key names (counts, sizes, rates, ratios), each applied only
where the key's own default satisfies it.
"""

from __future__ import annotations

import difflib
import enum
import math
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator import lf_adapter as lf
from orchestrator.validation.problems import ConfigUnderTest, Problem, Severity

ERROR, WARNING = Severity.ERROR, Severity.WARNING

# Well-known names for things LLaMA-Factory spells otherwise: a hint on top of the valid values.
ALIAS_HINTS = {
    ("finetuning_type", "qlora"): "QLoRA is `finetuning_type: lora` with `quantization_bit: 4`",
    ("finetuning_type", "dora"): "DoRA is `finetuning_type: lora` with `use_dora: true`",
    ("stage", "dpo_sft"): "DPO is `stage: dpo`; SFT is `stage: sft`",
}


# Where what runs accepts more than the dataclass declares (the trainer's own call signature).
WIDER: dict[str, Any] = {"resume_from_checkpoint": bool}  # Trainer.train(resume_from_checkpoint=True): the latest


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _arms(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation) if _is_union(annotation) else (annotation,)


def _is_enum(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


def choices(spec: lf.FieldSpec) -> list[Any] | None:
    """The values a key may take, when its declaration lists them (Literal, enum, metadata choices)."""
    if spec.choices is not None:
        return list(spec.choices)
    found: list[Any] = []
    for arm in _arms(spec.annotation):
        if typing.get_origin(arm) is Literal:
            found += list(typing.get_args(arm))
        elif _is_enum(arm):
            found += [member.value for member in arm]
    return found or None


def _list_choices(spec: lf.FieldSpec) -> list[Any] | None:
    """Enum members allowed inside a list arm (`fsdp`, `debug`: space-separated words in a string)."""
    for arm in _arms(spec.annotation):
        if typing.get_origin(arm) is list:
            inner = typing.get_args(arm)
            if inner and _is_enum(inner[0]):
                return [member.value for member in inner[0]]
    return None


def takes_comma_list(spec: lf.FieldSpec) -> bool:
    """LLaMA-Factory's convention: a text key whose help says "use commas" holds a list."""
    return "comma" in spec.help.lower()


def conforms(value: Any, annotation: Any) -> bool:
    """Whether `value`, as YAML loaded it, has the declared type (unknown types are trusted)."""
    if annotation is Any or annotation is None:
        return True
    if _is_union(annotation):
        return any(conforms(value, arm) for arm in typing.get_args(annotation))
    origin = typing.get_origin(annotation)
    if annotation is type(None):
        return value is None
    if origin is Literal:
        return any(value == c and type(value) is type(c) for c in typing.get_args(annotation))
    if origin in (list, tuple, set):
        inner = typing.get_args(annotation)
        return isinstance(value, list) and (not inner or all(conforms(v, inner[0]) for v in value))
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if _is_enum(annotation):
        return isinstance(value, annotation) or value in {m.value for m in annotation}
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if isinstance(annotation, type):
        return isinstance(value, (annotation, str, dict))
    return True


def describe(annotation: Any) -> str:
    """The declared type in words, for messages."""
    arms = [a for a in _arms(annotation) if a is not type(None)]
    words = []
    for arm in arms:
        if typing.get_origin(arm) is Literal:
            words.append("one of " + ", ".join(map(str, typing.get_args(arm))))
        elif _is_enum(arm):
            words.append("one of " + ", ".join(str(m.value) for m in arm))
        else:
            words.append(_NAMES.get(arm, getattr(arm, "__name__", str(arm))))
    text = " or ".join(dict.fromkeys(words)) or "nothing"
    return text + (" (or null)" if len(arms) < len(_arms(annotation)) else "")


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "text", dict: "a mapping"}


_UNDECIDED = object()


def type_problem(spec: lf.FieldSpec, value: Any) -> tuple[str, str] | None:
    """(message, fix) when `value` cannot be what the key declares; None when it can."""
    if value is None and not conforms(None, spec.annotation):
        return "has no value", _with_example(spec, "give a value or remove the line to use the default")
    for check in (_choice_problem, _list_problem):
        verdict = check(spec, value)
        if verdict is not _UNDECIDED:
            return verdict
    if conforms(value, spec.annotation) or (spec.name in WIDER and conforms(value, WIDER[spec.name])):
        return None
    return f"expects {describe(spec.annotation)}, got {value!r} ({type(value).__name__})", _type_fix(spec, value)


def _choice_problem(spec: lf.FieldSpec, value: Any) -> Any:
    """Literal, enum and metadata choices; space-separated enum words (`fsdp`, `debug`)."""
    valid = choices(spec)
    if valid is not None and value is not None and not isinstance(value, (list, dict)):
        if value in valid or any(isinstance(v, enum.Enum) and v.value == value for v in valid):
            return None
        return _not_a_choice(spec, value, valid)
    words = _list_choices(spec)
    if words is not None and isinstance(value, str):
        bad = [w for w in value.split() if w not in words]
        return _not_a_choice(spec, bad[0], words) if bad else None
    return _UNDECIDED


def _list_problem(spec: lf.FieldSpec, value: Any) -> Any:
    """Comma-separated lists (and YAML lists where those are meant): no empty or non-text names."""
    if not takes_comma_list(spec) or not isinstance(value, (str, list)):
        return _UNDECIDED
    items = value.split(",") if isinstance(value, str) else value
    if any(not isinstance(item, str) or not item.strip() for item in items):
        return f"{value!r} has an empty or non-text name in its list", "give names separated by commas, no stray comma"
    return None if isinstance(value, list) else _UNDECIDED


def _type_fix(spec: lf.FieldSpec, value: Any) -> str:
    """The fix for a value of the wrong type, naming the usual slip when it is one."""
    if isinstance(value, bool) and conforms("x", spec.annotation):
        return f"YAML read an unquoted yes/no/on/off as true/false: quote it, `{spec.name}: '{_word(value)}'`"
    if isinstance(value, str) and _number(value) is not None and conforms(_number(value), spec.annotation):
        return f"remove the quotes: `{spec.name}: {value}`"
    if isinstance(value, str) and value.lower() in ("true", "false") and conforms(True, spec.annotation):
        return f"remove the quotes: `{spec.name}: {value.lower()}`"
    if isinstance(value, float) and value.is_integer() and conforms(int(value), spec.annotation):
        return f"give a whole number: `{spec.name}: {int(value)}`"
    return _with_example(spec, f"give {describe(spec.annotation)}")


def _with_example(spec: lf.FieldSpec, fix: str) -> str:
    return fix + (f", e.g. `{spec.name}: {_yaml(spec.default)}` (the default)" if _has_default(spec) else "")


def _not_a_choice(spec: lf.FieldSpec, value: Any, valid: list[Any]) -> tuple[str, str]:
    shown = [str(v.value if isinstance(v, enum.Enum) else v) for v in valid]
    lowered = {s.lower(): s for s in shown}
    close = [lowered[m] for m in difflib.get_close_matches(str(value).lower(), list(lowered), n=1)]
    fix = f"one of: {', '.join(shown)}"
    if close:
        fix = f"did you mean {close[0]}? {fix}"
    hint = ALIAS_HINTS.get((spec.name, str(value).lower()))
    if hint:
        fix = f"{hint}; {fix}"
    return f"{value!r} is not a valid {spec.name}", fix


def _has_default(spec: lf.FieldSpec) -> bool:
    return spec.default is not lf.NO_DEFAULT and spec.default is not None and not isinstance(spec.default, (list, dict))


def _yaml(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) and value in ("no", "yes", "on", "off") else str(value)


def _word(value: bool) -> str:
    return "yes" if value else "no"


def _number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return None


# --- ranges -----------------------------------------------------------------
@dataclass(frozen=True)
class Bound:
    """A range for every numeric key whose name matches `pattern`."""

    pattern: str
    low: float | None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def matches(self, name: str) -> bool:
        return re.search(self.pattern, name) is not None

    def admits(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


POSITIVE = r"(batch_size|_workers|_len|_length|maxlen|_tokens|_rank|_epochs|num_beams|accumulation_steps|samples|_size"
POSITIVE += r"|^(logging|save|eval)_steps|learning_rate|temperature|_penalty_alpha|^lora_alpha|repetition_penalty)$"
# First match wins, among the bounds the key's own default satisfies (so `max_steps: -1` keeps its sentinel).
BOUNDS: tuple[Bound, ...] = (
    Bound(r"(dropout)$", 0, 1, high_open=True, why="a dropout rate is a probability below 1"),
    Bound(r"^top_p$", 0, 1, low_open=True, why="a nucleus probability mass"),
    Bound(
        r"((?<!lr)_ratio|_prob|_probs|smoothing|smoothing_factor|_util|_fraction|_beta1|_beta2)$",
        0,
        1,
        why="a ratio, fraction or probability",
    ),
    Bound(POSITIVE, 0, low_open=True, why="a count, size, length or rate of 0 or less cannot work"),
    Bound(
        r"(^num_|_steps|_size|_workers|_limit|_epochs|_delay|_len|weight_decay|^top_k|_alpha|_epsilon)$",
        0,
        why="a count or magnitude cannot be negative",
    ),
)


def bound_for(spec: lf.FieldSpec) -> Bound | None:
    """The range a numeric key must lie in, if a bound covers it."""
    if not any(arm in (int, float) for arm in _arms(spec.annotation)):
        return None
    default = spec.default
    for bound in BOUNDS:
        if not bound.matches(spec.name):
            continue
        if isinstance(default, (int, float)) and not isinstance(default, bool) and not bound.admits(default):
            continue
        return bound
    return None


# --- the rules ----------------------------------------------------------------
def declared_types(cfg: ConfigUnderTest, ctx: Any) -> Iterator[Problem]:
    """Every key holds what LLaMA-Factory's dataclass declares: type, choices, comma lists."""
    specs = lf.fields(cfg.stage)
    for key, value in cfg.values.items():
        spec = specs.get(key)
        if spec is None:
            continue  # unknown keys: LLaMA-Factory's parser names them, with suggestions
        found = type_problem(spec, value)
        if found:
            cfg.rejected.add(key)
            yield Problem(ERROR, "type", cfg.where(key), *found)


def value_ranges(cfg: ConfigUnderTest, ctx: Any) -> Iterator[Problem]:
    """Numbers lie in their range: counts positive, ratios and probabilities within [0, 1]."""
    specs = lf.fields(cfg.stage)
    for key, value in cfg.values.items():
        spec = specs.get(key)
        if spec is None or key in cfg.rejected or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        bound = bound_for(spec)
        if bound is not None and not bound.admits(value):
            cfg.rejected.add(key)
            default = f" (default {_yaml(spec.default)})" if _has_default(spec) else ""
            yield Problem(
                ERROR,
                "range",
                cfg.where(key),
                f"must be {bound.describe()}, got {value!r}: {bound.why}",
                f"give a value {bound.describe()}{default}"
                + ("; remove the key to use every row" if key == "max_samples" else ""),
            )
