"""`orch collect`: every evaluated run side by side.

One row per evaluation of the task (model, method, decoding, split) found
under the saves folder, with the training facts LLaMA-Factory wrote
(trainable parameters, steps, epochs, runtime, losses) beside the task
metrics, and the majority baseline of every split (each field's most frequent
training label: a model that learned only the label prior scores exactly
this). Where the task has a risk field its recall comes first, and rows below
the task's `risk.min_recall` are flagged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import ledger, outputs, steps, throughput
from orchestrator.errors import OrchError
from orchestrator.fileio import write_text_atomic
from orchestrator.layout import ADAPTER, BASE, MAJORITY, MERGED, RULES, EvalIdentity, Layout, read_metrics
from orchestrator.project import Project
from orchestrator.report import format_cell
from orchestrator.runs import run_output_dir
from orchestrator.stages import Event
from orchestrator.task import Task

RISK_LOW = "risk_recall_low"  # the flag column: any-risk recall below the task's min_recall
SUBJECT_METHOD = {BASE: "base (untrained)", MAJORITY: "majority baseline", RULES: "rules baseline"}


@dataclass
class Row:
    """One line of the comparison table."""

    values: dict[str, Any]
    metrics_path: Path
    run_dir: Path | None  # the training run's output folder (None for a model-free baseline)


def row_for(project: Project, task: Task, metrics_path: Path, metrics: dict[str, Any], ident: EvalIdentity) -> Row:
    """A comparison row from one metrics.json and, for a trained run, its training files."""
    trained = ident.run is not None and ident.subject in (ADAPTER, MERGED)
    run_dir = run_output_dir(project, ident.run) if ident.run is not None else None
    values: dict[str, Any] = {
        "model": ident.run.model if ident.run else ident.subject,
        "method": _method_label(ident),
        "decoding": metrics.get("decoding"),
        "split": metrics.get("split"),
        "n": metrics.get("n"),
    }
    values.update(_risk_columns(task, metrics))
    parse = metrics.get("parse") or {}
    values.update(
        {
            "valid_rate": metrics.get("valid_rate"),
            "strict_rate": parse.get("strict_rate"),
            "repaired_rate": parse.get("repaired_rate"),
            "all_fields_correct": metrics.get("all_fields_correct"),
        }
    )
    for name, field_metrics in (metrics.get("fields") or {}).items():
        values[f"{name}_acc"] = field_metrics.get("accuracy")
        kind = "qwk" if "qwk" in field_metrics else "macro_f1"
        values[f"{name}_{kind}"] = field_metrics.get(kind)
    train = outputs.training_summary(run_dir) if trained and run_dir else {}
    speed = throughput.run_throughput(project, ident.run, run_dir) if trained and run_dir else None
    values.update(
        {
            "trainable_params": outputs.trainable_params(run_dir) if trained and run_dir else None,
            "steps": train.get("global_step"),
            "epochs": train.get("epoch"),
            "runtime_s": train.get("train_runtime"),
            "train_loss": train.get("train_loss"),
            "eval_loss": train.get("eval_loss"),
            "train_tokens_per_s": speed.tokens_per_s if speed else None,
            "mfu": speed.mfu if speed else None,
            "examples_per_s": metrics.get("examples_per_second"),
        }
    )
    return Row(values, metrics_path, run_dir if trained else None)


def _method_label(ident: EvalIdentity) -> str:
    if ident.subject in SUBJECT_METHOD or ident.run is None:
        return SUBJECT_METHOD.get(ident.subject, ident.subject)
    return f"{ident.run.method} merged" if ident.subject == MERGED else ident.run.method


def _risk_columns(task: Task, metrics: dict[str, Any]) -> dict[str, Any]:
    """Any-risk recall and per-class recall first, when the task has a risk field."""
    if not task.has_risk:
        return {}
    risk = metrics.get("risk") or {}
    out = {"any_risk_recall": risk.get("any_risk_recall")}
    for cls, info in (risk.get("per_class_recall") or {}).items():
        out[f"recall_{cls}"] = info.get("recall")
    return out


def evaluated(project: Project, task: Task) -> list[tuple[Path, dict[str, Any], EvalIdentity]]:
    """Every evaluation of `task` under the saves folder (other tasks' are never read as this one's)."""
    layout = Layout(project)
    found = []
    for path in layout.metrics_files():
        metrics = read_metrics(path)
        ident = layout.identify(path, metrics)
        if ident.task == task.name:
            found.append((path, metrics, ident))
    return found


def with_majority(
    project: Project, task: Task, found: list[tuple[Path, dict[str, Any], EvalIdentity]]
) -> list[tuple[Path, dict[str, Any], EvalIdentity]]:
    """The evaluations with the majority baseline scored afresh on each of their splits (cheap: no model).

    Afresh, because the training labels it is taken from may have changed since it was last written.
    """
    from orchestrator.evaluation.evaluate import evaluate_baseline

    models = [item for item in found if item[2].subject != MAJORITY]
    splits = sorted({str(m.get("split")) for _, m, _ in models} & set(task.datasets))
    majority = [evaluate_baseline(project, task, MAJORITY, split) for split in splits]
    return models + [
        (r.predictions.parent / "metrics.json", r.metrics, EvalIdentity(task.name, None, MAJORITY)) for r in majority
    ]


def collect(project: Project, task: Task, sort: str | None = None, threshold: float | None = None) -> list[Row]:
    """Rows for every evaluation of `task` (with the majority baseline), sorted best first, risk flagged."""
    threshold = task.min_risk_recall if threshold is None else threshold
    found = with_majority(project, task, evaluated(project, task))
    rows = [row_for(project, task, path, metrics, ident) for path, metrics, ident in found]
    if task.has_risk:
        for row in rows:
            recall = row.values.get("any_risk_recall")
            row.values[RISK_LOW] = recall is not None and recall < threshold
    sort = sort or default_sort(task)
    if rows and sort not in rows[0].values:
        raise OrchError(f"cannot sort by {sort!r}", fix=f"columns: {', '.join(rows[0].values)}")
    reverse = not (sort.endswith("_loss") or sort == RISK_LOW)  # best first: low losses, unflagged rows

    def key(row: Row) -> tuple:
        value = row.values.get(sort)
        numeric = isinstance(value, (int, float))
        number = value if numeric else 0
        return (value is None, -number if reverse else number, "" if numeric else str(value))

    rows.sort(key=key)
    return rows


def default_sort(task: Task) -> str:
    """Risk recall first where the task has a risk field, else all fields correct."""
    return "any_risk_recall" if task.has_risk else "all_fields_correct"


def to_markdown(rows: list[Row], threshold: float, task: Task) -> str:
    """The table as Markdown, with a legend line for the flag."""
    if not rows:
        return "No evaluated runs yet: run `orch eval MODEL/METHOD` first.\n"
    columns = list(rows[0].values)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [format_cell(row.values.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if task.has_risk:
        lines.append(
            f"`{RISK_LOW}`: any-risk recall ({task.risk_field} not {task.risk_negative}) below {threshold:.2f} "
            "(missing a risk is the worst error). n/a: the split has no at-risk examples or the value does not apply."
        )
    lines.append("The majority baseline answers every example with each field's most frequent training label.")
    return "\n".join(lines) + "\n"


def write_reports(project: Project, task: Task, rows: list[Row], threshold: float) -> dict[str, Path]:
    """The task's comparison.md, .csv, a self-contained .html and index.html (with the journal)."""
    import pandas as pd

    from orchestrator.report import comparison_html, steps_links

    out = Layout(project).reports_dir(task.name)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "md": out / "comparison.md",
        "csv": out / "comparison.csv",
        "html": out / "comparison.html",
        "index": out / "index.html",
    }
    write_text_atomic(paths["md"], f"# Comparison: task {task.name}\n\n" + to_markdown(rows, threshold, task))
    frame = pd.DataFrame([r.values for r in rows], dtype=object)  # ints stay ints beside baseline rows
    write_text_atomic(paths["csv"], frame.to_csv(index=False))
    write_text_atomic(paths["html"], comparison_html(rows, threshold, task))
    link = os.path.relpath(project.steps, out)
    journal = steps_links(project.steps, link)
    write_text_atomic(paths["index"], comparison_html(rows, threshold, task, journal=journal))
    return paths


@dataclass
class Comparison:
    """What `orch collect` produced."""

    rows: list[Row]
    table: str
    flagged: list[Row]
    paths: dict[str, Path]
    threshold: float


def compare(
    project: Project,
    task: Task,
    sort: str | None = None,
    threshold: float | None = None,
    command: str = "",
) -> Comparison:
    """Collect every evaluation of a task, journal the table in steps.md, then write the reports."""
    threshold = task.min_risk_recall if threshold is None else threshold
    rows = collect(project, task, sort=sort, threshold=threshold)
    table = to_markdown(rows, threshold, task)
    flagged = [r for r in rows if r.values.get(RISK_LOW)]
    entry = {
        "time": ledger.now(),
        "event": Event.COLLECTED,
        "run": f"all runs · {task.name}",
        "message": f"{len(rows)} evaluation(s) of task {task.name} compared, sorted by {sort or default_sort(task)}; "
        f"{len(flagged)} flagged for risk recall",
        "command": command or None,
        "table": table,
    }
    steps.append_entry(project.templates, project.steps, entry)
    return Comparison(rows, table, flagged, write_reports(project, task, rows, threshold), threshold)
