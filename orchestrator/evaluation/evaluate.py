"""`orch eval`: score a trained run (or a merged model) on the task itself.

Writes `<output_dir>/eval/<split>/<decoding>/predictions.jsonl` (id, raw
output, parsed labels, gold labels, parse status, field probabilities) and
`metrics.json`. `score_predictions_file` scores LLaMA-Factory's own
`generated_predictions.jsonl` with the same metrics.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import inputs, ledger, llamacpp, outputs, stages, steps
from orchestrator.answers import extract
from orchestrator.datasets import check_rows, client_text, user_content
from orchestrator.errors import OrchError
from orchestrator.evaluation import decoding
from orchestrator.evaluation import operating_point as op
from orchestrator.evaluation.metrics import score, summary
from orchestrator.evaluation.prompts import load_template, prompt_ids
from orchestrator.fileio import write_json_atomic, write_text_atomic
from orchestrator.inputs import InputError
from orchestrator.layout import (
    ADAPTER,
    BASE,
    BASELINE_KINDS,
    GGUF,
    LF_PREDICT,
    MAJORITY,
    MERGED,
    RULES,
    Layout,
)
from orchestrator.models import resolve_model
from orchestrator.project import Project
from orchestrator.rules_labeler import has_rules, load_rules
from orchestrator.runs import ORCH_CONFIG, Run, record_event, run_output_dir
from orchestrator.stages import Event
from orchestrator.task import Task

DECODINGS = ("constrained", "free")
DECODE_SPEED_TOKENS = 32
MODEL_SUBJECTS = (ADAPTER, BASE, MERGED, GGUF)
SUBJECT_WORDS = {
    ADAPTER: "the run",
    BASE: "the untrained base model",
    MERGED: "the merged model",
    GGUF: "the quantized GGUF model (llama.cpp)",
    RULES: "the rules labeler",
    MAJORITY: "the majority baseline",
}


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


def load_for_eval(
    project: Project, model_dir: Path, config: dict[str, Any], merged: bool, base: bool = False
) -> tuple[Any, Any, str]:
    """(model, tokenizer, template name): the training run's base model plus its adapter, or a merged model.

    `config` is the training run's orch_config.yaml: it names the base model and the chat template.
    A merged folder (`llamafactory-cli export` output, a full model) is loaded as it is.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_libraries()
    template = str(config["template"])
    if merged:
        if not (model_dir / "config.json").is_file():
            raise OrchError(f"{project.relative(model_dir)} holds no merged model", fix="run the export stage first")
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        return model.eval(), tokenizer, template
    resolved = resolve_model(project, str(config["model_name_or_path"]))
    if resolved.path is None:
        raise OrchError(
            f"base model {config['model_name_or_path']} is not available here", fix=resolved.download_hint(project)
        )
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
    model = AutoModelForCausalLM.from_pretrained(str(resolved.path), dtype=torch.float32)
    if not base:
        if not (model_dir / "adapter_config.json").is_file():
            raise OrchError(f"{project.relative(model_dir)} has no adapter yet", fix="wait for training to finish")
        from peft import PeftModel

        starting = starting_adapters(project, config)
        _check_not_stale(project, model_dir, starting)
        for adapter in [*starting, model_dir]:
            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model.eval(), tokenizer, template


def _check_not_stale(project: Project, model_dir: Path, starting: list[Path]) -> None:
    """An adapter trained on top of others is scored only on top of those same ones (not a retrained SFT's)."""
    own = outputs.adapter_weights(model_dir)
    for adapter in starting:
        weights = outputs.adapter_weights(adapter)
        if weights is None:
            raise OrchError(
                f"{project.relative(adapter)} (the adapter it was trained on) is gone", fix="train it again"
            )
        if own is not None and weights.stat().st_mtime > own.stat().st_mtime:
            raise OrchError(
                f"{project.relative(model_dir)} was trained on top of {project.relative(adapter)}, which was trained "
                "again since: together they are a model nobody trained",
                fix="train it again on the new one (orch submit MODEL --then dpo restarts it)",
            )


