"""`orch eval`: score a trained run (or a merged model) on the task itself.

Writes `<output_dir>/eval/<split>/<decoding>/predictions.jsonl` (id, raw
output, parsed labels, gold labels, parse status, field probabilities) and
`metrics.json`. `score_predictions_file` scores LLaMA-Factory's own
`generated_predictions.jsonl` with the same metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator import ledger, steps
from orchestrator.datasets import check_rows
from orchestrator.errors import OrchError
from orchestrator.evaluation import decoding
from orchestrator.evaluation.extract import extract
from orchestrator.evaluation.metrics import score, summary
from orchestrator.evaluation.prompts import load_template, prompt_ids
from orchestrator.fileio import write_json_atomic, write_text_atomic
from orchestrator.models import resolve_model
from orchestrator.project import Project
from orchestrator.runs import ORCH_CONFIG, Run, record_event
from orchestrator.task import Task

DECODINGS = ("constrained", "free")


@dataclass
class EvalResult:
    predictions: Path
    metrics: dict[str, Any]


def gold_rows(project: Project, task: Task, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The split's rows (alpaca) with parsed gold labels under `gold`."""
    if split not in task.datasets:
        raise OrchError(f"task {task.name} has no split {split!r}", fix=f"splits: {', '.join(task.datasets)}")
    path = project.resolve(task.datasets[split].file)
    if not path.is_file():
        raise OrchError(f"{task.datasets[split].file} does not exist", fix="prepare the data first")
    rows, problems = check_rows(path, None, task)
    if problems:
        raise OrchError(f"{problems[0].where}: {problems[0].message}", fix="orch validate shows every bad row")
    out = []
    for row in rows[:limit] if limit else rows:
        data = dict(row.data)
        data.setdefault("id", f"{path.name}:{row.line}")
        data["gold"] = json.loads(data["output"])
        out.append(data)
    return out


def _quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, an optional CPU kernel for 4-bit) out of orch's progress."""
    import logging

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def load_for_eval(project: Project, output_dir: Path, base: bool = False) -> tuple[Any, Any, str]:
    """(model, tokenizer, template name) for a run's output_dir: its base model plus its adapter.

    A merged directory (`llamafactory-cli export` output, a full model) is loaded as it is, with the
    template of the training run beside it (`../sft/orch_config.yaml`).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_libraries()

    if (output_dir / "config.json").is_file() and not (output_dir / "adapter_config.json").is_file():
        sibling = output_dir.parent / "sft" / ORCH_CONFIG
        if not sibling.is_file():
            raise OrchError(
                f"{project.relative(output_dir)} is a merged model without its training run beside it",
                fix="evaluate the run it was exported from",
            )
        template = str(yaml.safe_load(sibling.read_text(encoding="utf-8"))["template"])
        tokenizer = AutoTokenizer.from_pretrained(str(output_dir))
        model = AutoModelForCausalLM.from_pretrained(str(output_dir), dtype=torch.float32)
        return model.eval(), tokenizer, template
    config_path = output_dir / ORCH_CONFIG
    if not config_path.is_file():
        raise OrchError(
            f"{project.relative(output_dir)} has no {ORCH_CONFIG}: not a run orch trained",
            fix="train it with orch submit first",
        )
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    resolved = resolve_model(project, str(config["model_name_or_path"]))
    if resolved.path is None:
        raise OrchError(
            f"base model {config['model_name_or_path']} is not available here", fix=resolved.download_hint(project)
        )
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
    model = AutoModelForCausalLM.from_pretrained(str(resolved.path), dtype=torch.float32)
    if not base:
        if not (output_dir / "adapter_config.json").is_file():
            raise OrchError(f"{project.relative(output_dir)} has no adapter yet", fix="wait for training to finish")
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(output_dir)).merge_and_unload()
    return model.eval(), tokenizer, str(config["template"])


def evaluate(
    project: Project,
    task: Task,
    output_dir: Path,
    *,
    split: str = "test",
    decoding_mode: str = "constrained",
    limit: int | None = None,
    batch_size: int = 4,
    base: bool = False,
    max_new_tokens: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Decode every example of the split one way, then score and write predictions and metrics."""
    return evaluate_decodings(
        project,
        task,
        output_dir,
        decodings=(decoding_mode,),
        split=split,
        limit=limit,
        batch_size=batch_size,
        base=base,
        max_new_tokens=max_new_tokens,
        progress=progress,
    )[decoding_mode]


