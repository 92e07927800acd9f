"""Pre-flight validation of LLaMA-Factory configs: every problem at once, with its fix.

`validate_run` checks the configs rendered for (model, method, task);
`validate_file` checks any LLaMA-Factory YAML, hand-written ones too. Both
parse the YAML the way `llamafactory-cli` does (OmegaConf) so the values
checked are the values that will run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator import inputs
from orchestrator.catalog import STAGES, Catalog
from orchestrator.inputs import InputError
from orchestrator.project import Project
from orchestrator.render import render_run
from orchestrator.task import Task
from orchestrator.validation.context import Context
from orchestrator.validation.problems import ConfigUnderTest, Problem, Severity, stage_of
from orchestrator.validation.rules import GATES, RULES
from orchestrator.validation.yaml_source import ConfigSyntaxError, load_config

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
    """Load config text with OmegaConf, as `llamafactory-cli` does (ConfigSyntaxError names the lines at fault)."""
    return load_config(text).values


def check(cfg: ConfigUnderTest, ctx: Context) -> list[Problem]:
    """Run the gates, then every rule on the values the gates left usable."""
    problems = [problem for rule in GATES for problem in rule(cfg, ctx)]
    usable = replace(cfg, values=cfg.usable())
    return problems + [problem for rule in RULES for problem in rule(usable, ctx)]


def validate_file(project: Project, catalog: Catalog, path: Path, ctx: Context | None = None) -> list[Problem]:
    """Validate any LLaMA-Factory YAML on disk."""
    ctx = ctx or _context(catalog)
    source = project.relative(path)
    if not path.is_file():
        return [Problem(Severity.ERROR, "file", source, "config file not found", "give the path of a YAML file")]
    try:
        decoded = inputs.read_text(path)
        if decoded.encoding not in ("utf-8", "utf-8-sig"):
            return [
                Problem(
                    Severity.ERROR,
                    "yaml",
                    source,
                    f"the file is {decoded.encoding}; LLaMA-Factory reads configs as UTF-8",
                    inputs.CONVERT_FIX,
                )
            ]
        loaded = load_config(decoded.text)
    except InputError as exc:
        return [
            Problem(
                Severity.ERROR,
                "yaml",
                f"{source}:{exc.line}" if exc.line else source,
                exc.message,
                exc.fix or "save the file as UTF-8",
            )
        ]
    except ConfigSyntaxError as exc:
        return [
            Problem(Severity.ERROR, "yaml", f"{source}:{p.line}" if p.line else source, p.message, p.fix)
            for p in exc.problems
        ]
    cfg = ConfigUnderTest(project, source, loaded.values, stage_of(loaded.values), {}, loaded.lines)
    return check(cfg, ctx)


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
    processes = _processes(catalog.settings(model, method, task))
    for config in render_run(catalog, model, method, task, sets, stages).values():
        source = catalog.project.relative(config.path)
        try:
            loaded = load_config(config.text)
        except ConfigSyntaxError as exc:
            report.add(source, [Problem(Severity.ERROR, "yaml", source, p.message, p.fix) for p in exc.problems])
            continue
        cfg = ConfigUnderTest(
            catalog.project, source, loaded.values, config.stage, config.origins, loaded.lines, processes
        )
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


def _processes(settings: dict[str, Any]) -> int:
    """Training processes of the run's job: GPUs per node x nodes (a CPU job is one process)."""
    slurm = settings.get("orch", {}).get("slurm", {}) if isinstance(settings.get("orch"), dict) else {}
    gpus, nodes = slurm.get("processes_per_node") or slurm.get("gpus_per_node") or 1, slurm.get("nodes") or 1
    return max(1, int(gpus) * int(nodes)) if isinstance(gpus, int) and isinstance(nodes, int) else 1


def _context(catalog: Catalog) -> Context:
    return Context([catalog.task(name) for name in catalog.task_names()])
