"""`orch collect`: every evaluated run side by side.

One row per evaluation of the task (model, method, decoding, split) found
under the saves folder, with the training facts LLaMA-Factory wrote
(trainable parameters, steps, epochs, runtime, losses) beside the task
metrics, and the majority baseline of every split (each field's most frequent
training label: a model that learned only the label prior scores exactly
this). Where the task has a risk field its recall comes first (at the argmax
decision and at the operating point chosen on val), and rows below the task's
`risk.min_recall` are flagged; a model that learned only the label prior is
flagged too (`prior_only`). Every rate cell of the Markdown and HTML tables
carries its count and 95% Wilson interval; the CSV has them as `<column>_k`,
`_n`, `_low`, `_high`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import ledger, outputs, stages, steps, throughput
from orchestrator.errors import OrchError
from orchestrator.evaluation.prior import BEYOND, COLLAPSED, UNKNOWN, PriorJudgement, judge_prior
from orchestrator.evaluation.stats import FEW_POSITIVES, checked_rates, rate_text, separated
from orchestrator.fileio import write_text_atomic
from orchestrator.layout import (
    ADAPTER,
    BASE,
    BASELINE_KINDS,
    GGUF,
    MAJORITY,
    MERGED,
    RULES,
    EvalIdentity,
    Layout,
    read_metrics,
)
from orchestrator.project import Project
from orchestrator.report import format_cell
from orchestrator.runs import run_output_dir
from orchestrator.stages import Event
from orchestrator.task import Task

RISK_LOW = "risk_recall_low"  # the flag column: any-risk recall below the task's min_recall
RISK_DROP = "risk_recall_drop"  # the flag column: a merged/GGUF model's any-risk recall below its adapter's
PRIOR_ONLY = "prior_only"  # the flag column: why the model learned only the label prior (empty: it did not)
SUBJECT_METHOD = {BASE: "base (untrained)", MAJORITY: "majority baseline", RULES: "rules baseline"}


@dataclass
class Row:
    """One line of the comparison table."""

    values: dict[str, Any]
    metrics_path: Path
    run_dir: Path | None  # the training run's output folder (None for a model-free baseline)
    rates: dict[str, dict[str, Any]] = field(default_factory=dict)  # column -> its count and interval
    subject: str = ADAPTER
    prior: PriorJudgement | None = None  # None: a baseline (a reference, not judged)
    no_threshold: str | None = None  # why no risk threshold was chosen, where one was sought

    def cell(self, column: str) -> str:
        """A column's text: a rate with its k/n and 95% interval, other values as they are."""
        if column in self.rates:
            return rate_text(self.rates[column])
        return format_cell(self.values.get(column))


def row_for(project: Project, task: Task, metrics_path: Path, metrics: dict[str, Any], ident: EvalIdentity) -> Row:
    """A comparison row from one metrics.json and, for a trained run, its training files."""
    trained = ident.run is not None and ident.subject in (ADAPTER, MERGED, GGUF)
    run_dir = run_output_dir(project, ident.run) if ident.run is not None else None
    values: dict[str, Any] = {
        "model": ident.run.model if ident.run else ident.subject,
        "method": _method_label(ident, metrics),
        "decoding": metrics.get("decoding"),
        "split": metrics.get("split"),
        "n": metrics.get("n"),
    }
    risk_values, rates = _risk_columns(task, metrics)
    values.update(risk_values)
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
    values.update(_deploy_columns(project, task, metrics_path, metrics, ident))
    stored = metrics.get("rates") or {}
    rate_keys = {"valid_rate": "valid_rate", "all_fields_correct": "all_fields_correct"}
    rate_keys.update({f"{name}_acc": f"{name}.accuracy" for name in metrics.get("fields") or {}})
    rates.update({column: stored[key] for column, key in rate_keys.items() if key in stored})
    point = (metrics.get("risk") or {}).get("operating_point") or {}
    no_threshold = str(point.get("reason")) if point and point.get("threshold") is None else None
    return Row(values, metrics_path, run_dir if trained else None, rates, ident.subject, no_threshold=no_threshold)


