"""The LLaMA-Factory adapter: the only module that touches its internals (argument parser and
dataclasses, chat template registry and encoding, sequence-length rule), imported once and lazily.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import logging
import os
import re
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any


@contextlib.contextmanager
def quiet():
    """Silence LLaMA-Factory's and transformers' logging while we call into them.

    The verbosity variable is put back afterwards: jobs started from this process
    inherit its environment and must log as LLaMA-Factory normally does.
    """
    verbosity = os.environ.get("LLAMAFACTORY_VERBOSITY")
    os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "ERROR")
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(previous)
        if verbosity is None:
            os.environ.pop("LLAMAFACTORY_VERBOSITY", None)
        else:
            os.environ["LLAMAFACTORY_VERBOSITY"] = verbosity


@contextlib.contextmanager
def _cwd(path: os.PathLike | str):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def parse(values: dict[str, Any], stage: str, cwd: os.PathLike | str) -> tuple[Any, ...]:
    """Run LLaMA-Factory's own argument parser on `values` as on a GPU node; raises what it raises.

    Returns its parsed dataclasses (model, data, training, finetuning, generating
    arguments for a training config; model, data, finetuning, generating for export).
    """
    with quiet(), _cwd(cwd), _kept_environ(), _as_gpu_node():
        from llamafactory.hparams import get_infer_args, get_train_args

        return tuple(get_infer_args(dict(values)) if _is_export(stage) else get_train_args(dict(values)))


@contextlib.contextmanager
def _kept_environ():
    """The trainer's argument checks export settings (mixed precision, ...); keep them out of this process."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _as_gpu_node():
    """A simulated GPU node: the hardware probes the argument checks consult answer as a bf16-capable GPU would.

    Only the probes are replaced (mocked here because this machine may have no GPU), so
    transformers' and LLaMA-Factory's own consistency checks (fp16 with bf16, pure_bf16, ...)
    run exactly as they will on the node, instead of stopping at "this machine has no GPU".
    """
    import transformers.training_args as hf_args
    from llamafactory.hparams import parser as lf_parser

    patches = [
        (hf_args, "is_torch_bf16_gpu_available"),
        (hf_args, "is_torch_tf32_available"),
        (lf_parser, "is_torch_bf16_gpu_available"),
    ]
    saved = [(module, name, getattr(module, name)) for module, name in patches if hasattr(module, name)]
    try:
        for module, name, _ in saved:
            setattr(module, name, lambda *args, **kwargs: True)
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def check_quantization(model_args: Any, trainable: bool) -> bool:
    """LLaMA-Factory's own on-the-fly quantization checks (bit widths per method, library versions).

    They run when the model is loaded on the node; here they run on an empty model config,
    so nothing is loaded. Raises ValueError or ImportError as the job would; returns whether
    LLaMA-Factory would quantize at all (some methods only load models quantized beforehand).
    """
    with quiet():
        from llamafactory.model.model_utils.quantization import configure_quantization
        from transformers import PretrainedConfig

        init_kwargs: dict[str, Any] = {}
        configure_quantization(PretrainedConfig(), None, copy.copy(model_args), trainable, init_kwargs)
    return "quantization_config" in init_kwargs


def _is_export(stage: str) -> bool:
    """`llamafactory-cli export` parses with the inference arguments, every other command with training's."""
    from orchestrator import stages

    return stages.get(stage).command == "export"


# How LLaMA-Factory's training workflows load data: DPO reads its datasets as the reward stage does.
_DATASET_STAGE = {"dpo": "rm"}


def dataset_stage(stage: str) -> str:
    """The data stage LLaMA-Factory's workflow for `stage` loads with (its loader's ranking rule keys on it)."""
    return _DATASET_STAGE.get(stage, stage)


@cache
def templates() -> dict[str, Any]:
    """LLaMA-Factory's chat template registry, by name."""
    with quiet():
        from llamafactory.data.template import TEMPLATES
    return dict(TEMPLATES)


def is_reasoning_template(name: str) -> bool:
    """Whether LLaMA-Factory trains answers of this template with a thinking block."""
    return type(templates()[name]).__name__ == "ReasoningTemplate"


# `<|im_start|>`, `<｜User｜>` and `<start_of_turn>` shapes: text like `<<SYS>>` is plain text, not a token.
_MARKER = re.compile(r"<[|｜][^<>\s{}|｜]{1,40}[|｜]>|<[a-z]+(?:_[a-z]+)+>")


def template_markers(name: str) -> set[str]:
    """The special-token markers (`<|im_start|>`, `<start_of_turn>`, ...) a template writes around turns."""
    template = templates()[name]
    texts = list(getattr(template, "stop_words", []) or [])
    for attr in ("format_user", "format_assistant", "format_system", "format_prefix"):
        formatter = getattr(template, attr, None)
        texts += [slot for slot in getattr(formatter, "slots", []) if isinstance(slot, str)]
    return {marker for text in texts for marker in _MARKER.findall(text)}


@dataclass(frozen=True)
class FieldSpec:
    """One key LLaMA-Factory accepts, as its argument dataclass declares it."""

    name: str
    annotation: Any
    default: Any  # NO_DEFAULT when the dataclass has none
    help: str
    choices: tuple[Any, ...] | None  # the field's metadata choices, when declared
    owner: str  # the dataclass, e.g. FinetuningArguments


NO_DEFAULT = object()


@cache
def fields(stage: str) -> dict[str, FieldSpec]:
    """Every key the stage's parser accepts, with its declared type, default, help and choices."""
    with quiet():
        from llamafactory.hparams import parser

    classes = parser._INFER_ARGS if _is_export(stage) else parser._TRAIN_ARGS
    out: dict[str, FieldSpec] = {}
    for cls in classes:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # noqa: BLE001 - a forward ref we cannot resolve: skip type checks
            hints = {}
        for f in dataclasses.fields(cls):
            if not f.init or f.name in out:
                continue
            default = f.default
            if default is dataclasses.MISSING:
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else NO_DEFAULT
            choices = f.metadata.get("choices")
            out[f.name] = FieldSpec(
                f.name,
                hints.get(f.name, Any),
                default,
                str(f.metadata.get("help", "")),
                tuple(choices) if choices is not None else None,
                cls.__name__,
            )
    return out


def argument_types(stage: str) -> dict[str, Any]:
    """Field name -> declared type for every key the stage's parser accepts."""
    return {name: spec.annotation for name, spec in fields(stage).items()}


@cache
def infer_seqlen():
    """LLaMA-Factory's own rule for truncating (prompt, answer) to cutoff_len."""
    from llamafactory.data.processor.processor_utils import infer_seqlen as fn

    return fn


def chat_template(tokenizer: Any, template_name: str) -> Any:
    """LLaMA-Factory's Template object for `template_name`, fitted to `tokenizer`."""
    with quiet():
        from llamafactory.data import get_template_and_fix_tokenizer
        from llamafactory.hparams import DataArguments

        return get_template_and_fix_tokenizer(tokenizer, DataArguments(template=template_name))


def training_chat_template(tokenizer: Any, template_name: str) -> str | None:
    """The Jinja chat template that renders LLaMA-Factory's `template_name` prompts (None: it cannot write one).

    LLaMA-Factory writes it into a tokenizer only when the tokenizer has none; a model's own template can
    differ from the training prompt (SmolLM2's default system line lacks the training template's final
    period), so the gguf stage embeds this one.
    """
    template = chat_template(tokenizer, template_name)
    try:
        return template._get_jinja_template(tokenizer)
    except ValueError:
        return None
