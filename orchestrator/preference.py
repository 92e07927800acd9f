"""Preference pairs for DPO from the SFT model's own mistakes: relevant to their prompts by construction.

`orch dpo pairs RUN` scores the SFT run on a split (the train split by default) with constrained
decoding, the same scorer as `orch eval`, and writes LLaMA-Factory ranking data (alpaca columns
`instruction`, `input`, `chosen`, `rejected`):

- chosen is always the gold answer (canonical JSON);
- rejected is an answer to the *same prompt*, valid under the task's schema:
  - `model_error`: the model's own wrong answer;
  - `risk_negative`: for a gold at-risk row, the gold answer with the risk field set to its negative
    value (the most dangerous mistake, rejected on every at-risk row; `risk_share` of them);
  - `near_miss` (only with `keep_correct`): for a row the model already gets right, the gold answer with
    the field the model was least sure of set to its runner-up value.

Every pair is checked before anything is written (same prompt tokens as the training row, chosen valid and
gold, rejected valid and different) and the stats file counts pairs by kind and by field. The folder's
dataset_info.json (rendered from templates/stages/dataset_info.json.j2) declares the pairs as ranking data
named `<split dataset>_pairs`: the dpo stage's config reads the train split's from there.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import inputs
from orchestrator.datasets import parse_answer
from orchestrator.errors import OrchError
from orchestrator.fileio import write_json_atomic, write_text_atomic
from orchestrator.project import Project
from orchestrator.runs import Run, sha256_text
from orchestrator.task import Task

MODEL_ERROR, RISK_NEGATIVE, NEAR_MISS = "model_error", "risk_negative", "near_miss"
SETTINGS = ("limit", "risk_share", "keep_correct", "seed")  # what decides which pairs are built (stats record them)
PAIRS_SUFFIX = "_pairs"  # a split's pairs are the dataset `<the split's dataset name>_pairs`


def pairs_dataset(task: Task, split: str = "train") -> str:
    """The dataset name of a split's DPO pairs (the dpo stage trains on the train split's)."""
    return f"{task.datasets[split].name}{PAIRS_SUFFIX}"


@dataclass
class PairSet:
    """The pairs built, and the counts that describe them."""

    pairs: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def _differs(task: Task, gold: dict[str, Any], other: dict[str, Any]) -> list[str]:
    return [name for name in task.field_names if other.get(name) != gold.get(name)]


def _near_miss(task: Task, gold: dict[str, Any], probabilities: dict[str, dict[str, float]] | None) -> dict | None:
    """The gold answer with the least certain field set to its runner-up value (None without probabilities)."""
    if not probabilities:
        return None
    best: tuple[float, str, Any] | None = None
    for name in task.field_names:
        dist = probabilities.get(name) or {}
        values = {str(v): v for v in task.field_values(name)}
        ranked = sorted(((p, k) for k, p in dist.items() if k in values and values[k] != gold.get(name)), reverse=True)
        if not ranked:
            continue
        margin = float(dist.get(str(gold.get(name)), 0.0)) - ranked[0][0]
        if best is None or margin < best[0]:
            best = (margin, name, values[ranked[0][1]])
    return None if best is None else {**gold, best[1]: best[2]}


def pairs_from_scoring(
    task: Task,
    rows: list[dict[str, Any]],
    predictions: list[dict[str, Any]],
    risk_share: float = 1.0,
    keep_correct: float = 0.0,
    seed: int = 0,
) -> PairSet:
    """The pairs for scored rows (`predictions[i]` holds row i's `parsed` answer and field `probabilities`)."""
    for name, share in (("risk_share", risk_share), ("keep_correct", keep_correct)):
        if not 0.0 <= share <= 1.0:
            raise OrchError(f"{name}={share}: a share between 0 and 1", fix=f"e.g. --{name.replace('_', '-')} 0.5")
    rng = random.Random(seed)
    out = PairSet()
    kinds: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    skipped = 0
    for row, pred in zip(rows, predictions, strict=True):
        gold = row["gold"]
        parsed = pred.get("parsed")
        candidates: list[tuple[str, dict[str, Any]]] = []
        right = isinstance(parsed, dict) and not _differs(task, gold, parsed)
        if isinstance(parsed, dict) and not right and not task.answer_errors(parsed):
            candidates.append((MODEL_ERROR, parsed))
        if task.has_risk and task.at_risk(gold) and rng.random() < risk_share:
            candidates.append((RISK_NEGATIVE, {**gold, str(task.risk_field): task.risk_negative}))
        if right and keep_correct and rng.random() < keep_correct:
            near = _near_miss(task, gold, pred.get("probabilities"))
            if near is not None:
                candidates.append((NEAR_MISS, near))
        if not candidates:
            skipped += 1
        seen: set[str] = set()
        for kind, rejected in candidates:
            text = task.canonical_answer(rejected)
            if text in seen:
                continue
            seen.add(text)
            kinds[kind] += 1
            fields.update(_differs(task, gold, rejected))
            out.pairs.append(
                {
                    "instruction": row.get("instruction", ""),
                    "input": row.get("input", ""),
                    "chosen": task.canonical_answer(gold),
                    "rejected": text,
                    "id": row.get("id"),
                    "kind": kind,
                }
            )
    out.stats = {
        "task": task.name,
        "rows": len(rows),
        "pairs": len(out.pairs),
        "rows_without_pair": skipped,
        "by_kind": dict(sorted(kinds.items())),
        "by_field": dict(sorted(fields.items())),
        "risk_share": risk_share,
        "keep_correct": keep_correct,
        "seed": seed,
        **_collapse(predictions),
    }
    return out


COLLAPSED = 0.9  # this share of one answer: the model learned the label prior (collect says so too)


def _collapse(predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """How often the model gave its most common answer, and a warning when that is nearly always: DPO on its
    pairs then rejects one constant answer and moves the model to another (measured on the demo model)."""
    answers = Counter(json.dumps(p["parsed"], sort_keys=True) for p in predictions if isinstance(p.get("parsed"), dict))
    share = answers.most_common(1)[0][1] / len(predictions) if answers else 0.0
    out: dict[str, Any] = {"most_common_answer_share": round(share, 4)}
    if share >= COLLAPSED:
        out["warning"] = (
            f"the SFT model gives one answer to {share:.0%} of the rows (it learned the label prior): DPO on these "
            "pairs moves it to another constant answer, it does not teach the task; fix the SFT run first"
        )
    return out


def check_pairs(
    task: Task,
    pairs: list[dict[str, Any]],
    prompt_tokens: Callable[[dict[str, Any]], list[int]],
    training: dict[str, list[int]],
) -> list[str]:
    """Every problem of a pair set, one line each: chosen valid and gold, rejected valid and different, and the
    prompt tokens the training row's (`training`: the training prompt's ids by row id)."""
    problems = []
    for number, pair in enumerate(pairs, start=1):
        where = f"pair {number} ({pair.get('id')})"
        chosen, rejected = _parse(pair.get("chosen")), _parse(pair.get("rejected"))
        if chosen is None or task.answer_errors(chosen):
            problems.append(f"{where}: chosen is not a valid answer")
        if rejected is None or task.answer_errors(rejected):
            problems.append(f"{where}: rejected is not a valid answer")
        if pair.get("chosen") == pair.get("rejected"):
            problems.append(f"{where}: rejected equals chosen")
        ids = training.get(str(pair.get("id")))
        if ids is not None and prompt_tokens(pair) != ids:
            problems.append(f"{where}: its prompt tokens differ from the training row's")
    return problems


def _parse(text: Any) -> Any:
    return parse_answer(text)[0]


def build_pairs(
    project: Project,
    task: Task,
    run: Run,
    out: Path,
    *,
    split: str = "train",
    limit: int | None = None,
    risk_share: float = 1.0,
    keep_correct: float = 0.0,
    seed: int = 0,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    declare: bool = True,
) -> PairSet:
    """Score the SFT run on `split`, build and check the pairs, write them (JSONL) and their stats (atomically),
    and (`declare`) the folder's dataset_info.json: only in the run's own preference folder, never over
    another folder's registry."""
    from transformers import AutoTokenizer

    from orchestrator.evaluation.evaluate import Scored, evaluate_decodings, gold_rows, training_config
    from orchestrator.evaluation.prompts import load_template, prompt_ids
    from orchestrator.layout import ADAPTER
    from orchestrator.models import resolve_model
    from orchestrator.runs import run_output_dir

    rows = gold_rows(project, task, split, limit)
    result = evaluate_decodings(
        project,
        task,
        Scored(run, ADAPTER),
        decodings=("constrained",),
        split=split,
        limit=limit,
        batch_size=batch_size,
        progress=progress,
        operating_point=False,
    )["constrained"]
    predictions = [line.data for line in inputs.read_jsonl(result.predictions)]
    built = pairs_from_scoring(task, rows, predictions, risk_share, keep_correct, seed)
    config = training_config(project, run_output_dir(project, run))
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model(project, str(config["model_name_or_path"])).path))
    template = load_template(tokenizer, str(config["template"]))
    training = {str(row["id"]): prompt_ids(template, tokenizer, row) for row in rows}
    problems = check_pairs(task, built.pairs, lambda pair: prompt_ids(template, tokenizer, pair), training)
    if problems:
        raise OrchError("the pairs failed their checks; nothing was written:\n  " + "\n  ".join(problems[:20]))
    if not built.pairs:
        raise OrchError(
            f"no pairs from the {len(rows)} {split} row(s): {run.name} gave no valid wrong answer and no at-risk "
            "row was given a risk negative, so DPO has nothing to learn from; nothing was written",
            fix="keep a share of the rows it gets right (--keep-correct 0.3; in a chain --set pairs.keep_correct=0.3)",
        )
    text = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in built.pairs)
    built.stats.update(
        {
            "run": run.name,
            "split": split,
            "limit": limit,
            "scored": project.relative(result.predictions),
            "pairs_sha256": sha256_text(text),  # which pairs file these stats describe (three files, three writes)
        }
    )
    write_text_atomic(out, text)
    write_json_atomic(stats_path(out), built.stats)
    if declare:
        write_dataset_info(project, task, out, split)
    return built


def write_dataset_info(project: Project, task: Task, out: Path, split: str) -> Path:
    """Declare the pairs files of `out`'s folder (ranking data) in its dataset_info.json, from the template:
    the dpo config's `dataset_dir` is that folder."""
    from orchestrator.catalog import Catalog
    from orchestrator.layout import Layout
    from orchestrator.render import DATASET_INFO, render_pairs_info

    folder = out.parent
    files = {
        pairs_dataset(task, name): Layout.pairs_file_name(name)
        for name in task.datasets
        if (folder / Layout.pairs_file_name(name)).is_file()
    }
    files[pairs_dataset(task, split)] = out.name
    info = folder / DATASET_INFO
    write_text_atomic(info, render_pairs_info(Catalog(project), files))
    return info


def stats_path(pairs_file: Path) -> Path:
    """The stats file beside a pairs file: `<name>.stats.json`."""
    return pairs_file.with_name(pairs_file.stem + ".stats.json")
