"""The gguf stage and the deployable folder: GGUF files, the task's grammar, a model card.

`export_gguf` converts a merged model with llama.cpp's converter (F16, kept)
and quantizes it with llama.cpp's quantizer (Q4_K_M unless configured), then
writes beside them everything a deployer needs:

    <gguf folder>/<model>-F16.gguf, <model>-<QUANT>.gguf
    <gguf folder>/<task>.gbnf        the answer's grammar for llama.cpp (integer ranges as enumerations)
    <gguf folder>/schema.json        the task's JSON Schema
    <gguf folder>/README.md          the model card (rewritten whenever the GGUF is scored)
    <gguf folder>/gguf.json          the manifest: files, quantization, source, command

The grammar is written from the task file, not from llama.cpp's JSON-schema
conversion, which ignores `minimum`/`maximum` (it lets `"student_distress_score": 29`
through): every field's allowed values are listed, in the canonical answer's
exact layout, so what a phone app gets is what the model was trained to write.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator import inputs, llamacpp
from orchestrator.errors import OrchError
from orchestrator.evaluation.decoding import _key_piece, _value_piece
from orchestrator.fileio import write_json_atomic, write_text_atomic
from orchestrator.layout import GGUF_MANIFEST
from orchestrator.project import Project
from orchestrator.runs import Run
from orchestrator.secrets import redact_text
from orchestrator.task import Task

DEFAULT_QUANT = "Q4_K_M"
SOURCE_TYPE = "F16"
DIRECT_TYPES = ("BF16",)  # not representable from F16 without loss: the converter writes it from the merged weights


def _literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def grammar(task: Task) -> str:
    """A llama.cpp grammar (GBNF) accepting exactly the task's canonical answers: one rule per field."""
    names = task.field_names
    lines = [
        f"# The answer of task {task.name}: one JSON object, keys in canonical order, every allowed value listed.",
        "root ::= " + " ".join(f"{_literal(_key_piece(i, n))} field{i}" for i, n in enumerate(names)),
    ]
    for i, name in enumerate(names):
        last = i == len(names) - 1
        values = " | ".join(_literal(_value_piece(v, last)) for v in task.field_values(name))
        lines.append(f"field{i} ::= {values}")
    return "\n".join(lines) + "\n"


def manifest(folder: Path) -> dict[str, Any]:
    """The gguf stage's manifest in `folder`, or a clear error if the stage has not run there."""
    path = folder / GGUF_MANIFEST
    if not path.is_file():
        raise OrchError(f"{folder} holds no GGUF export ({GGUF_MANIFEST} missing)", fix="run the gguf stage first")
    return inputs.read_json(path)


def quantized_file(folder: Path) -> Path:
    """The quantized GGUF file the gguf stage wrote in `folder` (the one that is scored and shipped)."""
    data = manifest(folder)
    path = folder / str(data["files"][data["quantization"]])
    if not path.is_file():
        raise OrchError(f"{path} is missing", fix="run the gguf stage again")
    return path


def export_gguf(
    project: Project,
    task: Task,
    run: Run,
    merged_dir: Path,
    out_dir: Path,
    quant: str = DEFAULT_QUANT,
    command: str = "",
    log: Any = print,
    template_name: str | None = None,
) -> dict[str, Any]:
    """Convert, quantize and write the deployable folder; returns the manifest.

    The command is written redacted (a `--set hf_hub_token=...` never reaches the folder that ships).
    """
    quant = llamacpp.check_quant_type(quant)
    if not (merged_dir / "config.json").is_file():
        raise OrchError(f"{project.relative(merged_dir)} holds no merged model", fix="run the export stage first")
    out_dir.mkdir(parents=True, exist_ok=True)
    model = run.model
    f16 = out_dir / f"{model}-{SOURCE_TYPE}.gguf"
    quantized = out_dir / f"{model}-{quant}.gguf"
    with _with_training_template(merged_dir, out_dir, template_name, log) as source:
        llamacpp.convert(source, f16, log)
        if quant in DIRECT_TYPES:  # converted from the merged weights, never from the F16 file
            llamacpp.convert(source, quantized, log, outtype=quant.lower())
    if quant not in (SOURCE_TYPE, *DIRECT_TYPES):
        log(f"quantizing to {quant} with llama.cpp's quantizer ...")
        llamacpp.quantize(f16, quantized, quant)
    write_text_atomic(out_dir / f"{task.name}.gbnf", grammar(task))
    write_json_atomic(out_dir / "schema.json", task.schema)
    data = {
        "task": task.name,
        "model": model,
        "quantization": quant,
        "files": {SOURCE_TYPE: f16.name, quant: quantized.name},
        "bytes": {SOURCE_TYPE: f16.stat().st_size, quant: quantized.stat().st_size},
        "grammar": f"{task.name}.gbnf",
        "source": project.relative(merged_dir),
        "llama_cpp_python": llamacpp.bindings().__version__,
        "command": redact_text(command),
    }
    write_json_atomic(out_dir / GGUF_MANIFEST, data)
    write_model_card(project, task, out_dir, run)
    log(f"wrote {project.relative(quantized)} ({quantized.stat().st_size / 1e6:.1f} MB) and the deployable folder")
    return data