def starting_adapters(project: Project, config: dict[str, Any]) -> list[Path]:
    """The adapters a run was trained on top of, merged into the base before its own (a dpo run: the SFT one).

    LLaMA-Factory's rule: with `create_new_adapter` on a base it can merge into (not quantized) every adapter
    given was merged and a new one trained; otherwise the last one given was trained further (it is the
    run's own now) and only the ones before it were merged.
    """
    given = [a.strip() for a in str(config.get("adapter_name_or_path") or "").split(",") if a.strip()]
    merged = given if config.get("create_new_adapter") and not config.get("quantization_bit") else given[:-1]
    return [project.resolve(adapter) for adapter in merged]


def gguf_tokenizer(project: Project, gguf_dir: Path, config: dict[str, Any]) -> tuple[Any, str]:
    """The tokenizer a GGUF folder's model was trained with (its merged model's), and the chat template name.

    LLaMA-Factory's template encodes the prompt with it; llama.cpp is then fed those ids, never a string.
    """
    from transformers import AutoTokenizer

    from orchestrator.deploy import manifest

    _quiet_libraries()
    source = project.resolve(str(manifest(gguf_dir)["source"]))
    if not source.is_dir():
        raise OrchError(f"{project.relative(source)} (the merged model it came from) is gone", fix="export it again")
    return AutoTokenizer.from_pretrained(str(source)), str(config["template"])


def _load_gguf(
    gguf_dir: Path,
    tokenizer: Any,
    prompts: list[list[int]],
    budget: int,
    task: Task,
    extra: dict[str, Any],
    rows: list[dict[str, Any]],
) -> tuple[Any, dict[str, Any]]:
    """llama.cpp's model for the quantized file, sized for the longest prompt; its chat template checked."""
    from orchestrator.deploy import manifest, quantized_file

    path = quantized_file(gguf_dir)
    room = max(budget, decoding.answer_budget(task, tokenizer), DECODE_SPEED_TOKENS)  # answers and the speed probe
    longest = max((len(p) for p in prompts), default=1) + room + 8
    model = llamacpp.GgufModel(path, n_ctx=longest)
    check = llamacpp.chat_template_check(path, tokenizer, prompts[0], user_content(rows[0])) if rows else None
    return model, {**extra, "quantization": manifest(gguf_dir)["quantization"], "chat_template": check}


def model_bytes(project: Project, scored: Scored, model_dir: Path, config: dict[str, Any]) -> int | None:
    """What a deployer ships to run the scored model: base weights + adapter, the merged weights, or the GGUF."""
    if scored.subject == GGUF:
        from orchestrator.deploy import quantized_file

        return quantized_file(model_dir).stat().st_size
    total = _weights_bytes(model_dir)
    if scored.subject == ADAPTER:
        total += sum(_weights_bytes(adapter) for adapter in starting_adapters(project, config))
    if scored.subject in (ADAPTER, BASE):
        resolved = resolve_model(project, str(config["model_name_or_path"]))
        base = _weights_bytes(resolved.path) if resolved.path else 0
        total = base + (total if scored.subject == ADAPTER else 0)
    return total or None


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())


def _decode_speed(model: Any, prompts: list[list[int]]) -> dict[str, Any]:
    """Greedy decoding speed at batch 1 on this machine (tokens/s after the first prompt): what an app sees."""
    if not prompts:
        return {}
    if isinstance(model, llamacpp.GgufModel):
        rate = llamacpp.decode_speed(model, prompts[0], DECODE_SPEED_TOKENS)
    else:
        rate = decoding.decode_speed(model, prompts[0], DECODE_SPEED_TOKENS)
    return {"tokens_per_second": rate, "tokens_per_second_measured": f"batch 1, {DECODE_SPEED_TOKENS} greedy tokens"}


def training_config(project: Project, train_dir: Path) -> dict[str, Any]:
    """The config a training run was started with (its orch_config.yaml)."""
    path = train_dir / ORCH_CONFIG
    if not path.is_file():
        raise OrchError(
            f"{project.relative(train_dir)} has no {ORCH_CONFIG}: not a run orch trained",
            fix="train it with orch submit first",
        )
    return inputs.read_yaml_mapping(path, "training config")


def check_trained_on(project: Project, task: Task, train_dir: Path, config: dict[str, Any]) -> None:
    """Refuse to score a run on a task it was not trained for (its training dataset is another task's)."""
    from orchestrator.preference import pairs_dataset

    trained = str(config.get("dataset") or "")
    expected = task.datasets["train"].name
    names = [d.strip() for d in trained.split(",")]
    if trained and expected not in names and pairs_dataset(task) not in names:  # dpo: the task's pairs
        raise OrchError(
            f"{project.relative(train_dir)} was trained on {trained!r}, not on task {task.name}'s {expected!r}",
            fix=f"score it with its own task, or train MODEL for {task.name} (orch submit MODEL --task {task.name})",
        )


