"""The pre-flight checks. Each rule takes a config and yields Problems.

Every rule catches something that would otherwise crash a job (or train the
wrong thing) after hours in the queue. Rules must not load model weights.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator

from orchestrator import lf_adapter as lf
from orchestrator import stages
from orchestrator.models import ModelSource, resolve_model
from orchestrator.outputs import OutputState, output_status
from orchestrator.render import SET_ORIGIN
from orchestrator.secrets import has_url_password, is_secret_key
from orchestrator.stages import TRAINING
from orchestrator.validation import references, schedule, schema
from orchestrator.validation.context import Context, dataset_info, dataset_names, entry_problem, rows, task_of
from orchestrator.validation.problems import ConfigUnderTest, Problem, Severity
from orchestrator.validation.references import data_fix

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


# --- LLaMA-Factory's own parser ---------------------------------------------
def llamafactory_parser(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """LLaMA-Factory's parser and the trainer's own consistency checks accept the config, as on a GPU node.

    Keys an earlier rule rejected are left out, so each problem is said once and the
    parser's checks still run on everything else.
    """
    if cfg.stage != EXPORT and not _has_cuda():
        for key in ("bf16", "fp16", "pure_bf16"):
            if cfg.values.get(key) and key not in cfg.rejected:
                yield Problem(
                    INFO,
                    "hardware",
                    cfg.where(key),
                    f"{key} needs a GPU and this machine has none; checked as on a GPU node",
                    f"for a run on this CPU use --set {key}=false",
                )
    try:
        cfg.parsed = lf.parse(cfg.usable(), cfg.stage, cfg.project.root)
    except Exception as exc:  # noqa: BLE001 - whatever the parser raises, the job would raise on the node
        yield from _parser_problems(cfg, str(exc) or type(exc).__name__)


def _parser_problems(cfg: ConfigUnderTest, message: str) -> Iterator[Problem]:
    unknown = re.search(r"Some keys are not used by the HfArgumentParser: \[(.*)\]", message)
    if unknown:
        known = list(lf.argument_types(cfg.stage))
        for key in re.findall(r"'([^']+)'", unknown.group(1)):
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "remove it"
            if cfg.stage == EXPORT and key in lf.argument_types(TRAINING):
                hint = "a training key has no place in an export config: move it under `sft:` in the template"
            yield Problem(ERROR, "llamafactory-args", cfg.where(key), f"unknown key for {_a(cfg.stage)} config", hint)
        return
    missing = _missing_package(message)
    words = re.findall(r"\w+", message)
    keys = [k for k in words if k in cfg.values] or (missing and []) or _culprits(cfg, message)
    keys = keys or [k for k in words if k in lf.fields(cfg.stage)]  # a key the config lacks
    named = f" (it comes from {', '.join(keys)})" if len(keys) > 1 else ""
    if missing:
        fix = f"pip install {missing} into the job's environment (.venv), or remove the key that needs it"
    elif keys:
        fix = f"change {' or '.join(keys)} (LLaMA-Factory's own argument check)"
    else:
        fix = "see LLaMA-Factory's message"
    yield Problem(
        ERROR,
        "llamafactory-args",
        cfg.where(keys[0] if keys else None),
        f"LLaMA-Factory rejects the config: {message.strip()}{named}",
        fix,
    )


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _missing_package(message: str) -> str | None:
    """The distribution a version check found missing (`deepspeed>=0.9.3`, ...), if that is the complaint."""
    if not re.search(r"not found|No package metadata|not installed|pip install|please install", message, re.I):
        return None
    found = re.search(r"pip install[\s`'\"]+([A-Za-z][\w.\-\[\]]*(?:[<>=!~]=?[\w.]+)?)", message, re.I)
    found = found or re.search(r"'([A-Za-z][\w.-]*(?:[<>=!~]=?[\w.]+)?)' distribution", message)
    found = found or re.search(r"install ([A-Za-z][\w.-]*)", message, re.I)
    return found.group(1) if found else None


def _culprits(cfg: ConfigUnderTest, message: str) -> list[str]:
    """The keys without which LLaMA-Factory's parser no longer raises `message`, for checks that name none."""
    found = []
    for key in cfg.values:
        trial = {k: v for k, v in cfg.values.items() if k != key}
        try:
            lf.parse(trial, cfg.stage, cfg.project.root)
        except Exception as exc:  # noqa: BLE001 - a different complaint still clears this key
            if str(exc) == message or key in str(exc):
                continue
        found.append(key)
    return found


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def quantization(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """LLaMA-Factory's own quantization checks (bit widths per method, library versions), and what needs a GPU."""
    bits = cfg.values.get("quantization_bit")
    if bits is None or "quantization_bit" in cfg.rejected:
        return
    if cfg.stage == EXPORT:
        yield Problem(
            ERROR,
            "quantization",
            cfg.where("quantization_bit"),
            "a quantized base cannot be merged with an adapter",
            "remove quantization_bit from the export config",
        )
        return
    if cfg.parsed is not None:
        try:
            applied = lf.check_quantization(cfg.parsed[0], trainable=bool(cfg.values.get("do_train")))
        except Exception as exc:  # noqa: BLE001 - what model loading would raise on the node
            method = cfg.values.get("quantization_method", "bnb")
            yield Problem(
                ERROR,
                "quantization",
                cfg.where("quantization_bit"),
                f"quantization_bit {bits} with quantization_method {method}: {_first_line(exc)}",
                _quantization_fix(exc),
            )
            return
        if not applied:
            method = cfg.values.get("quantization_method", "bnb")
            yield Problem(
                ERROR,
                "quantization",
                cfg.where("quantization_method" if "quantization_method" in cfg.values else "quantization_bit"),
                f"LLaMA-Factory does not quantize on the fly with {method}: quantization_bit {bits} "
                "would be silently ignored and the model trained unquantized",
                "use quantization_method: bnb (or hqq, eetq), or a model that is already quantized",
            )
            return
    if not _has_cuda():
        yield Problem(
            INFO,
            "hardware",
            cfg.where("quantization_bit"),
            f"{bits}-bit bitsandbytes training needs a CUDA GPU; this machine has none, the cluster's GPU nodes do",
        )


def _first_line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).strip().splitlines()[0]