@contextmanager
def _with_training_template(merged_dir: Path, out_dir: Path, template_name: str | None, log: Any) -> Iterator[Path]:
    """The merged model as the converter should read it: its chat template replaced by the training one.

    A staging folder of links to the merged model's files, with tokenizer_config.json and
    chat_template.jinja rewritten, so the GGUF embeds the template that renders the training prompt and an
    app using llama.cpp's chat API prompts the model as it was trained. The merged folder is not touched.
    """
    from transformers import AutoTokenizer

    from orchestrator import lf_adapter

    jinja = None
    if template_name:
        jinja = lf_adapter.training_chat_template(AutoTokenizer.from_pretrained(str(merged_dir)), template_name)
    if jinja is None:
        if template_name:
            log(f"LLaMA-Factory cannot write template {template_name} as Jinja: the GGUF keeps the model's own")
        yield merged_dir
        return
    staging = out_dir / ".convert-source"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for item in merged_dir.iterdir():
            if item.name not in ("tokenizer_config.json", "chat_template.jinja", "chat_template.json"):
                (staging / item.name).symlink_to(item.resolve())
        config = read_json_or_none(merged_dir / "tokenizer_config.json")
        config["chat_template"] = jinja
        write_json_atomic(staging / "tokenizer_config.json", config)
        write_text_atomic(staging / "chat_template.jinja", jinja)
        log(f"embedding the training chat template ({template_name}) in the GGUF")
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def write_model_card(project: Project, task: Task, out_dir: Path, run: Run) -> Path:
    """The model card (README.md) of a deployable folder, with the scores of `run` (training) found so far."""
    data = manifest(out_dir)
    quant = data["quantization"]
    example = task.canonical_answer({n: task.field_values(n)[0] for n in task.field_names})
    command = redact_text(str(data.get("command") or "orch submit ... --then export,gguf")).replace("`", "'")
    lines = [
        f"# {data['model']} · {task.name} · GGUF {quant}",
        "",
        task.description or f"Task {task.name}.",
        "",
        "## Files",
        "",
        *(f"- `{name}` ({data['bytes'][kind] / 1e6:.1f} MB, {kind})" for kind, name in data["files"].items()),
        f"- `{data['grammar']}`: llama.cpp grammar of the answer (pass it as `grammar`; every output parses)",
        "- `schema.json`: the answer's JSON Schema",
        "",
        "## Prompt",
        "",
        "One user turn: the task's instruction, a newline, then the dialogue; the model answers with one JSON",
        "object on one line. The chat template is the one embedded in the GGUF (orch eval checks that it",
        "renders the training prompt).",
        "",
        _fence(task.instruction),
        task.instruction,
        "<dialogue>",
        _fence(task.instruction),
        "",
        f"Answer, e.g.: `{example}`",
        "",
        *_template_lines(project, out_dir),
        "## Scores",
        "",
        *_score_lines(project, task, run),
        "",
        "## Produced by",
        "",
        f"`{command}` (merged model {data['source']}, llama-cpp-python {data['llama_cpp_python']})",
    ]
    path = out_dir / "README.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def _template_lines(project: Project, out_dir: Path) -> list[str]:
    """What orch eval found about the chat template embedded in the GGUF (nothing before it is scored)."""
    from orchestrator.evaluation.metrics import chat_template_warning
    from orchestrator.layout import EVAL

    checks = [
        read_json_or_none(path).get("chat_template")
        for path in sorted((out_dir / EVAL).glob("*/*/metrics.json"))
        if read_json_or_none(path).get("chat_template")
    ]
    if not checks:
        return []
    check = checks[0]
    if check.get("match"):
        return ["The chat template embedded in the GGUF renders the training prompt exactly.", ""]
    return ["## Chat template", "", "```text", chat_template_warning(check), "```", ""]


def read_json_or_none(path: Path) -> dict[str, Any]:
    """A JSON object file, or {} when it is unreadable (a card is written from what can be read)."""
    from orchestrator.inputs import InputError

    try:
        data = inputs.read_json(path)
    except InputError:
        return {}
    return data if isinstance(data, dict) else {}


def _score_lines(project: Project, task: Task, run: Run) -> list[str]:
    """The scores of this run's adapter, merged and GGUF models on the test split (what has been scored)."""
    from orchestrator.evaluation.agreement import compare_to_adapter

    rows = compare_to_adapter(project, task, run)
    if not rows:
        return ["Not scored on the test split yet: `orch eval MODEL/METHOD --gguf` (or `--then gguf,eval`)."]
    head = "| model | decoding | split | schema-valid | any-risk recall | agreement with adapter | size |"
    out = [head, "|" + "---|" * 7]
    for row in rows:
        out.append(
            f"| {row['label']} | {row['decoding']} | {row['split']} | {row['valid']} | {row['recall']} | "
            f"{row['agreement']} | {row['size']} |"
        )
    return out
