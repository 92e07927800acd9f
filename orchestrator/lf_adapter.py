"""The LLaMA-Factory adapter: the only module that touches its internals (argument parser and
dataclasses, chat template registry and encoding, sequence-length rule), imported once and lazily.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import typing
from functools import cache
from typing import Any


@contextlib.contextmanager
def _quiet():
    """Silence LLaMA-Factory's and transformers' logging while we call into them."""
    os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "ERROR")
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _cwd(path: os.PathLike | str):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def parse(values: dict[str, Any], stage: str, cwd: os.PathLike | str) -> None:
    """Run LLaMA-Factory's own argument parser on `values`; raises what it raises."""
    with _quiet():
        from llamafactory.hparams import get_infer_args, get_train_args

        with _cwd(cwd):
            if _is_export(stage):
                get_infer_args(dict(values))
            else:
                get_train_args(dict(values))


def _is_export(stage: str) -> bool:
    """`llamafactory-cli export` parses with the inference arguments, every other command with training's."""
    from orchestrator import stages

    return stages.get(stage).command == "export"


@cache
def templates() -> dict[str, Any]:
    """LLaMA-Factory's chat template registry, by name."""
    with _quiet():
        from llamafactory.data.template import TEMPLATES
    return dict(TEMPLATES)


def is_reasoning_template(name: str) -> bool:
    """Whether LLaMA-Factory trains answers of this template with a thinking block."""
    return type(templates()[name]).__name__ == "ReasoningTemplate"


@cache
def argument_types(stage: str) -> dict[str, Any]:
    """Field name -> declared type for every key the stage's parser accepts."""
    with _quiet():
        from llamafactory.hparams import parser

    classes = parser._INFER_ARGS if _is_export(stage) else parser._TRAIN_ARGS
    out: dict[str, Any] = {}
    for cls in classes:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # noqa: BLE001 - a forward ref we cannot resolve: skip type checks
            hints = {}
        for name in cls.__dataclass_fields__:
            out[name] = hints.get(name, Any)
    return out


@cache
def infer_seqlen():
    """LLaMA-Factory's own rule for truncating (prompt, answer) to cutoff_len."""
    from llamafactory.data.processor.processor_utils import infer_seqlen as fn

    return fn


def chat_template(tokenizer: Any, template_name: str) -> Any:
    """LLaMA-Factory's Template object for `template_name`, fitted to `tokenizer`."""
    with _quiet():
        from llamafactory.data import get_template_and_fix_tokenizer
        from llamafactory.hparams import DataArguments

        return get_template_and_fix_tokenizer(tokenizer, DataArguments(template=template_name))