def _quantization_fix(exc: BaseException) -> str:
    text = str(exc)
    missing = re.search(r"(bitsandbytes|hqq|eetq)[\w.<>=]*", text)
    if isinstance(exc, ImportError) or "pip install" in text or "required" in text.lower():
        return f"pip install {missing.group(0) if missing else 'the quantization library'} into the job's environment"
    return "QLoRA is quantization_bit 4 (or 8) with the default quantization_method bnb"


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
    task = task_of(cfg, ctx)
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


# --- datasets -----------------------------------------------------------------
def datasets(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """Every dataset is declared, its file exists, its columns match, its answers fit the schema."""
    if cfg.stage == EXPORT:
        return
    names = dataset_names(cfg)
    if not names:
        return
    info_path, info, problem = dataset_info(cfg)
    if problem:
        yield problem
        return
    for key in ("dataset", "eval_dataset"):
        for name in dataset_names(cfg, (key,)):
            yield from _check_dataset(cfg, ctx, key, name, info_path, info)


def _check_dataset(cfg, ctx, key, name, info_path, info) -> Iterator[Problem]:
    rel_info = cfg.project.relative(info_path)
    if name not in info:
        close = difflib.get_close_matches(name, list(info), n=3)
        yield Problem(
            ERROR,
            "datasets",
            cfg.where(key),
            f"dataset {name!r} is not declared in {rel_info}",
            f"did you mean {', '.join(close)}?"
            if close
            else data_fix(cfg.stage)
            if stages.data_maker(cfg.stage)
            else "declare it in the task file and run `orch render`",
        )
        return
    entry = info[name]
    fix = data_fix(cfg.stage) if stages.data_maker(cfg.stage) else "fix the task file and run `orch render`"
    shape = entry_problem(entry)
    if shape:
        yield Problem(ERROR, "datasets", rel_info, f"dataset {name!r}: {shape}", fix)
        return
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
            data_fix(cfg.stage)
            if stages.data_maker(cfg.stage)
            else "prepare the data (see README, 'Preparing data') or fix file_name in the task file",
        )
        return
    needs_ranking = lf.dataset_stage(str(cfg.values.get("stage", "sft"))) == "rm"
    if cfg.stage != stages.PREDICT.name and bool(entry.get("ranking", False)) != needs_ranking:
        kind = "pairs of chosen/rejected answers (`ranking: true`)" if needs_ranking else "single answers"
        yield Problem(
            ERROR,
            "datasets",
            cfg.where(key),
            f"stage {cfg.values.get('stage', 'sft')} trains on {kind}; dataset {name!r} is not one "
            "(LLaMA-Factory stops with 'The dataset is not applicable in the current training stage')",
            "give a dataset made for this stage, or the stage the dataset is made for",
        )
        return
    if entry.get("formatting", "alpaca") != "alpaca":
        yield Problem(INFO, "datasets", cfg.where(key), f"dataset {name!r}: only alpaca datasets are row-checked")
        return
    task = ctx.task_of_dataset.get(name)
    found_rows, problems = rows(ctx, path, entry.get("columns"), task, bool(entry.get("ranking", False)))
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
    if not found_rows:
        yield Problem(ERROR, "datasets", cfg.project.relative(path), f"dataset {name!r} has no usable rows")
    if task is None:
        yield Problem(
            INFO, "datasets", cfg.where(key), f"no task declares dataset {name!r}: answers not schema-checked"
        )


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
    cutoff_len = cfg.usable().get("cutoff_len", 2048)
    if not isinstance(cutoff_len, int):
        return
    info_path, info, problem = dataset_info(cfg)
    if problem:
        return
    from orchestrator.validation.lengths import measure

    key = stages.get(cfg.stage).data_keys[:1]
    for name in dataset_names(cfg, key):
        entry = info.get(name) or {}
        if entry_problem(entry):
            continue
        path = info_path.parent / entry.get("file_name", "")
        if not path.is_file():
            continue
        ranking = bool(entry.get("ranking", False))
        stats = measure(ctx, resolved.path, cfg.values["template"], path, entry.get("columns"), cutoff_len, ranking)
        if stats.answers_cut:
            yield Problem(
                ERROR,
                "cutoff",
                cfg.where("cutoff_len"),
                f"cutoff_len {cutoff_len} cuts the answer of {stats.answers_cut} of {stats.rows} rows of "
                f"{name} (tokens prompt+answer p50 {stats.p50}, p95 {stats.p95}, max {stats.max})",
                f"set cutoff_len to at least {stats.suggested}, or shorten the inputs",
            )
        elif stats.prompts_cut and cfg.stage != stages.PREDICT.name:
            yield Problem(
                WARNING,
                "cutoff",
                cfg.where("cutoff_len"),
                f"cutoff_len {cutoff_len} cuts the prompt of {stats.prompts_cut} of {stats.rows} rows of "
                f"{name} (p50 {stats.p50}, p95 {stats.p95}, max {stats.max}); the end of the dialogue is lost",
                f"set cutoff_len to {stats.suggested}, or tail-truncate the dialogues",
            )
        yield from _new_tokens(cfg, name, stats)


