"""The labeling task: instruction, label schema and data files, loaded from one YAML file."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from orchestrator import inputs
from orchestrator.errors import OrchError

FIELD_KINDS = ("ordinal", "categorical")
# A task name is part of run names (`@task`), folder names and config file names: keep it plain.
TASK_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
DEFAULT_MIN_RISK_RECALL = 0.9  # a model below this any-risk recall is flagged wherever it is scored
REQUIRED_SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """One split of a task: its dataset_info.json name and its file (relative to the root)."""

    split: str
    name: str
    file: str


@dataclass(frozen=True)
class Task:
    """A labeling task. Everything that builds or reads prompts and answers uses this."""

    name: str
    path: Path
    instruction: str
    schema: dict[str, Any]
    fields: dict[str, str]
    datasets: dict[str, DatasetSpec]
    risk_field: str | None = None
    risk_negative: str | None = None
    min_risk_recall: float = DEFAULT_MIN_RISK_RECALL
    response_format: str = "json"
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_risk(self) -> bool:
        """Whether the task names a safety-critical field (its recall is shown first and flagged)."""
        return self.risk_field is not None

    def at_risk(self, labels: dict[str, Any]) -> bool:
        """Whether an answer flags some risk (its risk field is not the negative value; False without one)."""
        return self.has_risk and labels.get(str(self.risk_field), self.risk_negative) != self.risk_negative

    @property
    def field_names(self) -> list[str]:
        """Label keys in canonical order (the schema's property order)."""
        return list(self.schema["properties"])

    def user_prompt(self, dialogue: str) -> str:
        """The user turn exactly as LLaMA-Factory's alpaca converter builds it."""
        return f"{self.instruction}\n{dialogue}" if dialogue else self.instruction

    def canonical_answer(self, labels: dict[str, Any]) -> str:
        """The one training answer for `labels`: JSON in schema key order."""
        return json.dumps({k: labels[k] for k in self.field_names}, ensure_ascii=False)

    def answer_errors(self, answer: Any) -> list[str]:
        """Schema violations of a parsed answer, one readable line each (empty if valid)."""
        validator = jsonschema.Draft202012Validator(self.schema)
        errors = []
        for err in sorted(validator.iter_errors(answer), key=lambda e: list(e.path)):
            key = ".".join(str(p) for p in err.path)
            errors.append(f"{key}: {err.message}" if key else err.message)
        return errors

    def field_values(self, name: str) -> list[Any]:
        """Every allowed value of a field (enum, or the integer range)."""
        spec = self.schema["properties"][name]
        if "enum" in spec:
            return list(spec["enum"])
        return list(range(spec["minimum"], spec["maximum"] + 1))

    def context(self) -> dict[str, Any]:
        """What templates see as `task`."""
        return {
            "name": self.name,
            "instruction": self.instruction,
            "schema": self.schema,
            "fields": self.fields,
            "datasets": {s: {"name": d.name, "file": d.file} for s, d in self.datasets.items()},
        }


def load_task(path: Path) -> Task:
    """Load and check a task file; every problem is an OrchError naming the file and key."""
    where = str(path)
    raw = inputs.read_yaml(path)
    if not isinstance(raw, dict):
        raise OrchError("a task file must be a YAML mapping", where=where)
    for key in ("name", "instruction", "schema", "fields", "datasets"):
        if key not in raw:
            raise OrchError(f"missing key `{key}`", where=where, fix="see templates/tasks/student_mental.yaml")
    name = str(raw["name"])
    if not TASK_NAME.match(name):
        raise OrchError(
            f"name: {name!r} is not a task name", where=where, fix="lowercase letters, digits and _, e.g. mood_v2"
        )
    if path.name.endswith(".yaml") and name != path.name[: -len(".yaml")]:
        raise OrchError(
            f"name: {name!r} differs from the file name {path.name!r}: another task's runs and configs would be used",
            where=where,
            fix=f"set `name: {path.name[: -len('.yaml')]}` (or rename the file to {name}.yaml)",
        )
    schema = raw["schema"]
    _check_schema(schema, where)
    fields = _check_fields(raw["fields"], schema, where)
    datasets = _check_datasets(raw["datasets"], where)
    risk = raw.get("risk") or {}
    if not isinstance(risk, dict):
        raise OrchError("`risk` must be a mapping with `field` and `negative`", where=where)
    if risk:
        _check_risk(risk, fields, schema, where)
    return Task(
        name=name,
        path=path,
        instruction=str(raw["instruction"]).strip(),
        schema=schema,
        fields=fields,
        datasets=datasets,
        risk_field=risk.get("field"),
        risk_negative=risk.get("negative"),
        min_risk_recall=float(risk.get("min_recall", DEFAULT_MIN_RISK_RECALL)),
        response_format=str(raw.get("response_format", "json")),
        description=str(raw.get("description", "")).strip(),
        raw=raw,
    )


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict) or schema.get("type") != "object" or not schema.get("properties"):
        raise OrchError("`schema` must be a JSON Schema of type object with properties", where=where)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise OrchError(f"`schema` is not a valid JSON Schema: {exc.message}", where=where) from None


