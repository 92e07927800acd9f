"""The learning curve: every complete checkpoint of a training run scored on a split, step by step.

A falling loss says the model fits its training answers; it does not say the
model reads its inputs. The curve scores each checkpoint's adapter on the
task itself (constrained decoding, the risk threshold chosen on val as in
`orch eval`) and puts beside the training loss what a reviewer needs to see
where, if anywhere, the model leaves the label prior: how many distinct
answers it gives, all-fields-correct against the majority baseline, the
ordinal fields' QWK, any-risk recall by argmax and at the val threshold, and
where the at-risk examples rank by P(risk). Written to the run's
`eval/checkpoints/learning-curve-<split>.{md,json}` (the layout decides).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import outputs
from orchestrator.errors import OrchError
from orchestrator.evaluation.evaluate import Scored, baseline_metrics, evaluate_decodings
from orchestrator.evaluation.metrics import operating_point_text
from orchestrator.evaluation.prior import BEYOND, COLLAPSED, VERDICT, judge_prior
from orchestrator.evaluation.stats import rate_text
from orchestrator.fileio import write_json_atomic, write_text_atomic
from orchestrator.layout import MAJORITY, Layout, Run
from orchestrator.project import Project
from orchestrator.runs import run_output_dir
from orchestrator.task import Task

COLUMNS = (
    "step",
    "train loss",
    "distinct answers",
    "all fields right",
    "QWK",
    "risk recall (argmax)",
    "risk recall (val threshold)",
    "at-risk P(risk) ranks",
    "verdict",
)


@dataclass(frozen=True)
class CurvePoint:
    """One checkpoint scored: its step, the mean training loss logged since the previous one, its metrics."""

    checkpoint: str
    step: int
    loss: float | None
    metrics: dict[str, Any]


@dataclass(frozen=True)
class LearningCurve:
    points: list[CurvePoint]
    rows: list[dict[str, str]]
    table: str
    left_prior_at: int | None  # the first step that is not the label prior only (None: never)
    paths: dict[str, Path]

    @property
    def verdict(self) -> str:
        return left_prior_text(self.left_prior_at)


def left_prior_text(step: int | None) -> str:
    """What the curve says in one line: whether, and at which step, the run left the label prior."""
    return f"first left the label prior at step {step}" if step is not None else "never left the label prior"


def complete_checkpoints(project: Project, run: Run) -> list[Path]:
    """The run's checkpoints training could resume from, in step order (the ones worth scoring)."""
    out = run_output_dir(project, run)
    if not out.is_dir():
        raise OrchError(f"{run.name} has no output folder ({project.relative(out)})", fix="train it first")
    found = [p for p in outputs.checkpoints(out) if outputs.is_complete(p)]
    if not found:
        raise OrchError(
            f"{run.name} has no complete checkpoint to score",
            fix="train with save_steps below max_steps (and save_total_limit high enough to keep them)",
        )
    return found


def step_of(checkpoint: Path) -> int:
    """The step a `checkpoint-N` folder was saved at."""
    match = outputs.CHECKPOINT_RE.match(checkpoint.name)
    if match is None:
        raise OrchError(f"{checkpoint} is not a checkpoint-N folder")
    return int(match.group(1))


def mean_loss(losses: list[tuple[int, float]], after: int, upto: int) -> float | None:
    """The mean of the training losses logged at steps in (after, upto]: one batch's loss is noise.

    A step logged twice (a resumed run repeats the steps after its checkpoint) counts once, as last logged.
    """
    window = [loss for step, loss in dict(losses).items() if after < step <= upto]
    return sum(window) / len(window) if window else None