def _new_tokens(cfg: ConfigUnderTest, name: str, stats) -> Iterator[Problem]:
    """A prediction run generates room for the longest expected answer (else the JSON is cut mid-object)."""
    budget = cfg.usable().get("max_new_tokens")
    if cfg.stage == stages.PREDICT.name and isinstance(budget, int) and budget < stats.max_answer:
        yield Problem(
            ERROR,
            "cutoff",
            cfg.where("max_new_tokens"),
            f"max_new_tokens {budget} is shorter than the longest expected answer of {name} "
            f"({stats.max_answer} tokens): predictions would stop mid-answer",
            f"set max_new_tokens to at least {stats.max_answer + 16}",
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


def does_something(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """A training config trains, evaluates or predicts; an export config says where to write."""
    if cfg.stage == EXPORT and not cfg.values.get("export_dir"):
        yield Problem(
            ERROR,
            "llamafactory-args",
            cfg.where("export_dir"),
            "an export config without export_dir: `llamafactory-cli export` stops at once",
            "set export_dir to the folder the merged model goes to",
        )
    elif cfg.stage == TRAINING and not any(cfg.values.get(k) for k in ("do_train", "do_eval", "do_predict")):
        yield Problem(
            ERROR,
            "llamafactory-args",
            cfg.where("do_train"),
            "do_train, do_eval and do_predict are all off: the job would load the model and do nothing",
            "set do_train: true (or do_predict: true for a prediction config)",
        )


def credentials(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """No credential is written into a config: templates and rendered configs are committed files."""
    for key, value in cfg.values.items():
        if isinstance(value, str) and has_url_password(value):
            yield Problem(
                ERROR,
                "credentials",
                cfg.where(key),
                "a password inside a URL would be written to the job's config in clear",
                "give the URL without credentials and the credentials through the environment",
            )
        if not is_secret_key(key) or cfg.origins.get(key) == SET_ORIGIN:
            continue
        yield Problem(
            ERROR if cfg.origins else WARNING,
            "credentials",
            cfg.where(key),
            "a credential in a config file is stored in clear (and rendered configs are committed)",
            f"remove it and give it at submit time: --set {key}=... (kept out of every file), "
            "or in the job's environment (HF_TOKEN for the hub)",
        )


def likely_mistakes(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """Legal values that are almost certainly not meant."""
    values = cfg.usable()
    if values.get("fp16") and values.get("pure_bf16"):
        yield Problem(
            WARNING,
            "likely-mistake",
            cfg.where("fp16"),
            "fp16 mixed precision over pure_bf16 weights: two precisions fight over the same model",
            "keep pure_bf16 (or bf16) alone",
        )
    lr = values.get("learning_rate")
    if stages.get(cfg.stage).trains and isinstance(lr, (int, float)) and lr >= 0.01:
        yield Problem(
            WARNING,
            "likely-mistake",
            cfg.where("learning_rate"),
            f"learning_rate {lr:g} is far above fine-tuning rates (1e-6 to 1e-3); training will diverge",
            "check the exponent: 5e-5 for full fine-tuning, 1e-4 to 5e-4 for LoRA",
        )
    if cfg.stage == stages.PREDICT.name and values.get("do_sample"):
        yield Problem(
            WARNING,
            "likely-mistake",
            cfg.where("do_sample"),
            "sampled predictions make the scores change from run to run",
            "score with greedy decoding: do_sample: false",
        )
    steps, epochs = values.get("max_steps"), values.get("num_train_epochs")
    if stages.get(cfg.stage).trains and isinstance(steps, int) and steps > 0 and "num_train_epochs" in values:
        yield Problem(
            INFO, "schedule", cfg.where("max_steps"), f"max_steps {steps} overrides num_train_epochs {epochs}"
        )


# The gates run first and reject the keys they find unusable; LLaMA-Factory's parser and the
# rules after it see only the usable values, so every problem is said once, by its clearest rule.
GATES: tuple[Rule, ...] = (schema.declared_types, schema.value_ranges, references.referenced_paths)
RULES: tuple[Rule, ...] = (
    llamafactory_parser,
    does_something,
    quantization,
    references.integrations,
    schedule.checkpoint_schedule,
    chat_template,
    references.template_matches_model,
    references.lora_targets,
    references.model_fit,
    datasets,
    model_path,
    cutoff,
    output_dir,
    credentials,
    likely_mistakes,
)
