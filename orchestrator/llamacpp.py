"""llama.cpp, from one place: its converter and quantizer, and models scored through its Python bindings.

Everything comes from PyPI's `llama-cpp-python` source distribution, pinned in
scripts/setup-venv.sh: the bindings are built from it into the environment,
and its converter (`vendor/llama.cpp/convert_hf_to_gguf.py`, with its own
`gguf-py`) is run from the unpacked source, found by the installed version
(`.venv/src/llama_cpp_python-<version>/`, or `$ORCH_LLAMA_CPP_SRC`).

Scoring feeds llama.cpp the token ids LLaMA-Factory's template encoding
produces (never a re-tokenised string), and decodes the way the transformers
path does: constrained (every allowed value of each field scored as a
continuation, the most probable one chosen) and free (greedy generation,
stopped when the JSON object closes, then the extractor).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchError
from orchestrator.fileio import temp_path
from orchestrator.task import Task

FTYPE_PREFIX = "LLAMA_FTYPE_MOSTLY_"
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/__init__.py", "gguf-py/gguf/__init__.py")
SETUP_FIX = "run `make setup` (it builds llama-cpp-python from its pinned source distribution)"


def bindings() -> Any:
    """The `llama_cpp` module, or a clear error saying how to get it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise OrchError(f"llama.cpp's Python bindings are not installed ({exc})", fix=SETUP_FIX) from None
    return llama_cpp


def source_dir() -> Path:
    """`vendor/llama.cpp` of the unpacked source distribution the installed bindings were built from."""
    version = bindings().__version__
    given = os.environ.get("ORCH_LLAMA_CPP_SRC")
    root = Path(given) if given else Path(sys.prefix) / "src" / f"llama_cpp_python-{version}"
    vendor = root / "vendor" / "llama.cpp"
    if not all((vendor / part).is_file() for part in CONVERTER_PARTS):
        raise OrchError(
            f"llama.cpp's converter is not at {vendor / 'convert_hf_to_gguf.py'} "
            f"(llama-cpp-python {version}'s unpacked source)",
            fix=SETUP_FIX + ", or point $ORCH_LLAMA_CPP_SRC at an unpacked llama-cpp-python source of that version",
        )
    return vendor