def evaluate_decodings(
    project: Project,
    task: Task,
    output_dir: Path,
    *,
    decodings: tuple[str, ...] = DECODINGS,
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 4,
    base: bool = False,
    max_new_tokens: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, EvalResult]:
    """Score a run (or its base model) with each decoding; both decodings share one encoding of each prompt.

    Free decoding stops after `max_new_tokens` (default: 1.5x the longest valid answer).
    Results go to `<output_dir>/eval/<split>/<decoding>[-base]/`.
    """
    import torch

    if not decodings or len(set(decodings)) != len(decodings) or not set(decodings) <= set(DECODINGS):
        raise OrchError(f"bad decodings {decodings!r}", fix=f"each of {DECODINGS} at most once")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = gold_rows(project, task, split, limit)
    model, tokenizer, template_name = load_for_eval(project, output_dir, base)
    template = load_template(tokenizer, template_name)
    budget = max_new_tokens or decoding.answer_budget(task, tokenizer)
    started = time.perf_counter()
    decoded: dict[str, list[decoding.Decoded]] = {d: [] for d in decodings}
    for start in range(0, len(rows), batch_size):
        prompts = [prompt_ids(template, tokenizer, row) for row in rows[start : start + batch_size]]
        if len(decodings) == len(DECODINGS):
            chosen, generated = decoding.both(model, tokenizer, task, prompts, budget)
            decoded["constrained"] += chosen
            decoded["free"] += generated
        elif decodings[0] == "constrained":
            decoded["constrained"] += decoding.constrained(model, tokenizer, task, prompts)
        else:
            decoded["free"] += decoding.free(model, tokenizer, prompts, budget)
        if progress:
            progress(min(start + batch_size, len(rows)), len(rows))
    seconds = time.perf_counter() - started
    results = {}
    for mode, items in decoded.items():
        meta = {
            "split": split,
            "decoding": mode,
            "model": "base" if base else "adapter",
            "seconds": seconds,
            "examples_per_second": len(rows) / seconds if seconds else None,
            "max_new_tokens": budget if mode == "free" else None,
            "timed_with": list(decodings),  # one encoding of the prompts serves every decoding listed
        }
        out_dir = output_dir / "eval" / split / (f"{mode}-base" if base else mode)
        results[mode] = _write(task, rows, [d.raw for d in items], [d.probabilities for d in items], out_dir, meta)
    return results


def _write(
    task: Task, rows: list[dict], raws: list[str], probabilities: list[Any], out_dir: Path, meta: dict[str, Any]
) -> EvalResult:
    lines, preds, valid = [], [], []
    extractions = [extract(task, raw) for raw in raws]
    for row, raw, prob, found in zip(rows, raws, probabilities, extractions, strict=True):
        preds.append(found.labels)
        valid.append(found.valid)
        status = "strict" if found.strict else "repaired" if found.valid else "invalid"
        lines.append(
            json.dumps(
                {
                    "id": row.get("id"),
                    "raw": raw,
                    "parsed": found.labels,
                    "gold": row["gold"],
                    "status": status,
                    "errors": list(found.errors),
                    "probabilities": prob,
                },
                ensure_ascii=False,
            )
        )
    metrics = score(task, [r["gold"] for r in rows], preds, valid)
    n = len(rows)
    metrics["parse"] = {
        "strict_rate": sum(e.strict for e in extractions) / n if n else None,
        "repaired_rate": sum(e.repaired for e in extractions) / n if n else None,
        "schema_valid_rate": sum(e.valid for e in extractions) / n if n else None,
    }
    metrics.update(meta)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = out_dir / "predictions.jsonl"
    write_text_atomic(predictions, "\n".join(lines) + "\n")
    write_json_atomic(out_dir / "metrics.json", metrics)
    return EvalResult(predictions, metrics)


def score_predictions_file(task: Task, path: Path, out_dir: Path | None = None) -> EvalResult:
    """Score LLaMA-Factory's generated_predictions.jsonl (`predict`, `label`) with the task metrics."""
    rows, raws = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        gold = extract(task, item.get("label", ""))
        if not gold.valid:
            raise OrchError(f"{path}:{number}: the label is not a valid answer: {gold.errors}")
        rows.append({"id": f"{path.name}:{number}", "gold": gold.labels})
        raws.append(item.get("predict", ""))
    return _write(
        task,
        rows,
        raws,
        [None] * len(rows),
        out_dir or path.parent / "eval-llamafactory",
        {"decoding": "llamafactory-predict", "source": str(path)},
    )


RULES_DIR = ("rules", "baseline", "sft")  # saves/rules/baseline/sft/eval/...: collect lists it like any run


def evaluate_rules(project: Project, task: Task, split: str = "test", limit: int | None = None) -> EvalResult:
    """Score the rules labeler (the lexicon baseline) on a split, as a row for `orch collect`."""
    from orchestrator.data import rules
    from orchestrator.data.dialogue import ROLE_LABELS

    rows = gold_rows(project, task, split, limit)
    client = ROLE_LABELS["user"] + "："
    started = time.perf_counter()
    raws = []
    for row in rows:
        text = "\n".join(
            line[len(client) :] for line in str(row.get("input", "")).splitlines() if line.startswith(client)
        )
        raws.append(task.canonical_answer(rules.label(text)))
    seconds = time.perf_counter() - started
    out_dir = project.resolve(project.saves_setting).joinpath(*RULES_DIR, "eval", split, "rules")
    return _write(
        task,
        rows,
        raws,
        [None] * len(rows),
        out_dir,
        {
            "split": split,
            "decoding": "rules",
            "model": "rules",
            "seconds": seconds,
            "examples_per_second": len(rows) / seconds if seconds else None,
        },
    )


def record_evaluation(project: Project, result: EvalResult, run: Run | None, command: str = "") -> None:
    """An `evaluated` entry in steps.md with the headline numbers; in the ledger too for a trained run.

    `run` None is the rules baseline (no job, nothing to resume: steps.md only).
    """
    metrics = result.metrics
    who = {"base": "the untrained base model", "rules": "the rules labeler"}.get(metrics.get("model"), "the run")
    message = f"{who} scored on the {metrics.get('split')} split ({metrics.get('decoding')} decoding)"
    fields = {
        "message": message,
        "command": command or None,
        "output_dir": project.relative(result.predictions.parent),
        "table": "\n".join(f"- {line}" for line in summary(metrics).splitlines()),
    }
    if run is not None:
        record_event(project, run, "evaluated", **fields)
    else:
        steps.append_entry(
            project.templates,
            project.steps,
            {"time": ledger.now(), "event": "evaluated", "run": "rules baseline", **fields},
        )