@dataclass(frozen=True)
class Scored:
    """What an evaluation scores: a run's adapter, its untrained base model, or its merged model."""

    run: Run  # the training run
    subject: str = ADAPTER
    checkpoint: str | None = None  # a checkpoint-N folder of the run: its adapter at that step

    def __post_init__(self) -> None:
        if self.subject not in MODEL_SUBJECTS:
            raise OrchError(f"cannot score subject {self.subject!r} with a model", fix=f"one of {MODEL_SUBJECTS}")
        if self.checkpoint is not None and self.subject != ADAPTER:
            raise OrchError(f"a checkpoint holds an adapter, not the {self.subject} model", fix="drop --checkpoint")
        if self.subject in (MERGED, GGUF) and self.run.trained().stage != stages.TRAINING:  # a dpo run's
            raise OrchError(
                f"the export and gguf stages merge the SFT adapter: {self.run.name} has no {self.subject} model",
                fix=f"score the {self.run.stage} run's adapter (drop --{self.subject}), or the SFT run's "
                f"{self.subject} model ({self.run.sibling(stages.TRAINING).name})",
            )

    def output_dir(self, project: Project) -> Path:
        """The output folder of the stage that holds the scored model (training; export for merged)."""
        return run_output_dir(project, self.run.sibling(Layout.scored_stage(self.subject, self.run.stage)))

    def model_dir(self, project: Project) -> Path:
        """The folder the scored model is loaded from (the output folder, or one complete checkpoint in it)."""
        out = self.output_dir(project)
        if self.checkpoint is None:
            return out
        if not out.is_dir():
            raise OrchError(f"{self.run.name} has no output folder ({project.relative(out)})", fix="train it first")
        path = out / self.checkpoint
        if outputs.CHECKPOINT_RE.match(self.checkpoint) is None or not path.is_dir():
            have = ", ".join(p.name for p in outputs.checkpoints(out) if outputs.is_complete(p)) or "none"
            raise OrchError(
                f"{project.relative(out)} has no checkpoint {self.checkpoint!r}", fix=f"complete ones: {have}"
            )
        problems = outputs.checkpoint_problems(path)
        if problems:
            raise OrchError(f"{project.relative(path)} is incomplete: {'; '.join(problems)}", fix="score another one")
        return path

    def eval_dir(self, project: Project, split: str, mode: str) -> Path:
        """Where this evaluation's predictions and metrics go (the layout decides)."""
        return self.output_dir(project) / Layout.eval_subpath(split, mode, self.subject, self.checkpoint)


def evaluate(
    project: Project, task: Task, scored: Scored, *, decoding_mode: str = "constrained", **options: Any
) -> EvalResult:
    """Decode every example of the split one way, then score and write predictions and metrics."""
    return evaluate_decodings(project, task, scored, decodings=(decoding_mode,), **options)[decoding_mode]


