"""What the project offers: tasks, methods, model families and models under `templates/`.

A model is one file `templates/models/<name>.yaml.j2` that extends its family
`templates/families/<family>.yaml.j2`. Rendered, a model, a method and the
shared defaults are *layers*: YAML mappings of LLaMA-Factory keys where a
top-level key applies to every stage and keys under `sft:`, `dpo:`, `predict:`
or `export:` to that stage only; `orch:` holds facts for orch itself
(description, how to prepare the weights). Later layers override earlier:
defaults < method < family < model < `--set`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jinja2

from orchestrator import stages
from orchestrator.errors import OrchError
from orchestrator.layout import Layout
from orchestrator.preference import pairs_dataset
from orchestrator.project import Project
from orchestrator.task import Task, load_task
from orchestrator.templating import load_yaml_documents, make_env, referenced_templates, render

STAGES = stages.LLAMAFACTORY_NAMES  # the stages with rendered LLaMA-Factory configs
META_KEY = "orch"
DEFAULTS_TEMPLATE = "stages/defaults.yaml.j2"
MODEL_SUFFIX = ".yaml.j2"
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `update` merged in; nested mappings merge, other values replace."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Layer:
    """One rendered template's contribution to a model's settings."""

    source: str
    values: dict[str, Any]


class Catalog:
    """Finds and renders what lives under a project's `templates/`."""

    def __init__(self, project: Project, saves: str = "saves"):
        self.project = project
        self.saves = saves  # committed configs say `saves`; job configs use the project's setting
        self.env: jinja2.Environment = make_env(project.templates)

    # --- discovery -------------------------------------------------------
    def model_names(self) -> list[str]:
        """Models under templates/models/ (a name starting with `_` is a partial, not a model)."""
        return [n for n in self._names("models", MODEL_SUFFIX) if not n.startswith("_")]

    def method_names(self) -> list[str]:
        return self._names("methods", MODEL_SUFFIX)

    def family_names(self) -> list[str]:
        return [n for n in self._names("families", MODEL_SUFFIX) if not n.startswith("_")]

    def task_names(self) -> list[str]:
        return self.project.task_names

    def _names(self, folder: str, suffix: str) -> list[str]:
        base = self.project.templates / folder
        return sorted(p.name[: -len(suffix)] for p in base.glob(f"*{suffix}")) if base.is_dir() else []

    @cached_property
    def default_task(self) -> str:
        """`default_task` from templates/project.yaml, else the only task there is."""
        return self.project.default_task

    @cached_property
    def layout(self) -> Layout:
        """Where this catalog's runs live (configs rendered by it point there)."""
        return Layout(self.project, self.saves)

    def task(self, name: str | None = None) -> Task:
        """Load a task by name (default: the project's default task)."""
        name = name or self.default_task
        if name not in self.task_names():
            raise OrchError(
                f"unknown task {name!r}",
                fix=f"known tasks: {', '.join(self.task_names()) or 'none'} (templates/tasks/<name>.yaml)",
            )
        return load_task(self.project.templates / "tasks" / f"{name}.yaml")

    def check_model(self, name: str) -> None:
        """Raise a clear error for an unknown or unusable model name."""
        if not MODEL_NAME.match(name):
            raise OrchError(
                f"{name!r} is not a model name",
                fix="model templates are named with lowercase letters, digits, '.' and '-' "
                "(e.g. qwen3-1p7b); '_' separates parts of config names and starts partials",
            )
        if name not in self.model_names():
            raise OrchError(
                f"unknown model {name!r}",
                fix=f"known models: {', '.join(self.model_names())}; add one as templates/models/{name}.yaml.j2",
            )

    def check_method(self, name: str) -> None:
        """Raise a clear error for an unknown method name."""
        if name not in self.method_names():
            raise OrchError(
                f"unknown method {name!r}",
                fix=f"known methods: {', '.join(self.method_names())}",
            )

    def family_of(self, model: str) -> str:
        """The family a model template extends."""
        self.check_model(model)
        for ref in referenced_templates(self.env, f"models/{model}{MODEL_SUFFIX}"):
            if ref.startswith("families/") and ref.endswith(MODEL_SUFFIX):
                return ref[len("families/") : -len(MODEL_SUFFIX)]
        raise OrchError(
            "a model template must extend its family",
            where=f"templates/models/{model}{MODEL_SUFFIX}",
            fix='start it with {% extends "families/<family>.yaml.j2" %}',
        )

    # --- layers ----------------------------------------------------------
    def layers(self, model: str, method: str, task: Task) -> list[Layer]:
        """The layers of (model, method, task) in override order."""
        self.check_model(model)
        self.check_method(method)
        context = self.context(model, method, task)
        out = [self._layer(DEFAULTS_TEMPLATE, context), self._layer(f"methods/{method}{MODEL_SUFFIX}", context)]
        name = f"models/{model}{MODEL_SUFFIX}"
        family = f"families/{self.family_of(model)}{MODEL_SUFFIX}"
        docs = load_yaml_documents(render(self.env, name, context), f"templates/{name}")
        sources = [f"templates/{family}", f"templates/{name}"]
        for i, doc in enumerate(docs):
            out.append(Layer(sources[min(i, len(sources) - 1)], _checked_layer(doc, sources[-1])))
        return out

    def context(self, model: str, method: str, task: Task) -> dict[str, Any]:
        """Variables every layer and stage template sees."""
        return {
            "model": model,
            "method": method,
            "task": task.context(),
            # Each stage's output folder, from the run layout (the only owner of paths).
            "paths": {"configs": "llamafactory_configs", **self.layout.stage_outputs(model, method, task.name)},
            "pairs": {"dataset": pairs_dataset(task)},
        }

    def _layer(self, name: str, context: dict[str, Any]) -> Layer:
        merged: dict[str, Any] = {}
        for doc in load_yaml_documents(render(self.env, name, context), f"templates/{name}"):
            merged = deep_merge(merged, _checked_layer(doc, f"templates/{name}"))
        return Layer(f"templates/{name}", merged)

    def settings(self, model: str, method: str, task: Task) -> dict[str, Any]:
        """All layers merged: the model's complete settings before `--set`."""
        merged: dict[str, Any] = {}
        for layer in self.layers(model, method, task):
            merged = deep_merge(merged, layer.values)
        return merged

    def model_info(self, model: str, method: str | None = None, task: Task | None = None) -> ModelInfo:
        """Facts about a model for `orch list` and for validation."""
        task = task or self.task()
        method = method or self.method_names()[0]
        settings = self.settings(model, method, task)
        return ModelInfo(model, self.family_of(model), settings)


@dataclass(frozen=True)
class ModelInfo:
    """A base model as its template describes it."""

    name: str
    family: str
    settings: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        return self.settings.get(META_KEY, {})

    @property
    def template(self) -> str:
        return str(self.settings.get("template", ""))

    @property
    def model_name_or_path(self) -> str:
        return str(self.settings.get("model_name_or_path", ""))

    @property
    def description(self) -> str:
        return str(self.meta.get("description", ""))

    @property
    def prepare(self) -> dict[str, Any] | None:
        """How `orch models prepare` obtains the weights without a hub, if it can."""
        return self.meta.get("prepare")


def _checked_layer(doc: dict[str, Any], where: str) -> dict[str, Any]:
    for key in (*STAGES, META_KEY):
        if key in doc and not isinstance(doc[key], dict):
            raise OrchError(f"`{key}:` must be a mapping of keys", where=where)
    return doc
