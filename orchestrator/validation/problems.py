"""What validation reports: one Problem per finding, with where and how to fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from orchestrator.project import Project


class Severity(str, Enum):
    ERROR = "error"  # the job would crash or train the wrong thing: refuse to submit
    WARNING = "warning"  # likely a mistake or a job that cannot run here yet
    INFO = "info"  # a fact worth knowing (state of output_dir, hardware)


@dataclass(frozen=True)
class Problem:
    """One finding of one rule about one config."""

    severity: Severity
    rule: str
    where: str
    message: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    def render(self) -> str:
        text = f"{self.severity.value.upper():7} [{self.rule}] {self.where}: {self.message}"
        return text + (f"\n        fix: {self.fix}" if self.fix else "")


@dataclass
class ConfigUnderTest:
    """A LLaMA-Factory config as it will be parsed, with what validation needs around it."""

    project: Project
    source: str  # the config file, relative to the project root where possible
    values: dict[str, Any]
    stage: str  # sft (any training stage), predict or export
    origins: dict[str, str]
    lines: dict[str, int] = field(default_factory=dict)  # key -> its line in the file
    processes: int | None = None  # training processes (GPUs) the job runs, when known
    rejected: set[str] = field(default_factory=set)  # keys an earlier rule found unusable
    parsed: tuple[Any, ...] | None = None  # LLaMA-Factory's parsed argument dataclasses, once they parse

    def where(self, key: str | None = None) -> str:
        """`file:line: key (set in template)` for messages."""
        if key is None:
            return self.source
        line = self.lines.get(key)
        origin = self.origins.get(key)
        return f"{self.source}{f':{line}' if line else ''}: {key}" + (f" (set in {origin})" if origin else "")

    def usable(self) -> dict[str, Any]:
        """The values no earlier rule rejected (what the later rules and LLaMA-Factory's parser see)."""
        return {k: v for k, v in self.values.items() if k not in self.rejected}

    def path(self, key: str) -> Path | None:
        """A path-valued key resolved against the project root (jobs run there)."""
        value = self.values.get(key)
        return self.project.resolve(str(value)) if value else None


def stage_of(values: dict[str, Any]) -> str:
    """Which kind of run a config describes: export, predict, a training stage of the table (dpo) or sft."""
    from orchestrator import stages

    if values.get(stages.EXPORT.output_key) or any(str(key).startswith("export_") for key in values):
        return stages.EXPORT.name
    if values.get("do_predict") and not values.get("do_train"):
        return stages.PREDICT.name
    named = stages.TABLE.get(str(values.get("stage", "")))
    return named.name if named is not None and named.trains else stages.TRAINING