@functools.cache
def supported_architectures() -> frozenset[str]:
    """The model architectures llama.cpp's converter converts (its own `--print-supported-models` list)."""
    vendor = source_dir()
    env = {**os.environ, "PYTHONPATH": str(vendor / "gguf-py")}
    cmd = [sys.executable, str(vendor / "convert_hf_to_gguf.py"), "--print-supported-models"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    names = re.findall(r"^\s*-\s*(\w+)\s*$", result.stdout + result.stderr, flags=re.MULTILINE)
    if result.returncode != 0 or not names:
        raise OrchError("llama.cpp's converter did not list the architectures it supports", fix=SETUP_FIX)
    return frozenset(names)


def check_architecture(architecture: str, where: str) -> None:
    """Refuse, before any job is queued, a model llama.cpp's converter cannot convert."""
    if architecture not in supported_architectures():
        raise OrchError(
            f"{where}: llama.cpp's converter (llama-cpp-python {bindings().__version__}) cannot convert "
            f"{architecture} models to GGUF",
            fix="drop gguf from --then (the merged model still ships), or pin a llama-cpp-python that supports it",
        )


# Types llama.cpp's quantizer offers but orch refuses: the very-low-bit ones and Q2_K_S need an importance
# matrix (computed from calibration text; orch does not make one) and llama.cpp refuses them without one;
# NVFP4 needs a model made for it. A test quantizes a tiny model to every other type, so this list cannot
# silently go stale.
REFUSED_TYPES = frozenset(
    {"IQ1_M", "IQ1_S", "IQ2_M", "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ3_XS", "IQ3_XXS", "NVFP4", "Q2_K_S"}
)


def quant_types() -> dict[str, int]:
    """Every quantization llama.cpp's quantizer offers and orch can ask for, by name (Q4_K_M, Q8_0, F16, ...)."""
    module = bindings()
    names = (name for name in dir(module) if name.startswith(FTYPE_PREFIX))
    return {n[len(FTYPE_PREFIX) :]: getattr(module, n) for n in names if n[len(FTYPE_PREFIX) :] not in REFUSED_TYPES}


def check_quant_type(name: Any, where: str = "--set gguf.quantization") -> str:
    """The quantization type `name` names (any case), else a clear error listing the types orch can make."""
    known = quant_types()
    text = str(name).strip().upper()
    if text in known:
        return text
    if text in REFUSED_TYPES:
        raise OrchError(
            f"{where}: llama.cpp quantizes to {text} only with an importance matrix, which orch does not compute",
            fix="choose a K-quant such as Q4_K_M, Q5_K_M or Q8_0",
        )
    close = sorted(k for k in known if k.startswith(text[:2]))
    raise OrchError(
        f"{where}: llama.cpp has no quantization type {name!r}", fix=f"one of {', '.join(close or sorted(known))}"
    )


def cpu_threads() -> int:
    """The CPUs this process may use (a SLURM allocation or a cgroup, not the whole machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def convert(model_dir: Path, outfile: Path, log: Callable[[str], None] = print, outtype: str = "f16") -> None:
    """A Hugging Face model folder to a GGUF file (F16 unless `outtype` says otherwise) with llama.cpp's own
    converter (written atomically)."""
    vendor = source_dir()
    tmp = temp_path(outfile)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(vendor / "gguf-py"), os.environ.get("PYTHONPATH")])),
    }
    cmd = [
        sys.executable,
        str(vendor / "convert_hf_to_gguf.py"),
        str(model_dir),
        "--outtype",
        outtype,
        "--outfile",
        str(tmp),
    ]
    log(f"converting {model_dir} to GGUF ({outtype.upper()}) with llama.cpp's convert_hf_to_gguf.py ...")
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-12:])
        raise OrchError(
            f"llama.cpp's converter could not convert {model_dir}:\n{tail}",
            fix="llama.cpp must know the model's architecture and tokenizer (README: which families convert)",
        )
    os.replace(tmp, outfile)


def quantize(source: Path, outfile: Path, quant: str) -> None:
    """Quantize a GGUF file with llama.cpp's own quantizer (written atomically)."""
    module = bindings()
    ftype = quant_types()[check_quant_type(quant)]
    params = module.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = cpu_threads()
    tmp = temp_path(outfile)
    code = module.llama_model_quantize(str(source).encode(), str(tmp).encode(), params)
    if code != 0:
        tmp.unlink(missing_ok=True)
        raise OrchError(f"llama.cpp could not quantize {source} to {quant} (code {code})", fix="see the job log")
    os.replace(tmp, outfile)


def metadata(path: Path) -> dict[str, str]:
    """A GGUF file's key/value metadata (reads the vocabulary only, not the weights)."""
    llm = bindings().Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        return dict(llm.metadata)
    finally:
        llm.close()


def chat_template_check(path: Path, tokenizer: Any, prompt: list[int], user_text: str) -> dict[str, Any]:
    """Whether the chat template embedded in the GGUF renders the training prompt (the text of `prompt`).

    Scoring never uses the embedded template (llama.cpp is fed the training ids); an app that calls
    llama.cpp's chat API does, and a model whose embedded template renders another prompt "loses its
    training" there. The result names both renderings.
    """
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    training = tokenizer.decode(prompt, skip_special_tokens=False)
    meta = metadata(path)
    source = meta.get("tokenizer.chat_template")
    if not source:
        return {"match": False, "training": training, "gguf": None, "note": "the GGUF embeds no chat template"}
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        rendered = env.from_string(source).render(
            messages=[{"role": "user", "content": user_text}],
            add_generation_prompt=True,
            bos_token=tokenizer.bos_token or "",
            eos_token=tokenizer.eos_token or "",
        )
    except Exception as exc:  # a template llama.cpp's apps would fail on too: say so, do not stop scoring
        return {"match": False, "training": training, "gguf": None, "note": f"cannot render it: {exc}"}
    return {"match": rendered == training, "training": training, "gguf": rendered}


class GgufModel:
    """A GGUF model loaded by llama.cpp and fed token ids, keeping the next-token logits of each fed sequence.

    Only the last position of each `feed` gets logits (llama.cpp's vocabulary projection for every prompt
    position would cost as much as the rest of the model), so callers extend a sequence one token at a time
    where they need each position's distribution.
    """

    def __init__(self, path: Path, n_ctx: int, threads: int | None = None):
        self.module = bindings()
        self.path = path
        self.n_ctx = n_ctx
        self.llm = self.module.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=min(512, n_ctx),
            logits_all=False,
            verbose=False,
            n_threads=threads or cpu_threads(),
        )
        self.eos = {self.llm.token_eos()}
        self.rows: dict[int, Any] = {}  # position -> next-token logits after it

    def feed(self, ids: list[int]) -> None:
        """Make `ids` the sequence evaluated, reusing the cache for the prefix it shares with the last one."""
        import numpy as np

        llm = self.llm
        if len(ids) > self.n_ctx:
            raise OrchError(f"a sequence of {len(ids)} tokens does not fit llama.cpp's context of {self.n_ctx}")
        have = llm.input_ids[: llm.n_tokens].tolist()
        keep, limit = 0, min(len(have), len(ids) - 1)
        while keep < limit and have[keep] == ids[keep]:
            keep += 1
        llm.n_tokens = keep
        llm.eval(ids[keep:])
        for position in [p for p in self.rows if p >= keep]:
            del self.rows[position]
        logits = self.module.llama_get_logits_ith(llm.ctx, -1)
        self.rows[len(ids) - 1] = np.ctypeslib.as_array(logits, shape=(llm.n_vocab(),)).astype(np.float64)

    def log_probs(self, position: int) -> Any:
        """The next-token log-probabilities after `position` (which must have ended a `feed`)."""
        import numpy as np

        row = self.rows[position] - self.rows[position].max()
        return row - np.log(np.exp(row).sum())

    def greedy_next(self) -> int:
        """The most probable token after the sequence fed."""
        return int(self.rows[self.llm.n_tokens - 1].argmax())

    def close(self) -> None:
        self.llm.close()