def evaluate_decodings(
    project: Project,
    task: Task,
    scored: Scored,
    *,
    decodings: tuple[str, ...] = DECODINGS,
    split: str = "test",
    limit: int | None = None,
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    operating_point: bool = True,
) -> dict[str, EvalResult]:
    """Score a run's adapter (or its base or merged model) with each decoding, one encoding of each prompt.

    Free decoding stops when its JSON object closes, or after `max_new_tokens` (default: 1.5x the longest
    valid answer). The prefix every prompt shares is computed once; prompts run in length-sorted batches
    (`batch_size`, default: chosen from free memory) and come back in the split's order. Results go to
    the scored model's output folder, `eval/<split>/<decoding>[-base]/` (the run layout decides).

    Where the task has a risk field, constrained decoding also gets the risk operating point: the val
    split is scored too (constrained, same model) to choose a threshold on P(risk), applied to `split`
    (`operating_point=False`: not).
    """
    import torch

    if not decodings or len(set(decodings)) != len(decodings) or not set(decodings) <= set(DECODINGS):
        raise OrchError(f"bad decodings {decodings!r}", fix=f"each of {DECODINGS} at most once")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = gold_rows(project, task, split, limit)
    train_dir = run_output_dir(project, scored.run)
    model_dir = scored.model_dir(project)
    config = training_config(project, train_dir)
    check_trained_on(project, task, train_dir, config)
    gguf = scored.subject == GGUF
    if gguf:
        tokenizer, template_name = gguf_tokenizer(project, model_dir, config)
    else:
        model, tokenizer, template_name = load_for_eval(
            project, model_dir, config, merged=scored.subject == MERGED, base=scored.subject == BASE
        )
    template = load_template(tokenizer, template_name)
    budget = max_new_tokens or decoding.answer_budget(task, tokenizer)
    prompts = [prompt_ids(template, tokenizer, row) for row in rows]
    val_rows = _val_rows(project, task, split, decodings, limit) if operating_point else []
    val_prompts = [prompt_ids(template, tokenizer, row) for row in val_rows]
    extra: dict[str, Any] = {"model_bytes": model_bytes(project, scored, model_dir, config)}
    if gguf:
        model, extra = _load_gguf(model_dir, tokenizer, prompts + val_prompts, budget, task, extra, rows)
    size = 1 if gguf else decoded_batch_size(model, prompts + val_prompts, batch_size)
    total = len(rows) + len(val_rows)

    def report(done: int, offset: int) -> None:
        if progress:
            progress(offset + done, total)

    chosen = _no_val_split(task, split, decodings) if operating_point else None
    if val_rows:  # the risk threshold is chosen on val before the split is scored
        val = _decode_all(model, tokenizer, task, val_prompts, ("constrained",), 1, size, lambda d, _t: report(d, 0))
        chosen = _threshold_on(task, val_rows, [d.probabilities for d in val["constrained"]], limit)
    speed = _decode_speed(model, prompts) if "free" in decodings else {}
    started = time.perf_counter()
    offset = len(val_rows)
    decoded = _decode_all(model, tokenizer, task, prompts, decodings, budget, size, lambda d, _t: report(d, offset))
    seconds = time.perf_counter() - started
    if operating_point and chosen is None and split == op.CHOSEN_ON and task.has_risk and "constrained" in decodings:
        chosen = _threshold_on(task, rows, [d.probabilities for d in decoded["constrained"]], limit)
    results = {}
    for mode, items in decoded.items():
        meta = {
            **_identity(task, scored.run, scored.subject),
            "split": split,
            "decoding": mode,
            "seconds": seconds,
            "examples_per_second": len(rows) / seconds if seconds else None,
            "max_new_tokens": budget if mode == "free" else None,
            "batch_size": size,
            "timed_with": list(decodings),  # one encoding of the prompts serves every decoding listed
            **({"checkpoint": scored.checkpoint} if scored.checkpoint else {}),
            **extra,
            **(speed if mode == "free" else {}),
        }
        out_dir = scored.eval_dir(project, split, mode)
        probabilities = [d.probabilities for d in items]
        point = chosen if mode == "constrained" else None
        results[mode] = _write(task, rows, [d.raw for d in items], probabilities, out_dir, meta, point)
    if gguf:
        from orchestrator.deploy import write_model_card

        model.close()
        write_model_card(project, task, model_dir, scored.run)  # the deployable folder's card gets the scores
    return results


def _threshold_on(
    task: Task, rows: list[dict], probabilities: list[Any], limit: int | None
) -> tuple[float | None, str]:
    """The risk threshold chosen on these (val) rows for the task's target recall (`limit`: said in the reason)."""
    positives = [task.at_risk(row["gold"]) for row in rows]
    threshold, reason = op.choose_threshold(op.risk_scores(task, probabilities), positives, task.min_risk_recall)
    return threshold, reason + (f" (the first {limit} val examples: --limit)" if limit else "")


def _no_val_split(task: Task, split: str, decodings: tuple[str, ...]) -> tuple[None, str] | None:
    """Why no risk threshold can be chosen for `split` when the task has no val split (None: it has one)."""
    if not task.has_risk or "constrained" not in decodings or split == op.CHOSEN_ON or op.CHOSEN_ON in task.datasets:
        return None
    return None, f"task {task.name} has no {op.CHOSEN_ON} split to choose a threshold on"


