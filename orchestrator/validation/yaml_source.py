"""Reading a LLaMA-Factory YAML as `llamafactory-cli` does (OmegaConf), with the line of every key.

Structure problems (a tab, a duplicate key, a list or several documents where a
mapping belongs) are found on the YAML node tree, so each names its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from omegaconf import OmegaConf


@dataclass(frozen=True)
class SyntaxProblem:
    """One structure problem: its 1-based line (None: the whole file), what is wrong and the fix."""

    line: int | None
    message: str
    fix: str


@dataclass(frozen=True)
class LoadedConfig:
    """The values LLaMA-Factory will see, and the line each top-level key is on."""

    values: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)


class ConfigSyntaxError(Exception):
    """The text is not a YAML mapping LLaMA-Factory can load; `problems` says where and why."""

    def __init__(self, problems: list[SyntaxProblem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def load_config(text: str) -> LoadedConfig:
    """Load config text the way LLaMA-Factory does, or raise ConfigSyntaxError naming every line at fault."""
    problems = _tab_indents(text)
    root = None
    try:
        documents = list(yaml.compose_all(text, Loader=_omegaconf_loader()))
    except yaml.MarkedYAMLError as exc:
        raise ConfigSyntaxError(problems or [_from_yaml_error(exc, text)]) from None
    except RecursionError:
        raise ConfigSyntaxError(
            [SyntaxProblem(None, "an anchor refers to itself (`&a [*a]`)", "remove the loop")]
        ) from None
    if len(documents) > 1:
        line = documents[1].start_mark.line + 1
        problems.append(SyntaxProblem(line, "a second YAML document (`---`)", "one config per file: split it in two"))
    root = documents[0] if documents else None
    if not isinstance(root, yaml.MappingNode):
        kind = "empty" if root is None or root.tag.endswith(":null") else f"a {_kind(root)}, not a mapping"
        line = root.start_mark.line + 1 if root is not None else None
        problems.append(SyntaxProblem(line, f"the config is {kind}", "write one `key: value` per line"))
        raise ConfigSyntaxError(problems)
    try:
        problems += _mapping_problems(root)
    except RecursionError:
        raise ConfigSyntaxError(
            [SyntaxProblem(None, "an anchor refers to itself (`&a [*a]`)", "remove the loop")]
        ) from None
    if problems:
        raise ConfigSyntaxError(problems)
    try:
        values = OmegaConf.to_container(OmegaConf.create(text))
    except Exception as exc:  # noqa: BLE001 - anything OmegaConf refuses is a config problem
        raise ConfigSyntaxError([SyntaxProblem(None, f"OmegaConf cannot load it: {exc}", "fix the YAML")]) from None
    lines = {key.value: key.start_mark.line + 1 for key, _ in root.value if isinstance(key, yaml.ScalarNode)}
    return LoadedConfig(values, lines)


def _omegaconf_loader() -> type:
    """OmegaConf's own YAML loader class (its module moved between versions), else PyYAML's safe one."""
    for module in ("omegaconf._yaml", "omegaconf._utils"):
        try:
            return __import__(module, fromlist=["get_yaml_loader"]).get_yaml_loader()
        except (ImportError, AttributeError):
            continue
    return yaml.SafeLoader


def _tab_indents(text: str) -> list[SyntaxProblem]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            out.append(SyntaxProblem(number, "indented with a tab", "YAML indents with spaces: replace the tab"))
    return out


def _from_yaml_error(exc: yaml.MarkedYAMLError, text: str) -> SyntaxProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    message = " ".join(str(part) for part in (exc.context, exc.problem) if part) or str(exc)
    lines = text.splitlines()
    if line is not None and 0 < line <= len(lines) and "\t" in lines[line - 1]:
        return SyntaxProblem(line, f"{message} (the line has a tab)", "YAML indents with spaces: replace the tab")
    return SyntaxProblem(line, message, "fix the YAML syntax on that line (quote values with `: ` or `#`)")


def _kind(node: yaml.Node) -> str:
    return "list" if isinstance(node, yaml.SequenceNode) else "single value"


def _mapping_problems(node: yaml.Node, path: str = "") -> list[SyntaxProblem]:
    """Duplicate and non-text keys, at every depth."""
    out: list[SyntaxProblem] = []
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += _mapping_problems(item, path)
        return out
    if not isinstance(node, yaml.MappingNode):
        return out
    first: dict[str, int] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        if isinstance(key, yaml.ScalarNode) and key.tag.endswith(":merge"):
            continue  # `<<: *anchor` merges a mapping, as OmegaConf does
        if not isinstance(key, yaml.ScalarNode) or not key.tag.endswith(":str"):
            shown = key.value if isinstance(key, yaml.ScalarNode) else _kind(key)
            out.append(SyntaxProblem(line, f"key {shown!r} is not a name", "keys are names: `lora_rank: 8`"))
            continue
        name = f"{path}{key.value}"
        if key.value in first:
            out.append(
                SyntaxProblem(
                    line,
                    f"duplicate key `{name}` (first on line {first[key.value]}); only one value can be meant",
                    "keep one of the two lines",
                )
            )
        else:
            first[key.value] = line
        out += _mapping_problems(value, f"{name}.")
    return out
