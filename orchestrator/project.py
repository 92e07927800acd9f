"""Where things live: one object that every command receives.

All relative paths in rendered configs (`dataset_dir`, `output_dir`, data
files) are relative to the project root; jobs run with the root as their
working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator import inputs
from orchestrator.errors import OrchError

MODEL_CACHE_ENV = "ORCH_MODEL_CACHE"
ROOT_ENV = "ORCH_ROOT"
SAVES_ENV = "ORCH_SAVES"


@dataclass(frozen=True)
class Project:
    """A checkout of this repository (or any folder with the same layout)."""

    root: Path

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    @property
    def configs(self) -> Path:
        """Rendered LLaMA-Factory configs and dataset_info.json (committed)."""
        return self.root / "llamafactory_configs"

    @property
    def saves_setting(self) -> str:
        """Where run outputs go: `$ORCH_SAVES` (relative to the root, or absolute), default `saves`."""
        return os.environ.get(SAVES_ENV) or "saves"

    @property
    def jobs(self) -> Path:
        """Job scripts, job configs, logs and the ledger."""
        return self.root / "jobs"

    @property
    def ledger(self) -> Path:
        return self.jobs / "ledger.jsonl"

    @property
    def steps(self) -> Path:
        return self.root / "steps" / "steps.md"

    @property
    def model_cache(self) -> Path:
        """Local model directories, by hub id: `$ORCH_MODEL_CACHE`, default `<root>/models`."""
        configured = os.environ.get(MODEL_CACHE_ENV)
        return Path(configured).expanduser().resolve() if configured else self.root / "models"

    @property
    def settings(self) -> dict:
        """`templates/project.yaml`: project-wide choices such as the default task."""
        path = self.templates / "project.yaml"
        if not path.exists():
            return {}
        return inputs.read_yaml_mapping(path, "project settings file")

    @property
    def task_names(self) -> list[str]:
        """Tasks under templates/tasks/ (one YAML file each)."""
        folder = self.templates / "tasks"
        return sorted(p.name[: -len(".yaml")] for p in folder.glob("*.yaml")) if folder.is_dir() else []

    @property
    def default_task(self) -> str:
        """`default_task` from templates/project.yaml, else the only task there is."""
        configured = self.settings.get("default_task")
        names = self.task_names
        if configured:
            if str(configured) not in names:
                raise OrchError(
                    f"default_task: {configured!r} is not a task",
                    where="templates/project.yaml",
                    fix=f"tasks: {', '.join(names) or 'none'} (templates/tasks/<name>.yaml)",
                )
            return str(configured)
        if len(names) == 1:
            return names[0]
        raise OrchError(
            f"several tasks ({', '.join(names)}) and no default",
            where="templates/project.yaml",
            fix="set `default_task: <name>` there",
        )

    def relative(self, path: Path) -> str:
        """`path` relative to the root when inside it, for messages and configs."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def resolve(self, path: str | Path) -> Path:
        """A path from a config: absolute as is, relative against the root."""
        path = Path(path)
        return path if path.is_absolute() else self.root / path


def find_project(start: Path | None = None) -> Project:
    """The project at `$ORCH_ROOT`, else the nearest folder upwards holding `templates/`."""
    if os.environ.get(ROOT_ENV):
        return Project(Path(os.environ[ROOT_ENV]).resolve())
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "templates" / "tasks").is_dir():
            return Project(candidate)
    package_root = Path(__file__).resolve().parent.parent
    if (package_root / "templates").is_dir():
        return Project(package_root)
    raise OrchError(
        f"no orch project found from {here}",
        fix="run inside the repository, or set ORCH_ROOT to its path",
    )