def _check_fields(fields: Any, schema: dict, where: str) -> dict[str, str]:
    props = schema["properties"]
    if not isinstance(fields, dict) or set(fields) != set(props):
        raise OrchError(
            "`fields` must name every schema property once",
            where=where,
            fix=f"give each of {sorted(props)} a kind: {' or '.join(FIELD_KINDS)}",
        )
    for name, kind in fields.items():
        spec = props[name]
        if kind not in FIELD_KINDS:
            raise OrchError(f"fields.{name}: unknown kind {kind!r}", where=where, fix=f"use one of {FIELD_KINDS}")
        if kind == "ordinal" and not (spec.get("type") == "integer" and "minimum" in spec and "maximum" in spec):
            raise OrchError(
                f"schema.properties.{name}: an ordinal field needs type integer with minimum and maximum", where=where
            )
        if kind == "categorical" and not spec.get("enum"):
            raise OrchError(f"schema.properties.{name}: a categorical field needs an `enum`", where=where)
    return dict(fields)


def _check_datasets(datasets: Any, where: str) -> dict[str, DatasetSpec]:
    if not isinstance(datasets, dict):
        raise OrchError("`datasets` must map split names to {name, file}", where=where)
    out = {}
    files: dict[str, str] = {}
    for split, spec in datasets.items():
        if not isinstance(spec, dict) or not spec.get("name") or not spec.get("file"):
            raise OrchError(f"datasets.{split}: needs `name` and `file`", where=where)
        file = spec["file"]
        if not isinstance(file, str) or not file.endswith((".jsonl", ".json")):
            raise OrchError(
                f"datasets.{split}.file: {file!r} is not a .jsonl or .json path",
                where=where,
                fix=f"e.g. data/<task>/{split}.jsonl",
            )
        same = os.path.normpath(file)
        if same in files:
            raise OrchError(
                f"datasets.{split}.file is the same file as datasets.{files[same]}.file ({file}): one split "
                "would overwrite the other",
                where=where,
                fix="give every split its own file",
            )
        files[same] = str(split)
        out[split] = DatasetSpec(split=split, name=str(spec["name"]), file=file)
    missing = [s for s in REQUIRED_SPLITS if s not in out]
    if missing:
        raise OrchError(f"datasets: missing split(s) {missing}", where=where)
    return out


def _check_risk(risk: dict, fields: dict, schema: dict, where: str) -> None:
    name = risk.get("field")
    if fields.get(name) != "categorical":
        raise OrchError(f"risk.field: {name!r} must be a categorical field", where=where)
    if risk.get("negative") not in schema["properties"][name]["enum"]:
        raise OrchError(f"risk.negative: {risk.get('negative')!r} is not a value of {name}", where=where)
    target = risk.get("min_recall", DEFAULT_MIN_RISK_RECALL)
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
        raise OrchError(f"risk.min_recall: {target!r} is not a recall", where=where, fix="a number in (0, 1], e.g. 0.9")
