"""The pre-flight checks. Each rule takes a config and yields Problems.

Every rule catches something that would otherwise crash a job (or train the
wrong thing) after hours in the queue. Rules must not load model weights.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator import lf_adapter as lf
from orchestrator import stages
from orchestrator.datasets import check_rows
from orchestrator.models import ModelSource, resolve_model
from orchestrator.outputs import OutputState, output_status
from orchestrator.stages import TRAINING
from orchestrator.task import Task
from orchestrator.validation.problems import ConfigUnderTest, Problem, Severity

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
EXPORT = stages.EXPORT.name
Rule = Callable[[ConfigUnderTest, "Context"], Iterator[Problem]]

# Names people reach for that LLaMA-Factory does not have (difflib alone picks qwen2_vl).
TEMPLATE_ALIASES = {
    "qwen2": "qwen",
    "qwen2.5": "qwen",
    "qwen2_5": "qwen",
    "qwen25": "qwen",
    "llama3.1": "llama3",
    "llama3.2": "llama3",
    "llama-3": "llama3",
    "gemma-3": "gemma2",
    "gemma3_text": "gemma2",
    "r1": "deepseekr1",
    "deepseek-r1": "deepseekr1",
    "smollm": "smollm2",
    "chatml": "chatml",
}
MAX_ROW_PROBLEMS = 20


class Context:
    """What rules share across configs: tasks by dataset name, tokenizer length caches."""

    def __init__(self, tasks: list[Task]):
        self.task_of_dataset = {d.name: t for t in tasks for d in t.datasets.values()}
        self.length_cache: dict[tuple, Any] = {}
        self.rows_cache: dict[tuple, Any] = {}


# --- LLaMA-Factory's own parser ---------------------------------------------
def llamafactory_parser(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """LLaMA-Factory's HfArgumentParser and checks accept the config."""
    values = dict(cfg.values)
    if cfg.stage != EXPORT and not _has_cuda():
        # Precision flags are checked against the GPU node the job runs on, not this machine.
        for key in ("bf16", "fp16", "pure_bf16"):
            if values.get(key):
                values[key] = False
                yield Problem(
                    INFO,
                    "hardware",
                    cfg.where(key),
                    f"{key} needs a GPU and this machine has none; the config is valid for a GPU node",
                    f"for a run on this CPU use --set {key}=false",
                )
    try:
        lf.parse(values, cfg.stage, cfg.project.root)
    except (ValueError, AssertionError, TypeError, ImportError, RuntimeError) as exc:
        yield from _parser_problems(cfg, str(exc))


def _parser_problems(cfg: ConfigUnderTest, message: str) -> Iterator[Problem]:
    unknown = re.search(r"Some keys are not used by the HfArgumentParser: \[(.*)\]", message)
    if unknown:
        known = list(lf.argument_types(cfg.stage))
        for key in re.findall(r"'([^']+)'", unknown.group(1)):
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "remove it"
            if cfg.stage == EXPORT and key in lf.argument_types(TRAINING):
                hint = "a training key has no place in an export config: move it under `sft:` in the template"
            yield Problem(ERROR, "llamafactory-args", cfg.where(key), f"unknown key for a {cfg.stage} config", hint)
        return
    keys = [k for k in re.findall(r"`(\w+)`", message) if k in cfg.values]
    yield Problem(
        ERROR,
        "llamafactory-args",
        cfg.where(keys[0] if keys else None),
        f"LLaMA-Factory rejects the config: {message.strip()}",
        "fix the key(s) named above (LLaMA-Factory's own argument check)",
    )


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# --- values the parser lets through -----------------------------------------
def numeric_values(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """Keys declared int or float hold numbers (the parser accepts `lora_rank: eight`)."""
    types_ = lf.argument_types(cfg.stage)
    for key, value in cfg.values.items():
        expected = _numeric_kind(types_.get(key))
        if expected is None or value is None:
            continue
        ok = isinstance(value, int) and not isinstance(value, bool)
        if expected is float:
            ok = ok or isinstance(value, float)
        if not ok:
            yield Problem(
                ERROR,
                "numeric",
                cfg.where(key),
                f"expects a {expected.__name__}, got {value!r}",
                f"give a {expected.__name__}",
            )


def _numeric_kind(annotation: Any) -> type | None:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) != 1:
            return None
        annotation = non_none[0]
    return annotation if annotation in (int, float) else None