def _val_rows(
    project: Project, task: Task, split: str, decodings: tuple[str, ...], limit: int | None
) -> list[dict[str, Any]]:
    """The val rows to choose the risk threshold on when scoring another split (none if it does not apply)."""
    wanted = task.has_risk and "constrained" in decodings and split != op.CHOSEN_ON
    if not wanted or op.CHOSEN_ON not in task.datasets:
        return []
    return gold_rows(project, task, op.CHOSEN_ON, limit)


def decoded_batch_size(model: Any, prompts: list[list[int]], batch_size: int | None) -> int:
    """The batch size used: the one asked for, or the one free memory allows for the longest prompt."""
    return batch_size or decoding.auto_batch_size(model, max((len(p) for p in prompts), default=1))


def _decode_all(
    model: Any,
    tokenizer: Any,
    task: Task,
    prompts: list[list[int]],
    decodings: tuple[str, ...],
    budget: int,
    size: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, list[decoding.Decoded]]:
    """Every prompt decoded each way, in the prompts' order: shared prefix once, length-sorted batches."""
    if not prompts:
        return {d: [] for d in decodings}
    if isinstance(model, llamacpp.GgufModel):
        return llamacpp.decode_all(model, tokenizer, task, prompts, decodings, budget, progress)
    prefix = decoding.SharedPrefix(model, decoding.common_prefix(prompts))
    out: dict[str, list[Any]] = {d: [None] * len(prompts) for d in decodings}
    done = 0
    for batch in decoding.length_sorted_batches(prompts, size):
        chunk = [prompts[i] for i in batch]
        if len(decodings) == len(DECODINGS):
            chosen, generated = decoding.both(model, tokenizer, task, chunk, budget, prefix)
            results = {"constrained": chosen, "free": generated}
        elif decodings[0] == "constrained":
            results = {"constrained": decoding.constrained(model, tokenizer, task, chunk, prefix)}
        else:
            results = {"free": decoding.free(model, tokenizer, chunk, budget, prefix)}
        for mode, items in results.items():
            for i, item in zip(batch, items, strict=True):
                out[mode][i] = item
        done += len(batch)
        if progress:
            progress(done, len(prompts))
    return out


def _identity(task: Task, run: Run | None, subject: str) -> dict[str, Any]:
    """What every metrics.json says about what it scored (the comparison groups and filters by it)."""
    return {"task": task.name, "run": run.name if run else None, "subject": subject}


def _write(
    task: Task,
    rows: list[dict],
    raws: list[str],
    probabilities: list[Any],
    out_dir: Path,
    meta: dict[str, Any],
    chosen: tuple[float | None, str] | None = None,
) -> EvalResult:
    lines, metrics = _score(task, rows, raws, probabilities, meta)
    scores = op.risk_scores(task, probabilities) if metrics.get("risk") else []
    if any(s is not None for s in scores):  # constrained decoding: P(risk) for every example
        positives = [task.at_risk(row["gold"]) for row in rows]
        if chosen is not None:
            metrics["risk"]["operating_point"] = op.operating_point(task, chosen, scores, positives)
        metrics["risk"]["curve"] = op.curve(scores, positives)
        metrics["risk"]["positive_ranks"] = op.positive_ranks(scores, positives)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = out_dir / "predictions.jsonl"
    write_text_atomic(predictions, "\n".join(lines) + "\n")
    write_json_atomic(out_dir / "metrics.json", metrics)
    return EvalResult(predictions, metrics)


def _score(
    task: Task, rows: list[dict], raws: list[str], probabilities: list[Any], meta: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """The prediction lines and the metrics of raw outputs against the rows' gold labels."""
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
    return lines, metrics


def score_predictions_file(project: Project, task: Task, path: Path) -> EvalResult:
    """Score LLaMA-Factory's generated_predictions.jsonl (`predict`, `label`) with the task metrics."""
    rows, raws = [], []
    for line in inputs.read_jsonl(path):
        item = line.data
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("label"), str)
            or not isinstance(item.get("predict"), str)
        ):
            raise InputError(
                path,
                "a prediction row is an object with `predict` and `label` strings",
                line=line.number,
                fix="give the generated_predictions.jsonl that `llamafactory-cli train --do_predict` wrote",
            )
        gold = extract(task, item["label"])
        if not gold.valid:
            raise InputError(
                path,
                f"the label is not a valid {task.name} answer: {gold.errors}",
                line=line.number,
                fix="score predictions made on this task's data (see --task)",
            )
        rows.append({"id": f"{path.name}:{line.number}", "gold": gold.labels})
        raws.append(item["predict"])
    if not rows:
        raise InputError(path, "holds no predictions", fix="give a generated_predictions.jsonl with rows")
    meta = {**_identity(task, None, LF_PREDICT), "decoding": "llamafactory-predict", "source": str(path)}
    return _write(task, rows, raws, [None] * len(rows), Layout(project).predictions_eval_dir(path), meta)