def learning_curve(
    project: Project,
    task: Task,
    run: Run,
    *,
    split: str = "test",
    batch_size: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> LearningCurve:
    """Score every complete checkpoint of a training run on `split`, and write the curve beside them."""
    found = complete_checkpoints(project, run)
    losses = outputs.logged_losses(run_output_dir(project, run))
    points, previous = [], 0
    for checkpoint in found:
        step = step_of(checkpoint)

        def report(done: int, total: int, name: str = checkpoint.name) -> None:
            if progress:
                progress(name, done, total)

        result = evaluate_decodings(
            project,
            task,
            Scored(run, checkpoint=checkpoint.name),
            decodings=("constrained",),
            split=split,
            batch_size=batch_size,
            progress=report,
        )["constrained"]
        points.append(CurvePoint(checkpoint.name, step, mean_loss(losses, previous, step), result.metrics))
        previous = step
    majority = baseline_metrics(project, task, MAJORITY, split)
    rows = [curve_row(task, point, majority) for point in points]
    left = next((p.step for p in points if judge_prior(task, p.metrics, majority).state == BEYOND), None)
    table = curve_table(rows)
    paths = _write(project, run, split, points, rows, table, left)
    return LearningCurve(points, rows, table, left, paths)


def curve_row(task: Task, point: CurvePoint, majority: dict[str, Any]) -> dict[str, str]:
    """One checkpoint as a row of the curve's table (every column of COLUMNS)."""
    metrics = point.metrics
    rates = metrics.get("rates") or {}
    spread = metrics.get("answers") or {}
    qwk = [
        "n/a" if field.get("qwk") is None else f"{field['qwk']:.2f}"
        for field in (metrics.get("fields") or {}).values()
        if "qwk" in field
    ]
    risk = metrics.get("risk") or {}
    point_at = risk.get("operating_point") or {}
    ranks = risk.get("positive_ranks")
    judged = judge_prior(task, metrics, majority)
    verdict = {
        COLLAPSED: f"{VERDICT}: {judged.reason}",
        BEYOND: f"beyond the prior on: {judged.reason}",
    }.get(judged.state, f"cannot tell: {judged.reason}")
    return {
        "step": str(point.step),
        "train loss": "n/a" if point.loss is None else f"{point.loss:.3f}",
        "distinct answers": str(spread.get("distinct", "n/a")),
        "all fields right": rate_text(rates.get("all_fields_correct")),
        "QWK": "/".join(qwk) if any(q != "n/a" for q in qwk) else "n/a",
        "risk recall (argmax)": rate_text(rates.get("risk.any_risk_recall")) if task.has_risk else "n/a",
        "risk recall (val threshold)": _at_threshold(point_at) if task.has_risk else "n/a",
        "at-risk P(risk) ranks": _ranks(ranks, _n(rates)),
        "verdict": verdict,
    }


def _at_threshold(point: dict[str, Any]) -> str:
    if point.get("threshold") is None:
        return operating_point_text(point) if point else "n/a"
    return f"{rate_text(point['recall'])}, flags {rate_text(point['flagged'])}"


def _n(rates: dict[str, Any]) -> int | None:
    return (rates.get("valid_rate") or {}).get("n")


def _ranks(ranks: list[int | None] | None, n: int | None) -> str:
    if not ranks:
        return "n/a"
    shown = ", ".join("n/a" if r is None else str(r) for r in ranks)
    return f"{shown} of {n}" if n else shown


def curve_table(rows: list[dict[str, str]]) -> str:
    """The curve as a markdown table, one row per checkpoint."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def _write(
    project: Project,
    run: Run,
    split: str,
    points: list[CurvePoint],
    rows: list[dict[str, str]],
    table: str,
    left: int | None,
) -> dict[str, Path]:
    stem = run_output_dir(project, run) / Layout.learning_curve_stem(split)
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
    said = left_prior_text(left)
    write_text_atomic(md, f"# Learning curve of {run.name} on the {split} split\n\n{table}\n\nThe run {said}.\n")
    write_json_atomic(
        js,
        {
            "run": run.name,
            "split": split,
            "left_prior_at": left,
            "points": [
                {"checkpoint": p.checkpoint, "step": p.step, "train_loss": p.loss, "row": row}
                for p, row in zip(points, rows, strict=True)
            ],
        },
    )
    return {"markdown": md, "json": js}