def _deploy_columns(
    project: Project, task: Task, metrics_path: Path, metrics: dict[str, Any], ident: EvalIdentity
) -> dict[str, Any]:
    """Size, generation speed, and for a merged or GGUF model its agreement with the adapter it came from."""
    from orchestrator.evaluation.agreement import COMPARED, against_adapter
    from orchestrator.evaluation.evaluate import Scored

    size = metrics.get("model_bytes")
    out: dict[str, Any] = {
        "model_mb": size / 1e6 if isinstance(size, (int, float)) else None,
        "decode_tokens_per_s": metrics.get("tokens_per_second"),
        "agreement_all": None,
        **{f"agree_{name}": None for name in task.field_names},
        "agreement_n": None,
    }
    if task.has_risk:
        out.update({"risk_recall_change": None, "risk_recall_change_at_threshold": None, RISK_DROP: None})
    if ident.run is None or ident.subject not in COMPARED:
        return out
    reference = Scored(ident.run.sibling(stages.TRAINING), ADAPTER).eval_dir(
        project, str(metrics.get("split")), str(metrics.get("decoding"))
    )
    vs = against_adapter(task, metrics, metrics_path.parent / "predictions.jsonl", reference)
    if vs is None:
        return out
    agreement = vs["agreement"]
    out.update({"agreement_all": agreement["all"], "agreement_n": agreement["n"]})
    out.update({f"agree_{name}": agreement[name] for name in task.field_names})
    if task.has_risk:
        out.update({key: vs[key] for key in ("risk_recall_change", "risk_recall_change_at_threshold")})
        out[RISK_DROP] = vs["risk_recall_drop"]
    return out


def _method_label(ident: EvalIdentity, metrics: dict[str, Any] | None = None) -> str:
    if ident.subject in SUBJECT_METHOD or ident.run is None:
        return SUBJECT_METHOD.get(ident.subject, ident.subject)
    if ident.subject == GGUF:
        return f"{ident.run.method} {(metrics or {}).get('quantization') or 'gguf'}"
    if ident.subject == MERGED:
        return f"{ident.run.method} merged"
    return ident.run.method if ident.run.stage == stages.TRAINING else f"{ident.run.method}+{ident.run.stage}"