def baseline_labels(project: Project, task: Task, kind: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A model-free labeler of a row: the majority of the training labels, or the task's rules lexicons."""
    if kind == MAJORITY:
        constant = majority_labels(gold_rows(project, task, "train"), task)
        return lambda _row: constant
    if kind == RULES:
        labeler = load_rules(task)
        return lambda row: labeler.label(client_text(str(row.get("input", ""))))
    raise OrchError(f"unknown baseline {kind!r}", fix=f"one of {', '.join(BASELINE_KINDS)}")


def majority_labels(rows: list[dict[str, Any]], task: Task) -> dict[str, Any]:
    """Each field's most frequent gold label (ties: the first allowed value): the label prior as a constant."""
    if not rows:
        raise OrchError(f"task {task.name}'s train split is empty: no majority to take", fix="prepare the data first")
    out = {}
    for name in task.field_names:
        counts = Counter(row["gold"][name] for row in rows)
        order = {value: i for i, value in enumerate(task.field_values(name))}
        out[name] = min(counts, key=lambda v: (-counts[v], order.get(v, len(order))))
    return out


def baseline_kinds(task: Task) -> tuple[str, ...]:
    """The baselines a task has: the majority always, the rules labeler when its file names lexicons."""
    return (MAJORITY, RULES) if has_rules(task) else (MAJORITY,)


def _baseline(project: Project, task: Task, kind: str, split: str, limit: int | None) -> tuple[list, list, dict]:
    """A model-free baseline's rows, raw answers and metadata on a split."""
    labeler = baseline_labels(project, task, kind)
    rows = gold_rows(project, task, split, limit)
    started = time.perf_counter()
    raws = [task.canonical_answer(labeler(row)) for row in rows]
    seconds = time.perf_counter() - started
    meta = {
        **_identity(task, None, kind),
        "split": split,
        "decoding": kind,
        "seconds": seconds,
        "examples_per_second": len(rows) / seconds if seconds else None,
    }
    return rows, raws, meta


def baseline_metrics(project: Project, task: Task, kind: str, split: str = "test") -> dict[str, Any]:
    """A model-free baseline's metrics on a split, written nowhere (for read-only commands such as diagnose)."""
    rows, raws, meta = _baseline(project, task, kind, split, None)
    return _score(task, rows, raws, [None] * len(rows), meta)[1]


def evaluate_baseline(
    project: Project, task: Task, kind: str, split: str = "test", limit: int | None = None
) -> EvalResult:
    """Score a model-free baseline on a split and write it, as a row for `orch collect`."""
    rows, raws, meta = _baseline(project, task, kind, split, limit)
    return _write(task, rows, raws, [None] * len(rows), Layout(project).baseline_dir(task.name, kind, split), meta)


def record_evaluation(project: Project, result: EvalResult, run: Run | None, command: str = "") -> None:
    """An `evaluated` entry in steps.md with the headline numbers; in the ledger too for a trained run.

    `run` None is a model-free baseline (no job, nothing to resume: steps.md only).
    """
    metrics = result.metrics
    who = SUBJECT_WORDS.get(metrics.get("subject"), "the run")
    message = f"{who} scored on the {metrics.get('split')} split ({metrics.get('decoding')} decoding)"
    fields = {
        "message": message,
        "command": command or None,
        "output_dir": project.relative(result.predictions.parent),
        "table": "\n".join(f"- {line}" for line in summary(metrics).splitlines()),
    }
    if run is not None:
        record_event(project, run, Event.EVALUATED, **fields)
    else:
        subject = f"{metrics.get('subject')} baseline · {metrics.get('task')}"
        steps.append_entry(
            project.templates,
            project.steps,
            {"time": ledger.now(), "event": Event.EVALUATED, "run": subject, **fields},
        )