def max_samples(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """`max_samples` is absent or positive (0 or -1 crash late with a bare StopIteration)."""
    value = cfg.values.get("max_samples")
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        yield Problem(
            ERROR,
            "max-samples",
            cfg.where("max_samples"),
            f"must be a positive integer, got {value!r} (LLaMA-Factory dies with StopIteration)",
            "remove the key to use every row, or give a positive count",
        )


def quantization(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """`quantization_bit` needs bitsandbytes, and 4/8-bit training a CUDA GPU."""
    bits = cfg.values.get("quantization_bit")
    if bits is None:
        return
    method = cfg.values.get("quantization_method", "bnb")
    if method == "bnb" and importlib.util.find_spec("bitsandbytes") is None:
        yield Problem(
            ERROR,
            "quantization",
            cfg.where("quantization_bit"),
            "needs bitsandbytes, which is not installed",
            "pip install bitsandbytes",
        )
    if cfg.stage == EXPORT:
        yield Problem(
            ERROR,
            "quantization",
            cfg.where("quantization_bit"),
            "a quantized base cannot be merged with an adapter",
            "remove quantization_bit from the export config",
        )
    elif not _has_cuda():
        yield Problem(
            INFO,
            "hardware",
            cfg.where("quantization_bit"),
            f"{bits}-bit bitsandbytes training needs a CUDA GPU; this machine has none, the cluster's GPU nodes do",
        )


# --- chat template ------------------------------------------------------------
def chat_template(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """`template` is in LLaMA-Factory's registry; reasoning templates warn on JSON-only tasks."""
    name = cfg.values.get("template")
    if not name:
        yield Problem(
            WARNING,
            "template",
            cfg.where(),
            "no `template`: LLaMA-Factory guesses from the tokenizer",
            "set `template:` to the model's LLaMA-Factory template",
        )
        return
    registry = lf.templates()
    if name not in registry:
        suggestions = [TEMPLATE_ALIASES[name]] if name in TEMPLATE_ALIASES else []
        suggestions += [n for n in difflib.get_close_matches(name, list(registry), n=3) if n not in suggestions]
        fix = f"did you mean {', '.join(suggestions)}?" if suggestions else "see llamafactory.data.template.TEMPLATES"
        yield Problem(
            ERROR,
            "template",
            cfg.where("template"),
            f"{name!r} is not a LLaMA-Factory template (the job would fail at start)",
            fix,
        )
        return
    task = _task(cfg, ctx)
    if lf.is_reasoning_template(name) and task is not None and task.response_format == "json":
        plain = f"{name}_nothink"
        fix = f"use `{plain}`" if plain in registry else "use a non-reasoning template for this model if there is one"
        yield Problem(
            WARNING,
            "template",
            cfg.where("template"),
            f"{name!r} is a reasoning template: trained answers get a <think> block, "
            f"but task {task.name} wants the JSON object alone",
            fix,
        )


def _task(cfg: ConfigUnderTest, ctx: Context) -> Task | None:
    for name in _dataset_names(cfg):
        if name in ctx.task_of_dataset:
            return ctx.task_of_dataset[name]
    return None


def _dataset_names(cfg: ConfigUnderTest, keys: tuple[str, ...] = ("dataset", "eval_dataset")) -> list[str]:
    names = []
    for key in keys:
        value = cfg.values.get(key)
        if isinstance(value, str):
            names += [n.strip() for n in value.split(",") if n.strip()]
        elif isinstance(value, list):
            names += [str(n) for n in value]
    return names


# --- datasets -----------------------------------------------------------------
def datasets(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """Every dataset is declared, its file exists, its columns match, its answers fit the schema."""
    if cfg.stage == EXPORT:
        return
    names = _dataset_names(cfg)
    if not names:
        return
    info_path, info, problem = _dataset_info(cfg)
    if problem:
        yield problem
        return
    for key in ("dataset", "eval_dataset"):
        for name in _dataset_names(cfg, (key,)):
            yield from _check_dataset(cfg, ctx, key, name, info_path, info)


def _dataset_info(cfg: ConfigUnderTest) -> tuple[Path, dict, Problem | None]:
    dataset_dir = cfg.path("dataset_dir") or cfg.project.resolve("data")
    info_path = dataset_dir / "dataset_info.json"
    if not info_path.is_file():
        return (
            info_path,
            {},
            Problem(
                ERROR,
                "datasets",
                cfg.where("dataset_dir"),
                f"{cfg.project.relative(info_path)} not found",
                "run `orch render`",
            ),
        )
    try:
        return info_path, json.loads(info_path.read_text(encoding="utf-8")), None
    except json.JSONDecodeError as exc:
        return (
            info_path,
            {},
            Problem(
                ERROR,
                "datasets",
                f"{cfg.project.relative(info_path)}:{exc.lineno}",
                f"not valid JSON: {exc.msg}",
                "run `orch render`",
            ),
        )


def _check_dataset(cfg, ctx, key, name, info_path, info) -> Iterator[Problem]:
    rel_info = cfg.project.relative(info_path)
    if name not in info:
        close = difflib.get_close_matches(name, list(info), n=3)
        yield Problem(
            ERROR,
            "datasets",
            cfg.where(key),
            f"dataset {name!r} is not declared in {rel_info}",
            f"did you mean {', '.join(close)}?" if close else "declare it in the task file and run `orch render`",
        )
        return
    entry = info[name]
    if "file_name" not in entry:
        yield Problem(INFO, "datasets", cfg.where(key), f"dataset {name!r} is not a local file; not checked")
        return
    path = info_path.parent / entry["file_name"]
    if not path.is_file():
        yield Problem(
            ERROR,
            "datasets",
            cfg.where(key),
            f"dataset {name!r}: file {cfg.project.relative(path)} does not exist",
            "prepare the data (see README, 'Preparing data') or fix file_name in the task file",
        )
        return
    if entry.get("formatting", "alpaca") != "alpaca":
        yield Problem(INFO, "datasets", cfg.where(key), f"dataset {name!r}: only alpaca datasets are row-checked")
        return
    task = ctx.task_of_dataset.get(name)
    rows, problems = _rows(ctx, path, entry.get("columns"), task)
    for p in problems[:MAX_ROW_PROBLEMS]:
        where = cfg.project.relative(p.path) + (f":{p.line}" if p.line else "")
        yield Problem(ERROR, "dataset-rows", where, p.message, p.fix)
    if len(problems) > MAX_ROW_PROBLEMS:
        yield Problem(
            ERROR,
            "dataset-rows",
            cfg.project.relative(path),
            f"... and {len(problems) - MAX_ROW_PROBLEMS} more bad rows",
            "run `orch validate --json` for all",
        )
    if not rows:
        yield Problem(ERROR, "datasets", cfg.project.relative(path), f"dataset {name!r} has no usable rows")
    if task is None:
        yield Problem(
            INFO, "datasets", cfg.where(key), f"no task declares dataset {name!r}: answers not schema-checked"
        )


def _rows(ctx: Context, path: Path, columns: dict | None, task: Task | None):
    key = (path, path.stat().st_mtime_ns, json.dumps(columns, sort_keys=True), task.name if task else None)
    if key not in ctx.rows_cache:
        ctx.rows_cache[key] = check_rows(path, columns, task)
    return ctx.rows_cache[key]


# --- model ------------------------------------------------------------------
def model_path(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """The model is a local folder that exists, or a hub id in a local cache (else a warning)."""
    name = cfg.values.get("model_name_or_path")
    if not name:
        yield Problem(ERROR, "model", cfg.where(), "no `model_name_or_path`", "set it in the model template")
        return
    resolved = resolve_model(cfg.project, str(name))
    if resolved.source is ModelSource.MISSING_LOCAL:
        yield Problem(
            ERROR,
            "model",
            cfg.where("model_name_or_path"),
            f"local path {name} does not exist",
            "fix the path, or use a hub id with a prepared model cache",
        )
    elif resolved.source is ModelSource.NOT_CACHED:
        yield Problem(
            WARNING,
            "model",
            cfg.where("model_name_or_path"),
            f"{name} is not in the model cache ({cfg.project.model_cache}) or the Hugging Face cache here; "
            "jobs never download, so the node running the job must have it",
            resolved.download_hint(cfg.project),
        )
    for key in ("adapter_name_or_path",):
        adapter = cfg.path(key)
        if adapter is not None and not adapter.is_dir():
            # A rendered run's adapter is written by its own train stage, which orch runs first.
            yield Problem(
                INFO if cfg.origins else WARNING,
                "model",
                cfg.where(key),
                f"{cfg.project.relative(adapter)} does not exist yet",
                "train first (the sft stage writes it), or fix the path",
            )


# --- token lengths against cutoff_len ------------------------------------------
def cutoff(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """No training answer is cut by cutoff_len (LLaMA-Factory's own truncation rule)."""
    if cfg.stage == EXPORT or not cfg.values.get("template") or cfg.values.get("template") not in lf.templates():
        return
    resolved = resolve_model(cfg.project, str(cfg.values.get("model_name_or_path", "")))
    if not resolved.available:
        yield Problem(
            INFO, "cutoff", cfg.where("cutoff_len"), "token lengths not checked: the tokenizer is not available here"
        )
        return
    cutoff_len = int(cfg.values.get("cutoff_len", 2048))
    info_path, info, problem = _dataset_info(cfg)
    if problem:
        return
    from orchestrator.validation.lengths import measure

    key = stages.get(cfg.stage).data_keys[:1]
    for name in _dataset_names(cfg, key):
        entry = info.get(name) or {}
        path = info_path.parent / entry.get("file_name", "")
        if not path.is_file():
            continue
        stats = measure(ctx, resolved.path, cfg.values["template"], path, entry.get("columns"), cutoff_len)
        if stats.answers_cut:
            yield Problem(
                ERROR,
                "cutoff",
                cfg.where("cutoff_len"),
                f"cutoff_len {cutoff_len} cuts the answer of {stats.answers_cut} of {stats.rows} rows of "
                f"{name} (tokens prompt+answer p50 {stats.p50}, p95 {stats.p95}, max {stats.max})",
                f"set cutoff_len to at least {stats.suggested}, or shorten the inputs",
            )
        elif stats.prompts_cut:
            yield Problem(
                WARNING,
                "cutoff",
                cfg.where("cutoff_len"),
                f"cutoff_len {cutoff_len} cuts the prompt of {stats.prompts_cut} of {stats.rows} rows of "
                f"{name} (p50 {stats.p50}, p95 {stats.p95}, max {stats.max}); the end of the dialogue is lost",
                f"set cutoff_len to {stats.suggested}, or tail-truncate the dialogues",
            )


# --- output_dir ---------------------------------------------------------------
def output_dir(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """Say what a training job will do with its output_dir: start, resume, or refuse."""
    if not stages.get(cfg.stage).trains or not cfg.values.get("output_dir"):
        return
    path = cfg.path("output_dir")
    status = output_status(path)
    rel = cfg.project.relative(path)
    if status.state is OutputState.BLOCKED:
        yield Problem(
            ERROR,
            "output-dir",
            cfg.where("output_dir"),
            f"{rel} holds weights but no checkpoint: LLaMA-Factory refuses to start",
            "use another output_dir, or `orch submit --restart` (moves the old one aside)",
        )
    elif status.state is OutputState.FINISHED:
        yield Problem(
            INFO,
            "output-dir",
            cfg.where("output_dir"),
            f"{rel} is a finished run",
            "`orch submit --restart` trains again and keeps the old outputs aside",
        )
    elif status.state is OutputState.RESUMABLE:
        yield Problem(
            INFO, "output-dir", cfg.where("output_dir"), f"{rel} is resumable from {status.latest_checkpoint.name}"
        )
    if status.incomplete:
        names = ", ".join(p.name for p in status.incomplete)
        yield Problem(
            WARNING,
            "output-dir",
            cfg.where("output_dir"),
            f"{rel} has checkpoint(s) cut off while being written: {names}",
            "orch submit sets them aside and resumes from the latest complete one",
        )
    if cfg.values.get("overwrite_output_dir") and status.checkpoints:
        yield Problem(
            WARNING,
            "output-dir",
            cfg.where("overwrite_output_dir"),
            f"overwrite_output_dir does not remove the {len(status.checkpoints)} old checkpoint(s) in {rel}; "
            "a later run without it silently resumes from them",
            "set it to false and let orch resume or restart explicitly",
        )


RULES: tuple[Rule, ...] = (
    llamafactory_parser,
    numeric_values,
    max_samples,
    quantization,
    chat_template,
    datasets,
    model_path,
    cutoff,
    output_dir,
)