def constrained_one(model: GgufModel, tokenizer: Any, task: Task, prompt: list[int]) -> Any:
    """One prompt's constrained decoding: every field's allowed values scored, the most probable chosen."""
    import numpy as np

    from orchestrator.evaluation.decoding import Decoded, _key_piece, _value_piece

    chosen: dict[str, Any] = {}
    probs: dict[str, dict[str, float]] = {}
    answer: list[int] = []
    names = task.field_names
    for index, name in enumerate(names):
        answer += tokenizer.encode(_key_piece(index, name), add_special_tokens=False)
        context = prompt + answer
        values = task.field_values(name)
        pieces = [tokenizer.encode(_value_piece(v, index == len(names) - 1), add_special_tokens=False) for v in values]
        model.feed(context)
        first = model.log_probs(len(context) - 1)
        scores = []
        for piece in pieces:
            total = float(first[piece[0]])
            for t in range(1, len(piece)):  # one token at a time: each position's distribution is needed
                model.feed(context + piece[:t])
                total += float(model.log_probs(len(context) + t - 1)[piece[t]])
            scores.append(total)
        weights = np.exp(np.asarray(scores) - max(scores))
        weights /= weights.sum()
        best = int(np.argmax(scores))
        chosen[name] = values[best]
        probs[name] = {str(v): float(w) for v, w in zip(values, weights, strict=True)}
        answer += pieces[best]
    return Decoded(task.canonical_answer(chosen), chosen, probs)


def free_one(model: GgufModel, tokenizer: Any, prompt: list[int], budget: int) -> Any:
    """One prompt's greedy generation, stopped at end of turn, when the JSON object closes, or at `budget`."""
    from orchestrator.evaluation.decoding import Decoded, json_closed

    stops = model.eos | {t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None}
    sequence = list(prompt)
    model.feed(sequence)
    out: list[int] = []
    text = ""
    while len(out) < budget:
        token = model.greedy_next()
        if token in stops:
            break
        out.append(token)
        text = tokenizer.decode(out, skip_special_tokens=True)
        if json_closed(text):
            break
        sequence.append(token)
        model.feed(sequence)
    return Decoded(text)


def decode_speed(model: GgufModel, prompt: list[int], tokens: int = 32) -> float:
    """Greedy decoding speed at batch 1 after `prompt` (tokens per second, the prompt's reading excluded)."""
    import time

    sequence = list(prompt)
    model.feed(sequence)
    started = time.perf_counter()
    for _ in range(tokens):
        sequence.append(model.greedy_next())
        model.feed(sequence)
    return tokens / (time.perf_counter() - started)


def decode_all(
    model: GgufModel,
    tokenizer: Any,
    task: Task,
    prompts: list[list[int]],
    decodings: tuple[str, ...],
    budget: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[Any]]:
    """Every prompt decoded each way through llama.cpp, in the prompts' order (one prompt at a time)."""
    out: dict[str, list[Any]] = {d: [] for d in decodings}
    for done, prompt in enumerate(prompts, start=1):
        if "constrained" in decodings:
            out["constrained"].append(constrained_one(model, tokenizer, task, prompt))
        if "free" in decodings:
            out["free"].append(free_one(model, tokenizer, prompt, budget))
        if progress:
            progress(done, len(prompts))
    return out