def _risk_columns(task: Task, metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Any-risk recall (argmax, then at the operating point) and per-class recall first; their counts."""
    if not task.has_risk:
        return {}, {}
    risk = metrics.get("risk") or {}
    stored = metrics.get("rates") or {}
    point = risk.get("operating_point") or {}
    false_alarms = stored.get("risk.false_alarm_rate") or {}
    values = {
        "any_risk_recall": risk.get("any_risk_recall"),
        "false_alarm_rate": false_alarms["k"] / false_alarms["n"] if false_alarms.get("n") else None,
        "risk_threshold": point.get("threshold"),
        "recall_at_threshold": None,
        "precision_at_threshold": None,
        "flagged_share": None,
        "false_alarms_at_threshold": None,
    }
    rates = {}
    if "risk.any_risk_recall" in stored:
        rates["any_risk_recall"] = stored["risk.any_risk_recall"]
    if false_alarms:
        rates["false_alarm_rate"] = false_alarms
    for column, key in (
        ("recall_at_threshold", "recall"),
        ("precision_at_threshold", "precision"),
        ("flagged_share", "flagged"),
        ("false_alarms_at_threshold", "false_alarms"),
    ):
        rate = point.get(key)
        values[column] = rate["k"] / rate["n"] if rate and rate.get("n") else None
        if rate:
            rates[column] = rate
    for cls, info in (risk.get("per_class_recall") or {}).items():
        values[f"recall_{cls}"] = info.get("recall")
        if f"risk.recall.{cls}" in stored:
            rates[f"recall_{cls}"] = stored[f"risk.recall.{cls}"]
    values["at_risk_n"] = risk.get("any_risk_support")
    return values, rates


def evaluated(project: Project, task: Task) -> list[tuple[Path, dict[str, Any], EvalIdentity]]:
    """Every evaluation of `task` under the saves folder (other tasks' are never read as this one's)."""
    layout = Layout(project)
    found = []
    for path in layout.metrics_files():
        metrics = read_metrics(path)
        ident = layout.identify(path, metrics)
        if ident.task != task.name:
            continue
        if (bad := checked_rates(metrics)) is not None:
            raise OrchError(
                f"{project.relative(path)}: `{bad}` is not what orch writes (numbers, counts k <= n, objects)",
                fix="re-run the evaluation that wrote it (orch eval ...), or move the file aside",
            )
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


def judged_rows(
    project: Project,
    task: Task,
    found: list[tuple[Path, dict[str, Any], EvalIdentity]],
    threshold: float | None = None,
) -> list[Row]:
    """A row per evaluation, judged: the prior-collapse rule against the majority baseline found beside it
    (on the same split), and the risk-recall flag. The one place both `orch collect` and `orch diagnose` judge.
    """
    threshold = task.min_risk_recall if threshold is None else threshold
    majority = {m.get("split"): m for _, m, ident in found if ident.subject == MAJORITY}
    rows = []
    for path, metrics, ident in found:
        try:
            row = row_for(project, task, path, metrics, ident)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a shape checked_rates does not know
            raise OrchError(
                f"{project.relative(path)} is not what orch writes ({type(exc).__name__}: {exc})",
                fix="re-run the evaluation that wrote it (orch eval ...), or move the file aside",
            ) from None
        if task.has_risk:
            recall = row.values.get("any_risk_recall")
            row.values[RISK_LOW] = recall is not None and recall < threshold
        row.values[PRIOR_ONLY] = None
        if ident.subject not in BASELINE_KINDS:
            row.prior = judge_prior(task, metrics, majority.get(metrics.get("split")))
            row.values[PRIOR_ONLY] = {COLLAPSED: row.prior.reason, BEYOND: ""}.get(row.prior.state)
        rows.append(row)
    return rows


def collect(project: Project, task: Task, sort: str | None = None, threshold: float | None = None) -> list[Row]:
    """Rows for every evaluation of `task` (with the majority baseline), sorted best first, risk flagged."""
    rows = judged_rows(project, task, with_majority(project, task, evaluated(project, task)), threshold)
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
        cells = [row.cell(c) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if task.has_risk:
        lines.append(
            f"`{RISK_LOW}`: any-risk recall ({task.risk_field} not {task.risk_negative}) below {threshold:.2f} "
            "(missing a risk is the worst error). n/a: the split has no at-risk examples or the value does not apply. "
            f"`risk_threshold`: P({task.risk_field} not {task.risk_negative}) threshold chosen on val for recall "
            f">= {task.min_risk_recall:.2f}; `*_at_threshold`, `flagged_share`: that threshold applied to the row's "
            "split (constrained decoding only)."
        )
    lines.append(
        f"`{PRIOR_ONLY}`: why the model learned only the label prior (the same answer to nearly every input, or "
        "beating the majority baseline beyond noise on nothing). Rates: value (k/n, 95% Wilson interval)."
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
    frame = pd.DataFrame([_csv_values(r) for r in rows], dtype=object)  # ints stay ints beside baseline rows
    write_text_atomic(paths["csv"], frame.to_csv(index=False))
    write_text_atomic(paths["html"], comparison_html(rows, threshold, task))
    link = os.path.relpath(project.steps, out)
    journal = steps_links(project.steps, link)
    write_text_atomic(paths["index"], comparison_html(rows, threshold, task, journal=journal))
    return paths


def _csv_values(row: Row) -> dict[str, Any]:
    """A row for the CSV: every value, and each rate's count and interval as `<column>_k/_n/_low/_high`."""
    out = dict(row.values)
    for column, rate in row.rates.items():
        for part in ("k", "n", "low", "high"):
            out[f"{column}_{part}"] = rate.get(part)
    return out


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


COMPACT = (
    ("model", "model"),
    ("method", "method"),
    ("decoding", "decoding"),
    ("any_risk_recall", "risk recall (argmax)"),
    ("recall_at_threshold", "risk recall (val threshold)"),
    ("flagged_share", "flagged"),
    ("valid_rate", "valid"),
    ("all_fields_correct", "all fields right"),
)


COMPACT_DEPLOY = (
    ("agreement_all", "agrees with adapter"),
    ("risk_recall_change", "risk recall vs adapter (argmax)"),
    ("risk_recall_change_at_threshold", "(val threshold)"),
    ("model_mb", "MB"),
    ("decode_tokens_per_s", "tok/s"),
)


def compact_table(rows: list[Row], task: Task, split: str) -> str:
    """The headline columns of one split's rows (counts and intervals in every rate), as Markdown.

    Where a merged or GGUF model was scored, its agreement with the adapter, risk-recall change, size and speed too.
    """
    chosen = [r for r in rows if r.values.get("split") == split]
    deploy = COMPACT_DEPLOY if any(r.values.get("agreement_all") is not None for r in chosen) else ()
    columns = [(c, title) for c, title in (*COMPACT, *deploy) if task.has_risk or c not in _RISK_COLUMNS]
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r.cell(c) for c, _ in columns) + " |" for r in chosen]
    return "\n".join(lines) + "\n"


_RISK_COLUMNS = {
    "any_risk_recall",
    "recall_at_threshold",
    "flagged_share",
    "risk_recall_change",
    "risk_recall_change_at_threshold",
}


def verdict_lines(rows: list[Row], task: Task, split: str) -> list[str]:
    """One self-explaining verdict per scored model of a split (baselines are references, not verdicts)."""
    return [
        f"{r.values['model']}/{r.values['method']} ({r.values['decoding']}): {row_verdict(r, task)}"
        for r in rows
        if r.values.get("split") == split and r.subject not in BASELINE_KINDS
    ]


# Verdict heads, best first: a run's verdict is the best of its evaluations'.
CANDIDATE, USABLE_AT_THRESHOLD, NOT_JUDGED, NOT_USABLE = (
    "CANDIDATE",
    "USABLE AT THE VAL THRESHOLD",
    "NOT JUDGED",
    "NOT USABLE",
)
VERDICT_ORDER = (CANDIDATE, USABLE_AT_THRESHOLD, NOT_JUDGED, NOT_USABLE)


