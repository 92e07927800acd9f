"""What rules share: tasks by dataset name, caches, and the datasets a config names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator import inputs, stages
from orchestrator.datasets import check_rows
from orchestrator.inputs import InputError
from orchestrator.preference import pairs_dataset
from orchestrator.task import Task
from orchestrator.validation.problems import ConfigUnderTest, Problem, Severity


class Context:
    """What rules share across configs: tasks by dataset name, row, length and model caches."""

    def __init__(self, tasks: list[Task]):
        self.task_of_dataset = {d.name: t for t in tasks for d in t.datasets.values()}
        self.task_of_dataset.update({pairs_dataset(t, split): t for t in tasks for split in t.datasets})
        self.length_cache: dict[tuple, Any] = {}
        self.rows_cache: dict[tuple, Any] = {}
        self.model_cache: dict[tuple, Any] = {}


def dataset_names(cfg: ConfigUnderTest, keys: tuple[str, ...] = ("dataset", "eval_dataset")) -> list[str]:
    """The dataset names under `keys`, comma-separated strings and YAML lists alike."""
    names = []
    for key in keys:
        value = cfg.values.get(key)
        if isinstance(value, str):
            names += [n.strip() for n in value.split(",") if n.strip()]
        elif isinstance(value, list):
            names += [str(n) for n in value]
    return names


def task_of(cfg: ConfigUnderTest, ctx: Context) -> Task | None:
    """The task whose datasets the config trains or predicts on, if any."""
    for name in dataset_names(cfg):
        if name in ctx.task_of_dataset:
            return ctx.task_of_dataset[name]
    return None


def dataset_info(cfg: ConfigUnderTest) -> tuple[Path, dict, Problem | None]:
    """`<dataset_dir>/dataset_info.json`, loaded, or the problem that stops it loading."""
    if "dataset_dir" in cfg.rejected:
        problem = Problem(Severity.INFO, "datasets", cfg.where("dataset_dir"), "datasets not checked: see dataset_dir")
        return cfg.project.root, {}, problem
    dataset_dir = cfg.path("dataset_dir") or cfg.project.resolve("data")
    info_path = dataset_dir / "dataset_info.json"
    rel = cfg.project.relative(info_path)
    if not info_path.is_file():
        problem = Problem(Severity.ERROR, "datasets", cfg.where("dataset_dir"), f"{rel} not found", _registry_fix(cfg))
        return info_path, {}, problem
    try:
        info = inputs.read_json(info_path)
    except InputError as exc:
        where = rel + (f":{exc.line}" if exc.line else "") + (f":{exc.column}" if exc.line and exc.column else "")
        return info_path, {}, Problem(Severity.ERROR, "datasets", where, exc.message, _registry_fix(cfg))
    if not isinstance(info, dict):
        return info_path, {}, Problem(Severity.ERROR, "datasets", rel, "not a JSON object", _registry_fix(cfg))
    return info_path, info, None


def _registry_fix(cfg: ConfigUnderTest) -> str:
    """What writes the dataset_info.json a config reads: `orch render` (the tasks'), the pairs stage (dpo's)."""
    if stages.data_maker(cfg.stage):
        from orchestrator.validation.references import data_fix

        return data_fix(cfg.stage)
    return "run `orch render`"


def rows(ctx: Context, path: Path, columns: dict | None, task: Task | None, ranking: bool = False):
    """The usable rows of a dataset file and its row problems (cached by file state)."""
    key = (path, path.stat().st_mtime_ns, json.dumps(columns, sort_keys=True), task.name if task else None, ranking)
    if key not in ctx.rows_cache:
        ctx.rows_cache[key] = check_rows(path, columns, task, ranking)
    return ctx.rows_cache[key]


# Where LLaMA-Factory can load a dataset from (an entry with none of them loads nothing).
_SOURCES = ("file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")


def entry_problem(entry: Any) -> str | None:
    """What makes a dataset_info.json entry unloadable, if anything."""
    if not isinstance(entry, dict):
        return f"its entry is {type(entry).__name__}, not an object"
    if not any(key in entry for key in _SOURCES):
        return f"its entry names no source ({', '.join(_SOURCES)})"
    if "file_name" in entry and not isinstance(entry["file_name"], str):
        return "file_name is not a string"
    if "columns" in entry and not isinstance(entry["columns"], dict):
        return "columns is not an object of role: column"
    return None
