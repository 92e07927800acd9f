"""`orch collect`: every evaluated run side by side.

One row per (model, method, decoding) found under the saves folder, with the
training facts LLaMA-Factory wrote (trainable parameters, steps, epochs,
runtime, losses) beside the task metrics. Risk recall comes first; rows whose
any-risk recall is below the threshold are flagged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import ledger, steps
from orchestrator.fileio import write_text_atomic
from orchestrator.project import Project
from orchestrator.report import format_cell
from orchestrator.runs import training_summary
from orchestrator.task import Task

DEFAULT_THRESHOLD = 0.9


@dataclass
class Row:
    """One line of the comparison table."""

    values: dict[str, Any]
    metrics_path: Path
    run_dir: Path


def find_metrics(saves: Path) -> list[Path]:
    """Every metrics.json orch eval (or eval --predictions) wrote under `saves`."""
    found = list(saves.glob("*/*/sft/eval/*/*/metrics.json")) + list(
        saves.glob("*/*/predict/eval-llamafactory/metrics.json")
    )
    return sorted(found)


def trainable_params(run_dir: Path) -> int | None:
    """Parameters in the saved adapter (what LoRA trained)."""
    path = run_dir / "adapter_model.safetensors"
    if not path.is_file():
        return None
    from safetensors import safe_open

    total = 0
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
            shape = handle.get_slice(key).get_shape()
            count = 1
            for dim in shape:
                count *= dim
            total += count
    return total


def row_for(task: Task, metrics_path: Path, saves: Path) -> Row:
    """A comparison row from one metrics.json and its run's training files."""
    rel = metrics_path.relative_to(saves).parts
    model, method = rel[0], rel[1]
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    run_dir = saves / model / method / "sft"
    train = training_summary(run_dir)
    state = run_dir / "trainer_state.json"
    epoch = json.loads(state.read_text())["epoch"] if state.is_file() else None
    results = run_dir / "train_results.json"
    runtime = json.loads(results.read_text()).get("train_runtime") if results.is_file() else None
    base = "-base" in str(metrics.get("decoding", "")) or metrics.get("model") in ("base", "rules")
    values: dict[str, Any] = {
        "model": model,
        "method": "rules baseline" if metrics.get("model") == "rules" else "base (untrained)" if base else method,
        "decoding": metrics.get("decoding"),
        "split": metrics.get("split"),
        "n": metrics.get("n"),
    }
    risk = metrics.get("risk") or {}
    values["any_risk_recall"] = risk.get("any_risk_recall")
    for cls, info in (risk.get("per_class_recall") or {}).items():
        values[f"recall_{cls}"] = info.get("recall")
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
        values[f"{name}_{'qwk' if 'qwk' in field_metrics else 'macro_f1'}"] = field_metrics.get(
            "qwk" if "qwk" in field_metrics else "macro_f1"
        )
    values.update(
        {
            "trainable_params": None if base else trainable_params(run_dir),
            "steps": None if base else train.get("global_step"),
            "epochs": None if base else epoch,
            "runtime_s": None if base else runtime,
            "train_loss": None if base else train.get("train_loss"),
            "eval_loss": None if base else train.get("eval_loss"),
            "examples_per_s": metrics.get("examples_per_second"),
        }
    )
    return Row(values, metrics_path, run_dir)


def collect(
    project: Project,
    task: Task,
    sort: str = "any_risk_recall",
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Row]:
    """Rows for every evaluated run, sorted (best first), with the risk flag set."""
    saves = project.resolve(project.saves_setting)
    rows = [row_for(task, path, saves) for path in find_metrics(saves)]
    for row in rows:
        recall = row.values.get("any_risk_recall")
        row.values["risk_flag_low"] = recall is not None and recall < threshold
    if rows and sort not in rows[0].values:
        from orchestrator.errors import OrchError

        raise OrchError(f"cannot sort by {sort!r}", fix=f"columns: {', '.join(rows[0].values)}")
    reverse = sort not in ("mae",) and not sort.endswith("_loss")
    rows.sort(
        key=lambda r: (r.values.get(sort) is None, -(r.values.get(sort) or 0) if reverse else (r.values.get(sort) or 0))
    )
    return rows


def to_markdown(rows: list[Row], threshold: float) -> str:
    """The table as Markdown, with a legend line for the flag."""
    if not rows:
        return "No evaluated runs yet: run `orch eval MODEL/METHOD` first.\n"
    columns = list(rows[0].values)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [format_cell(row.values.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"`risk_flag_low`: any-risk recall below {threshold:.2f} (missing a risk is the worst error). "
        "n/a: the split has no at-risk examples or the value does not apply."
    )
    return "\n".join(lines) + "\n"


def write_reports(project: Project, rows: list[Row], threshold: float) -> dict[str, Path]:
    """reports/comparison.md, .csv and a self-contained .html."""
    import pandas as pd

    from orchestrator.report import comparison_html, steps_links

    out = project.root / "reports"
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "md": out / "comparison.md",
        "csv": out / "comparison.csv",
        "html": out / "comparison.html",
        "index": out / "index.html",
    }
    write_text_atomic(paths["md"], "# Comparison\n\n" + to_markdown(rows, threshold))
    frame = pd.DataFrame([r.values for r in rows])
    write_text_atomic(paths["csv"], frame.to_csv(index=False))
    html = comparison_html(rows, threshold)
    write_text_atomic(paths["html"], html)
    journal = steps_links(project.steps, "../steps/steps.md")
    write_text_atomic(paths["index"], comparison_html(rows, threshold, journal=journal))
    return paths


@dataclass
class Comparison:
    """What `orch collect` produced."""

    rows: list[Row]
    table: str
    flagged: list[Row]
    paths: dict[str, Path]


def compare(
    project: Project,
    task: Task,
    sort: str = "any_risk_recall",
    threshold: float = DEFAULT_THRESHOLD,
    command: str = "",
) -> Comparison:
    """Collect every evaluated run, journal the table in steps.md, then write the reports (linking that entry)."""
    rows = collect(project, task, sort=sort, threshold=threshold)
    table = to_markdown(rows, threshold)
    flagged = [r for r in rows if r.values.get("risk_flag_low")]
    entry = {
        "time": ledger.now(),
        "event": "collected",
        "run": "all runs",
        "message": f"{len(rows)} evaluated run(s) compared, sorted by {sort}; {len(flagged)} flagged for risk recall",
        "command": command or None,
        "table": table,
    }
    steps.append_entry(project.templates, project.steps, entry)
    return Comparison(rows, table, flagged, write_reports(project, rows, threshold))