@dataclass(frozen=True)
class Verdict:
    """What one evaluation supports: a head (VERDICT_ORDER) and the reasons that decide it."""

    head: str
    reasons: tuple[str, ...]
    risk_known: bool = True  # False: the split has no at-risk examples

    def __str__(self) -> str:
        return f"{self.head}: " + "; ".join(self.reasons)

    @property
    def rank(self) -> int:
        return VERDICT_ORDER.index(self.head)


def row_verdict(row: Row, task: Task) -> str:
    """NOT USABLE / USABLE AT THE VAL THRESHOLD / NOT JUDGED / CANDIDATE, with the reasons that decide it."""
    return str(judge_row(row, task))


def judge_row(row: Row, task: Task) -> Verdict:
    """The verdict on one evaluation (`row_verdict` is its text)."""
    values, target = row.values, task.min_risk_recall
    reasons, bad, known = [], False, True
    head = CANDIDATE
    if values.get(PRIOR_ONLY):
        what = "no better than the label prior" if row.subject == BASE else "learned the label prior only"
        reasons.append(f"{what} ({values[PRIOR_ONLY]})")
        bad = True
    elif row.prior is not None and row.prior.state == UNKNOWN:
        reasons.append(f"whether it beats the label prior cannot be told ({row.prior.reason})")
        head = NOT_JUDGED
    if task.has_risk:
        risk_text, risk_bad, at_point = _risk_verdict(row, target)
        reasons.append(risk_text)
        bad = bad or risk_bad
        known = bool(values.get("at_risk_n"))
        head = USABLE_AT_THRESHOLD if at_point and head == CANDIDATE else head
        if values.get(RISK_DROP):
            changes = [
                f"{what} {values[key]:+.0%}"
                for what, key in (
                    ("by argmax", "risk_recall_change"),
                    ("at its val threshold", "risk_recall_change_at_threshold"),
                )
                if isinstance(values.get(key), (int, float)) and values[key] < 0
            ]
            reasons.append(
                f"flags fewer at-risk examples than the adapter it came from (any-risk recall {', '.join(changes)}): "
                "do not ship it; try a larger quantization (--set gguf.quantization=Q8_0)"
            )
            bad = True
    valid = values.get("valid_rate")
    if isinstance(valid, float) and valid < 1.0:
        reasons.append(f"{1 - valid:.0%} of its outputs are not valid answers")
        bad = bad or valid < 0.5
    if not reasons:
        reasons.append("valid, and beyond the label prior on this split")
    return Verdict(NOT_USABLE if bad else head, tuple(reasons), known)


def _risk_verdict(row: Row, target: float) -> tuple[str, bool, bool]:
    """(what the risk numbers say, whether they make the model unusable, whether only the threshold saves it).

    A recall counts only where the model also separates at-risk examples from the others (flagging
    everything reaches any recall).
    """
    values = row.values
    n = values.get("at_risk_n") or 0
    if not n:
        return "risk recall unknown: no at-risk examples in this split", False, False
    few = " (fewer than 5 at-risk examples: anecdotal)" if n < FEW_POSITIVES else ""
    text = f"catches {row.cell('any_risk_recall')} at-risk examples by argmax{few}"
    argmax_ok = _reaches(row, "any_risk_recall", "false_alarm_rate", target)
    point_ok = False
    if values.get("risk_threshold") is not None:
        text += f", {row.cell('recall_at_threshold')} at the val threshold flagging {row.cell('flagged_share')}"
        point_ok = _reaches(row, "recall_at_threshold", "false_alarms_at_threshold", target)
    elif row.no_threshold:
        text += f"; no val threshold ({row.no_threshold})"
    for column, flagged, ok in (
        ("any_risk_recall", "false_alarm_rate", argmax_ok),
        ("recall_at_threshold", "false_alarms_at_threshold", point_ok),
    ):
        recall = values.get(column)
        if not ok and recall is not None and recall >= target:
            where = "by argmax" if column == "any_risk_recall" else "at the threshold"
            text += (
                f"; {where} it flags {row.cell(flagged)} of the others too: it does not separate at-risk "
                "examples from the others beyond noise"
            )
    return text, not (argmax_ok or point_ok), point_ok and not argmax_ok


def _reaches(row: Row, recall_column: str, false_alarm_column: str, target: float) -> bool:
    """The recall reaches the target and at-risk examples are flagged more often than the others beyond noise."""
    recall = row.values.get(recall_column)
    if recall is None or recall < target:
        return False
    return separated(row.rates.get(recall_column), row.rates.get(false_alarm_column)) is not False
