"""Task metrics, driven by the task file's field kinds.

Ordinal fields: exact accuracy, within-1 accuracy, MAE, quadratic weighted
kappa. Categorical fields: accuracy, macro-F1, per-class precision and
recall, confusion matrix. The risk field also gets the recall of "any risk"
(anything but the negative class), reported first. A prediction that is
missing or invalid counts as wrong, and as "no risk detected" for recall:
missing a suicidal flag is the worst error, so it is never excused.
"""

from __future__ import annotations

from typing import Any

from orchestrator.task import Task


def _safe_div(a: float, b: float) -> float | None:
    return a / b if b else None


def ordinal_metrics(gold: list[int], pred: list[int | None], values: list[int]) -> dict[str, Any]:
    """Accuracy, within-1, MAE (over parsed predictions) and quadratic weighted kappa."""
    n = len(gold)
    pairs = [(g, p) for g, p in zip(gold, pred, strict=True) if isinstance(p, int) and p in values]
    return {
        "accuracy": _safe_div(sum(g == p for g, p in pairs), n),
        "within1": _safe_div(sum(abs(g - p) <= 1 for g, p in pairs), n),
        "mae": _safe_div(sum(abs(g - p) for g, p in pairs), len(pairs)),
        "qwk": quadratic_weighted_kappa([g for g, _ in pairs], [p for _, p in pairs], values),
        "n": n,
        "parsed": len(pairs),
    }


def quadratic_weighted_kappa(gold: list[int], pred: list[int], values: list[int]) -> float | None:
    """Cohen's kappa with quadratic weights over the ordered `values`."""
    k = len(values)
    if not gold or k < 2:
        return None
    index = {v: i for i, v in enumerate(values)}
    observed = [[0.0] * k for _ in range(k)]
    for g, p in zip(gold, pred, strict=True):
        observed[index[g]][index[p]] += 1
    n = len(gold)
    row = [sum(observed[i]) for i in range(k)]
    col = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    num = den = 0.0
    for i in range(k):
        for j in range(k):
            weight = (i - j) ** 2 / (k - 1) ** 2
            num += weight * observed[i][j]
            den += weight * row[i] * col[j] / n
    if den == 0:
        return 1.0 if num == 0 else 0.0
    return 1.0 - num / den


def categorical_metrics(gold: list[str], pred: list[str | None], classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over classes present in gold or predictions, per-class P/R, confusion matrix."""
    n = len(gold)
    confusion = {g: {p: 0 for p in [*classes, "invalid"]} for g in classes}
    for g, p in zip(gold, pred, strict=True):
        confusion[g][p if p in classes else "invalid"] += 1
    per_class = {}
    for c in classes:
        tp = confusion[c][c]
        predicted = sum(confusion[g][c] for g in classes)
        support = sum(confusion[c].values())
        precision, recall = _safe_div(tp, predicted), _safe_div(tp, support)
        f1 = (2 * precision * recall / (precision + recall)) if precision and recall else 0.0
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1, "support": support, "predicted": predicted}
    seen = [c for c in classes if per_class[c]["support"] or per_class[c]["predicted"]]
    return {
        "accuracy": _safe_div(sum(g == p for g, p in zip(gold, pred, strict=True)), n),
        "macro_f1": _safe_div(sum(per_class[c]["f1"] for c in seen), len(seen)),
        "per_class": per_class,
        "confusion": confusion,
        "n": n,
    }


def risk_metrics(gold: list[str], pred: list[str | None], classes: list[str], negative: str) -> dict[str, Any]:
    """Recall of any risk (gold not negative, predicted any non-negative class) and per-class recall."""
    at_risk = [(g, p) for g, p in zip(gold, pred, strict=True) if g != negative]
    caught = sum(p is not None and p != negative and p in classes for _, p in at_risk)
    per_class = {}
    for c in classes:
        if c == negative:
            continue
        members = [p for g, p in zip(gold, pred, strict=True) if g == c]
        per_class[c] = {"recall": _safe_div(sum(p == c for p in members), len(members)), "support": len(members)}
    return {
        "any_risk_recall": _safe_div(caught, len(at_risk)),
        "any_risk_support": len(at_risk),
        "per_class_recall": per_class,
    }


def score(
    task: Task, gold: list[dict[str, Any]], pred: list[dict[str, Any] | None], valid: list[bool]
) -> dict[str, Any]:
    """Every metric for parallel lists of gold labels and predictions (None: nothing parsed)."""
    fields: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for name in task.field_names:
        g = [row[name] for row in gold]
        p = [(row or {}).get(name) if ok else None for row, ok in zip(pred, valid, strict=True)]
        values = task.field_values(name)
        if task.fields[name] == "ordinal":
            fields[name] = ordinal_metrics(g, p, values)
        else:
            fields[name] = categorical_metrics(g, p, values)
    if task.risk_field:
        g = [row[task.risk_field] for row in gold]
        p = [(row or {}).get(task.risk_field) if ok else None for row, ok in zip(pred, valid, strict=True)]
        out["risk"] = {
            "field": task.risk_field,
            **risk_metrics(g, p, task.field_values(task.risk_field), task.risk_negative),
        }
    n = len(gold)
    out["n"] = n
    out["valid_rate"] = _safe_div(sum(valid), n)
    out["all_fields_correct"] = _safe_div(
        sum(
            ok and all((row or {}).get(k) == gold_row[k] for k in task.field_names)
            for gold_row, row, ok in zip(gold, pred, valid, strict=True)
        ),
        n,
    )
    out["fields"] = fields
    return out


def summary(metrics: dict[str, Any]) -> str:
    """The headline numbers as lines of text, risk first."""

    def pct(value):
        return "n/a" if value is None else f"{value:.1%}"

    lines = []
    risk = metrics.get("risk")
    if risk:
        per = ", ".join(f"{c} {pct(v['recall'])} (n={v['support']})" for c, v in risk["per_class_recall"].items())
        lines.append(f"risk: any-risk recall {pct(risk['any_risk_recall'])} (n={risk['any_risk_support']}); {per}")
    parse = metrics.get("parse", {})
    lines.append(
        f"valid {pct(metrics['valid_rate'])} (strict {pct(parse.get('strict_rate'))}, repaired "
        f"{pct(parse.get('repaired_rate'))}); all fields right {pct(metrics['all_fields_correct'])}"
    )
    for name, m in metrics["fields"].items():
        if "qwk" in m:
            qwk = "n/a" if m["qwk"] is None else f"{m['qwk']:.3f}"
            mae = "n/a" if m["mae"] is None else f"{m['mae']:.2f}"
            lines.append(f"{name}: acc {pct(m['accuracy'])}, within-1 {pct(m['within1'])}, MAE {mae}, QWK {qwk}")
        else:
            f1 = "n/a" if m["macro_f1"] is None else f"{m['macro_f1']:.3f}"
            lines.append(f"{name}: acc {pct(m['accuracy'])}, macro-F1 {f1}")
    return "\n".join(lines)
