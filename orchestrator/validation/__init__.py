"""Pre-flight validation of LLaMA-Factory configs: every problem at once, with its fix.

`validate_run` checks the configs rendered for (model, method, task);
`validate_file` checks any LLaMA-Factory YAML, hand-written ones too. Both
parse the YAML the way `llamafactory-cli` does (OmegaConf) so the values
checked are the values that will run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from orchestrator.catalog import STAGES, Catalog
from orchestrator.project import Project
from orchestrator.render import render_run
from orchestrator.task import Task
from orchestrator.validation.problems import ConfigUnderTest, Problem, Severity, stage_of
from orchestrator.validation.rules import RULES, Context

__all__ = ["Problem", "Report", "Severity", "validate_file", "validate_run", "validate_runs"]


@dataclass
class Report:
    """Problems by config file, in the order checked."""

    problems: dict[str, list[Problem]] = field(default_factory=dict)

    def add(self, source: str, problems: list[Problem]) -> None:
        self.problems.setdefault(source, []).extend(problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for ps in self.problems.values() for p in ps if p.severity is Severity.ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, severity: Severity) -> int:
        return sum(p.severity is severity for ps in self.problems.values() for p in ps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "configs": {src: [p.to_dict() for p in ps] for src, ps in self.problems.items()},
            "counts": {s.value: self.count(s) for s in Severity},
        }


def parse_yaml_like_llamafactory(text: str) -> dict[str, Any]:
    """Load config text with OmegaConf, as `llamafactory-cli` does."""
    loaded = OmegaConf.to_container(OmegaConf.create(text))
    if not isinstance(loaded, dict):
        raise ValueError("a LLaMA-Factory config must be a mapping of keys")
    return loaded


def check(cfg: ConfigUnderTest, ctx: Context) -> list[Problem]:
    """Run every rule on one config."""
    return [problem for rule in RULES for problem in rule(cfg, ctx)]


def validate_file(project: Project, catalog: Catalog, path: Path, ctx: Context | None = None) -> list[Problem]:
    """Validate any LLaMA-Factory YAML on disk."""
    ctx = ctx or _context(catalog)
    source = project.relative(path)
    if not path.is_file():
        return [Problem(Severity.ERROR, "file", source, "config file not found")]
    try:
        values = parse_yaml_like_llamafactory(path.read_text(encoding="utf-8"))
    except (OmegaConfBaseException, ValueError, Exception) as exc:  # noqa: BLE001 - any load error is reported
        return [
            Problem(Severity.ERROR, "yaml", source, f"cannot be loaded: {exc}".splitlines()[0], "fix the YAML syntax")
        ]
    return check(ConfigUnderTest(project, source, values, stage_of(values), {}), ctx)


def validate_run(
    catalog: Catalog,
    model: str,
    method: str,
    task: Task,
    sets: tuple[str, ...] = (),
    stages: tuple[str, ...] = STAGES,
    ctx: Context | None = None,
) -> Report:
    """Render (model, method, task) with `--set` overrides and validate each stage config."""
    ctx = ctx or _context(catalog)
    report = Report()
    for config in render_run(catalog, model, method, task, sets, stages).values():
        source = catalog.project.relative(config.path)
        values = parse_yaml_like_llamafactory(config.text)
        cfg = ConfigUnderTest(catalog.project, source, values, config.stage, config.origins)
        report.add(source, check(cfg, ctx))
    return report


def validate_runs(
    catalog: Catalog, models: list[str], methods: list[str], task: Task, sets: tuple[str, ...] = ()
) -> Report:
    """Validate many runs, sharing the caches (tokenized datasets, LLaMA-Factory imports)."""
    ctx = _context(catalog)
    report = Report()
    for model in models:
        for method in methods:
            for source, problems in validate_run(catalog, model, method, task, sets, ctx=ctx).problems.items():
                report.add(source, problems)
    return report


def _context(catalog: Catalog) -> Context:
    return Context([catalog.task(name) for name in catalog.task_names()])
