"""Everything a config refers to exists where the job will look.

Files and folders (which keys hold paths is read from LLaMA-Factory's field names
and help), reporting integrations (the trainer's own callbacks, built as the
trainer builds them), LoRA target modules (the model's architecture built on the
meta device, no weights loaded) and the chat template's turn markers against
the model's tokenizer.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator import inputs, stages
from orchestrator import lf_adapter as lf
from orchestrator.inputs import InputError
from orchestrator.layout import PREFERENCE, TASK_SEP
from orchestrator.models import looks_like_hub_id, resolve_model
from orchestrator.outputs import checkpoint_problems
from orchestrator.validation.context import Context
from orchestrator.validation.problems import ConfigUnderTest, Problem, Severity
from orchestrator.validation.schema import takes_comma_list

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

_PATH_NAME = re.compile(
    r"(_dir|_path|_file|_folder|_name_or_path|_adapters|^deepspeed|^resume_from_checkpoint|_config)$"
)
# Help that says the job writes there (or may): those paths need not exist beforehand.
_WRITES = re.compile(r"\b(save|saved|write|written|store|output|offload|export|log|logs|cache)\b", re.I)
# Keys that may name a model on the hub instead of a path.
_MODEL_ID = re.compile(r"(_name_or_path|_model|_adapters|generation_config)$")
LORA_WRAPPABLE = {"Linear", "Embedding", "Conv1d", "Conv2d", "Conv3d", "Conv1D", "MultiheadAttention"}


def input_path_keys(stage: str) -> list[str]:
    """Keys whose value is a file or folder the job reads (derived from names and help)."""
    out = []
    for name, spec in lf.fields(stage).items():
        if name == "model_name_or_path" or not _PATH_NAME.search(name) or _WRITES.search(spec.help):
            continue
        out.append(name)
    return out


def _paths(cfg: ConfigUnderTest, key: str) -> list[str]:
    value = cfg.values.get(key)
    if not isinstance(value, str) or not value.strip() or value.lstrip().startswith("{"):
        return []
    spec = lf.fields(cfg.stage).get(key)
    items = value.split(",") if spec is not None and takes_comma_list(spec) else [value]
    return [item.strip() for item in items if item.strip()]


def referenced_paths(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """Files and folders the config reads exist (relative paths resolve against the project root)."""
    for key in input_path_keys(cfg.stage):
        for value in _paths(cfg, key):
            if _MODEL_ID.search(key) and (looks_like_hub_id(value) or "://" in value):
                continue  # a hub id: the model rule checks the cache
            path = cfg.project.resolve(value)
            if path.exists():
                yield from _kind_problems(cfg, key, value, path)
                yield from _checkpoint_problems(cfg, key, path)
                continue
            if key == "adapter_name_or_path" and (cfg.origins or _under(path, cfg.project.resolve("saves"))):
                # Written by a training run: orch runs a rendered run's sft stage first.
                yield Problem(
                    INFO if cfg.origins else WARNING,
                    "paths",
                    cfg.where(key),
                    f"{cfg.project.relative(path)} does not exist yet",
                    "train first (the sft stage writes it), or fix the path",
                )
                continue
            maker = stages.data_maker(cfg.stage)
            if key == "dataset_dir" and maker and _pairs_folder(path):  # an SFT run's pairs folder, to come
                cfg.rejected.add(key)  # nothing to check the datasets against yet
                yield Problem(
                    INFO if cfg.origins else WARNING,
                    "paths",
                    cfg.where(key),
                    f"{cfg.project.relative(path)} does not exist yet: the {maker} stage writes the {cfg.stage} "
                    "stage's data there",
                    data_fix(cfg.stage),
                )
                continue
            yield _reject(
                cfg,
                key,
                f"{value} does not exist (jobs run in the project root, {cfg.project.root})",
                "fix the path, or create what it names before submitting",
            )


def _pairs_folder(path: Path) -> bool:
    """`<...>/sft[@task]/preference`: where the pairs stage writes (the layout's preference folder)."""
    return path.name == PREFERENCE and path.parent.name.partition(TASK_SEP)[0] == stages.SFT.folder


def data_fix(stage: str) -> str:
    """How the data of a stage that trains on what an orch stage writes is made."""
    maker = stages.data_maker(stage)
    return f"build it: `orch dpo pairs MODEL/METHOD`, or `orch submit MODEL --then {maker},{stage}` (rebuilds them)"


def _reject(cfg: ConfigUnderTest, key: str, message: str, fix: str) -> Problem:
    """A path problem that sets the key aside (later rules and the parser do not see it)."""
    cfg.rejected.add(key)
    return Problem(ERROR, "paths", cfg.where(key), message, fix)


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _kind_problems(cfg: ConfigUnderTest, key: str, value: str, path: Path) -> Iterator[Problem]:
    """A folder where a folder is read (`_dir`, `_folder`), a file where a file is (`_file`, configs)."""
    wants_dir = key.endswith(("_dir", "_folder"))
    wants_file = key.endswith(("_file", "_config")) or key == "deepspeed"
    if (wants_dir and not path.is_dir()) or (wants_file and not path.is_file()):
        kind, other = ("folder", "file") if wants_dir else ("file", "folder")
        yield _reject(cfg, key, f"{value} is a {other}, not a {kind}", f"give the {kind} itself")
    elif key.endswith(("adapter_name_or_path", "_adapters")) and not (path / "adapter_config.json").is_file():
        yield _reject(
            cfg,
            key,
            f"{value} has no adapter_config.json: not a LoRA adapter folder",
            "point it at the folder a LoRA training wrote (its output_dir, or a checkpoint-N in it)",
        )


def _checkpoint_problems(cfg: ConfigUnderTest, key: str, path: Path) -> Iterator[Problem]:
    if key == "resume_from_checkpoint" and (problems := checkpoint_problems(path)):
        yield _reject(
            cfg,
            key,
            f"{cfg.project.relative(path)} is not a complete checkpoint: {'; '.join(problems)}",
            "point it at a complete checkpoint-N folder, or leave it out and let orch resume",
        )
    elif key == "deepspeed" and path.is_file():
        try:
            inputs.read_json(path)
        except InputError as exc:
            yield _reject(cfg, key, f"{exc.where}: {exc.message}", exc.fix or "fix the file")


# --- report_to ----------------------------------------------------------------
def integrations(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """Each `report_to` integration exists and its callback builds in this environment, as the trainer builds it."""
    value = cfg.values.get("report_to")
    if value is None or "report_to" in cfg.rejected or not stages.get(cfg.stage).trains and cfg.stage == "export":
        return
    names = [value] if isinstance(value, str) else [str(v) for v in value] if isinstance(value, list) else []
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    known = list(INTEGRATION_TO_CALLBACK)
    if len(names) > 1 and {"none", "all"} & set(names):
        yield Problem(
            ERROR,
            "report-to",
            cfg.where("report_to"),
            f"{names}: `none` and `all` stand alone, not in a list (the trainer rejects them there)",
            "report_to: none, report_to: all, or a list of integrations",
        )
        return
    for name in names:
        if name in ("none", "all"):
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            close = difflib.get_close_matches(name, known, n=1)
            several = " (several: a YAML list, `report_to: [wandb, tensorboard]`)" if "," in name else ""
            yield Problem(
                ERROR,
                "report-to",
                cfg.where("report_to"),
                f"{name!r} is not an integration the trainer knows{several}",
                (f"did you mean {close[0]}? " if close else "") + f"one of: none, all, {', '.join(known)}",
            )
            continue
        try:
            with lf.quiet():
                INTEGRATION_TO_CALLBACK[name]()
        except Exception as exc:  # noqa: BLE001 - the trainer would raise the same at start
            yield Problem(
                ERROR,
                "report-to",
                cfg.where("report_to"),
                f"{name}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
                "install it into the job's environment (.venv), or `report_to: none`",
            )


# --- the model's architecture -----------------------------------------------------
def _model_dir(cfg: ConfigUnderTest) -> Path | None:
    name = cfg.values.get("model_name_or_path")
    if not isinstance(name, str) or "model_name_or_path" in cfg.rejected:
        return None
    return resolve_model(cfg.project, name).path


def architecture(ctx: Context, model_dir: Path) -> tuple[str, dict[str, str]] | None:
    """(architecture name, module name -> class name), built on the meta device; None if it cannot be built."""
    config_file = model_dir / "config.json"
    key = ("modules", str(model_dir), config_file.stat().st_mtime_ns if config_file.is_file() else None)
    if key not in ctx.model_cache:
        ctx.model_cache[key] = _build_on_meta(model_dir)
    return ctx.model_cache[key]


def _build_on_meta(model_dir: Path) -> tuple[str, dict[str, str]] | None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        with lf.quiet():
            config = AutoConfig.from_pretrained(str(model_dir))
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(config)
    except Exception:  # noqa: BLE001 - an architecture this transformers cannot build: not checked
        return None
    return type(model).__name__, {name: type(module).__name__ for name, module in model.named_modules() if name}


def lora_targets(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """`lora_target` / `additional_target` name modules the model has, of a kind LoRA can wrap."""
    if cfg.stage == "export" or cfg.values.get("finetuning_type", "lora") != "lora":
        return
    keys = [k for k in ("lora_target", "additional_target") if cfg.values.get(k) and k not in cfg.rejected]
    model_dir = _model_dir(cfg) if keys else None
    built = architecture(ctx, model_dir) if model_dir is not None else None
    if built is None:
        if keys and model_dir is not None:
            yield Problem(INFO, "lora-target", cfg.where(keys[0]), "the architecture cannot be built here; not checked")
        return
    arch, modules = built
    leaves = sorted({name.rsplit(".", 1)[-1] for name, kind in modules.items() if kind in LORA_WRAPPABLE})
    for key in keys:
        for target in _targets(cfg.values[key]):
            if target == "all" and key == "lora_target":
                continue
            matched = {kind for name, kind in modules.items() if name == target or name.endswith("." + target)}
            if not matched:
                close = difflib.get_close_matches(target, leaves, n=1)
                yield Problem(
                    ERROR,
                    "lora-target",
                    cfg.where(key),
                    f"{target!r} is not a module of {arch}",
                    (f"did you mean {close[0]}? " if close else "") + f"its layers: all, {', '.join(leaves)}",
                )
            elif key == "lora_target" and not matched & LORA_WRAPPABLE:
                yield Problem(
                    ERROR,
                    "lora-target",
                    cfg.where(key),
                    f"{target!r} names {', '.join(sorted(matched))} modules of {arch}, which LoRA cannot wrap",
                    f"name layers instead: all, {', '.join(leaves)}",
                )


def _targets(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return [str(item).strip() for item in items if str(item).strip()]


# --- chat template against the tokenizer --------------------------------------------
def template_matches_model(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """The template's turn markers are tokens of the model's tokenizer (else it is another family's format)."""
    name = cfg.values.get("template")
    model_dir = _model_dir(cfg)
    if not isinstance(name, str) or name not in lf.templates() or model_dir is None:
        return
    vocab, own_template = _tokenizer_facts(ctx, model_dir)
    if vocab is None:
        return
    markers = lf.template_markers(name)
    missing = sorted(m for m in markers if m not in vocab)
    if missing:
        fitting = [t for t in sorted(lf.templates()) if (m := lf.template_markers(t)) and m <= vocab]
        yield Problem(
            ERROR,
            "template",
            cfg.where("template"),
            f"template {name!r} writes {', '.join(missing)}, which the model's tokenizer does not have: "
            "the model would be trained on another family's chat format",
            "use the model family's template"
            + (f"; ones this tokenizer fits: {', '.join(fitting[:8])}" if fitting else ""),
        )
        return
    own = {m for m in vocab if m in own_template} if own_template else set()
    own = {m for m in own if re.fullmatch(r"<[|｜][^<>\s]{1,40}[|｜]>|<[a-z]+(?:_[a-z]+)+>", m)}
    if own and not markers & own:
        yield Problem(
            WARNING,
            "template",
            cfg.where("template"),
            f"template {name!r} uses none of the turn markers of the model's own chat template "
            f"({', '.join(sorted(own)[:4])}): answers at inference will not follow the trained format",
            "use the template of the model's family",
        )


def _tokenizer_facts(ctx: Context, model_dir: Path) -> tuple[set[str] | None, str]:
    key = ("tokenizer", str(model_dir))
    if key not in ctx.model_cache:
        try:
            from orchestrator.validation.lengths import tokenizer

            tok = tokenizer(model_dir)
            ctx.model_cache[key] = (set(tok.get_vocab()), str(getattr(tok, "chat_template", "") or ""))
        except Exception:  # noqa: BLE001 - no usable tokenizer here: not checked
            ctx.model_cache[key] = (None, "")
    return ctx.model_cache[key]


def _model_config(model_dir: Path) -> dict[str, Any]:
    try:
        loaded = inputs.read_json(model_dir / "config.json")
    except InputError:
        return {}  # the model loader's own check reports an unreadable config.json
    return loaded if isinstance(loaded, dict) else {}


def model_fit(cfg: ConfigUnderTest, ctx: Context) -> Iterator[Problem]:
    """cutoff_len fits the model's context window; lora_rank stays below its hidden size."""
    model_dir = _model_dir(cfg)
    config = _model_config(model_dir) if model_dir is not None else {}
    cutoff, window = cfg.values.get("cutoff_len"), config.get("max_position_embeddings")
    if isinstance(cutoff, int) and isinstance(window, int) and cutoff > window:
        yield Problem(
            WARNING,
            "cutoff",
            cfg.where("cutoff_len"),
            f"cutoff_len {cutoff} exceeds the model's context window ({window} positions)",
            f"set cutoff_len to at most {window}, or configure rope_scaling",
        )
    rank, hidden = cfg.values.get("lora_rank"), config.get("hidden_size")
    if stages.get(cfg.stage).trains and isinstance(rank, int) and isinstance(hidden, int) and rank > hidden:
        yield Problem(
            WARNING,
            "likely-mistake",
            cfg.where("lora_rank"),
            f"lora_rank {rank} exceeds the model's hidden size {hidden}: the adapter is no longer low-rank",
            "LoRA ranks are usually 8-64",
        )
