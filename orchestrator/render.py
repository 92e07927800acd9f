"""Render LLaMA-Factory configs and dataset_info.json from the templates.

`render_run` gives the three stage configs of (model, method, task) in memory;
`render_all` writes them under `llamafactory_configs/`, deterministically
(same templates, same bytes), and `check_rendered` diffs them against what is
on disk so that drift fails the tests and shows in review.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator import stages as stage_table
from orchestrator.catalog import META_KEY, STAGES, Catalog, Layer, deep_merge
from orchestrator.errors import OrchError
from orchestrator.fileio import write_text_atomic
from orchestrator.task import Task
from orchestrator.templating import render

DATASET_INFO = "dataset_info.json"
SET_ORIGIN = "--set"  # the origin of a value given on the command line


@dataclass(frozen=True)
class RenderedConfig:
    """One stage config: its values (what LLaMA-Factory parses) and its YAML text."""

    model: str
    method: str
    task: str
    stage: str
    path: Path
    values: dict[str, Any]
    text: str
    origins: dict[str, str]  # key -> the template (or `--set`) that set it


def config_stem(catalog: Catalog, model: str, method: str, task: str, stage: str) -> str:
    """`train_<model>_<method>` (the default task), `..._<task>` for any other task."""
    stem = f"{stage_table.get(stage).config_prefix}_{model}_{method}"
    return stem if task == catalog.default_task else f"{stem}_{task}"


def parse_sets(pairs: list[str] | tuple[str, ...]) -> list[tuple[str | None, str, Any]]:
    """Parse `--set key=value` / `--set stage.key=value` (values are YAML scalars)."""
    out = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OrchError(f"--set {pair!r}: expected key=value", fix="for example --set learning_rate=5e-5")
        stage = None
        head, dot, tail = key.partition(".")
        if dot and head in STAGES:
            stage, key = head, tail
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out.append((stage, key, value))
    return out


def apply_sets(per_stage: dict[str, dict[str, Any]], sets: list[tuple[str | None, str, Any]]) -> None:
    """Apply overrides in place.

    `stage.key=value` sets the key in that stage's config. A bare `key=value`
    replaces the key in every stage config that has it, and goes into the
    training (sft) config when none has it.
    """
    for stage, key, value in sets:
        targets = [stage] if stage else [s for s in STAGES if key in per_stage[s]] or [stage_table.TRAINING]
        for target in targets:
            per_stage[target][key] = value


def stage_values(settings: dict[str, Any], stage: str) -> dict[str, Any]:
    """A stage's config values: shared keys, then that stage's own section."""
    shared = {k: v for k, v in settings.items() if k not in STAGES and k != META_KEY}
    return {**shared, **settings.get(stage, {})}


class _Sections:
    """Lays out config keys in titled sections; keys no section claims go last."""

    def __init__(self, values: dict[str, Any]):
        self.values = values
        self.done: set[str] = set()

    def __call__(self, title: str, *keys: str) -> str:
        present = [k for k in keys if k in self.values and k not in self.done]
        return self._emit(title, present)

    def rest(self, title: str = "other") -> str:
        return self._emit(title, [k for k in self.values if k not in self.done])

    def _emit(self, title: str, keys: list[str]) -> str:
        if not keys:
            return ""
        self.done.update(keys)
        body = yaml.safe_dump({k: self.values[k] for k in keys}, sort_keys=False, allow_unicode=True, width=10**6)
        return f"### {title}\n{body}\n"


def render_run(
    catalog: Catalog,
    model: str,
    method: str,
    task: Task,
    sets: list[str] | tuple[str, ...] = (),
    stages: tuple[str, ...] = STAGES,
) -> dict[str, RenderedConfig]:
    """The stage configs of one (model, method, task), with `--set` overrides applied."""
    layers = catalog.layers(model, method, task)
    settings: dict[str, Any] = {}
    for layer in layers:
        settings = deep_merge(settings, layer.values)
    per_stage = {stage: stage_values(settings, stage) for stage in STAGES}
    parsed_sets = parse_sets(sets)
    apply_sets(per_stage, parsed_sets)
    family = catalog.family_of(model)
    out = {}
    for stage in stages:
        values = per_stage[stage]
        header = (
            f"Rendered by `orch render` from templates/models/{model}.yaml.j2 "
            f"(family {family}, method {method}, task {task.name}, stage {stage}).\n"
            "# Do not edit: change the templates and run `orch render`."
        )
        context = {**catalog.context(model, method, task), "header": header, "section": _Sections(values)}
        text = render(catalog.env, f"stages/{stage}.yaml.j2", context).rstrip("\n") + "\n"
        stem = config_stem(catalog, model, method, task.name, stage)
        path = catalog.project.configs / f"{stem}.yaml"
        origins = _origins(layers, stage, parsed_sets)
        out[stage] = RenderedConfig(model, method, task.name, stage, path, values, text, origins)
    return out


def _origins(layers: list[Layer], stage: str, sets: list[tuple[str | None, str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for layer in layers:
        for key in layer.values:
            if key not in STAGES and key != META_KEY:
                out[key] = layer.source
        for key in layer.values.get(stage, {}):
            out[key] = layer.source
    for target, key, _ in sets:
        if target in (None, stage):
            out[key] = SET_ORIGIN
    return out


def render_dataset_info(catalog: Catalog) -> str:
    """dataset_info.json for every task, with file paths relative to `dataset_dir`."""
    datasets = []
    for name in catalog.task_names():
        task = catalog.task(name)
        for spec in task.datasets.values():
            file_path = catalog.project.resolve(spec.file)
            rel = os.path.relpath(file_path, catalog.project.configs)
            datasets.append({"name": spec.name, "file_name": Path(rel).as_posix(), "task": task.name, "ranking": False})
    names = [d["name"] for d in datasets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise OrchError(f"dataset name(s) {duplicates} are used by more than one task", where="templates/tasks/")
    return _dataset_info_text(catalog, datasets)


def render_pairs_info(catalog: Catalog, files: dict[str, str]) -> str:
    """dataset_info.json for one SFT run's DPO pairs: {dataset name: file name in the same folder}, ranking."""
    datasets = [{"name": name, "file_name": file, "ranking": True} for name, file in sorted(files.items())]
    return _dataset_info_text(catalog, datasets)


def _dataset_info_text(catalog: Catalog, datasets: list[dict[str, Any]]) -> str:
    text = render(catalog.env, f"stages/{DATASET_INFO}.j2", {"datasets": datasets})
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise OrchError(
            f"rendered {DATASET_INFO} is not valid JSON: {exc}", where=f"templates/stages/{DATASET_INFO}.j2"
        ) from None
    return text


def render_all(
    catalog: Catalog,
    models: list[str],
    methods: list[str],
    tasks: list[Task],
) -> dict[Path, str]:
    """Every file `orch render` writes for these models, methods and tasks, by path."""
    files: dict[Path, str] = {catalog.project.configs / DATASET_INFO: render_dataset_info(catalog)}
    for task in tasks:
        for model in models:
            for method in methods:
                for config in render_run(catalog, model, method, task).values():
                    files[config.path] = config.text
    return files


def write_files(files: dict[Path, str]) -> list[Path]:
    """Write rendered files atomically; returns the ones whose content changed."""
    changed = []
    for path, text in sorted(files.items()):
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_text_atomic(path, text)
            changed.append(path)
    return changed


def check_rendered(catalog: Catalog, files: dict[Path, str]) -> str:
    """A unified diff between the committed files and a fresh render ("" when they match)."""
    chunks = []
    for path, text in sorted(files.items()):
        rel = catalog.project.relative(path)
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        if old != text:
            label = rel if path.is_file() else f"{rel} (missing)"
            chunks.extend(
                difflib.unified_diff(
                    old.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    fromfile=f"committed/{label}",
                    tofile=f"rendered/{rel}",
                )
            )
    stale = _stale_configs(catalog, set(files))
    chunks.extend(
        f"stale: {catalog.project.relative(p)} has no template (or task) any more: remove it\n" for p in stale
    )
    return "".join(chunks)


def _stale_configs(catalog: Catalog, expected: set[Path]) -> list[Path]:
    """Rendered configs on disk for a model, method or task whose template is gone."""
    known = {(m, me) for m in catalog.model_names() for me in catalog.method_names()}
    tasks = set(catalog.task_names())
    stale = []
    for path in sorted(catalog.project.configs.glob("*.yaml")):
        if path in expected:
            continue
        parts = path.stem.split("_")
        if len(parts) < 3 or not stage_table.by_prefix(parts[0]):
            continue
        task = "_".join(parts[3:])
        if (parts[1], parts[2]) not in known or (task and (task not in tasks or task == catalog.default_task)):
            stale.append(path)
    return stale
