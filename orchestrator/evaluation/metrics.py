"""Task metrics, driven by the task file's field kinds.

Ordinal fields: exact accuracy, within-1 accuracy, MAE, quadratic weighted
kappa. Categorical fields: accuracy, macro-F1, per-class precision and
recall, confusion matrix. The risk field also gets the recall of "any risk"
(anything but the negative class), reported first. A prediction that is
missing or invalid counts as wrong, and as "no risk detected" for recall:
missing a suicidal flag is the worst error, so it is never excused.

Every rate is also kept as a count with its 95% Wilson interval under
`rates` (keyed `all_fields_correct`, `<field>.accuracy`,
`<field>.recall.<class>`, `risk.any_risk_recall`, ...), and `answers` says
how varied the answers are (a model that says the same thing to every input
learned nothing about the inputs).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchestrator.evaluation.stats import FEW_POSITIVES, Rate, rate_text
from orchestrator.task import Task


def _safe_div(a: float, b: float) -> float | None:
    return a / b if b else None


def ordinal_metrics(gold: list[int], pred: list[int | None], values: list[int]) -> dict[str, Any]:
    """Accuracy, within-1, MAE (over parsed predictions) and quadratic weighted kappa."""
    n = len(gold)
    pairs = [(g, p) for g, p in zip(gold, pred, strict=True) if isinstance(p, int) and p in values]
    return {
        "accuracy": _safe_div(sum(g == p for g, p in pairs), n),
        "correct": sum(g == p for g, p in pairs),
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
        per_class[c] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
            "predicted": predicted,
            "true_positives": tp,
        }
    seen = [c for c in classes if per_class[c]["support"] or per_class[c]["predicted"]]
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    return {
        "accuracy": _safe_div(correct, n),
        "correct": correct,
        "macro_f1": _safe_div(sum(per_class[c]["f1"] for c in seen), len(seen)),
        "per_class": per_class,
        "confusion": confusion,
        "n": n,
    }


def risk_metrics(gold: list[str], pred: list[str | None], classes: list[str], negative: str) -> dict[str, Any]:
    """Recall of any risk (gold not negative, predicted any non-negative class) and per-class recall."""
    at_risk = [(g, p) for g, p in zip(gold, pred, strict=True) if g != negative]
    caught = sum(p is not None and p != negative and p in classes for _, p in at_risk)
    calm = [p for g, p in zip(gold, pred, strict=True) if g == negative]
    false_alarms = sum(p is not None and p != negative and p in classes for p in calm)
    per_class = {}
    for c in classes:
        if c == negative:
            continue
        members = [p for g, p in zip(gold, pred, strict=True) if g == c]
        hits = sum(p == c for p in members)
        per_class[c] = {"recall": _safe_div(hits, len(members)), "support": len(members), "caught": hits}
    return {
        "any_risk_recall": _safe_div(caught, len(at_risk)),
        "any_risk_caught": caught,
        "any_risk_support": len(at_risk),
        "false_alarms": false_alarms,  # gold negative, flagged as some risk
        "negatives": len(calm),
        "few_positives": len(at_risk) < FEW_POSITIVES,
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
    all_right = sum(
        bool(ok and all((row or {}).get(k) == gold_row[k] for k in task.field_names))
        for gold_row, row, ok in zip(gold, pred, valid, strict=True)
    )
    out["n"] = n
    out["valid_rate"] = _safe_div(sum(valid), n)
    out["all_fields_correct"] = _safe_div(all_right, n)
    out["fields"] = fields
    out["rates"] = {key: rate.as_dict() for key, rate in _rates(out, sum(valid), all_right).items()}
    out["answers"] = answer_spread(task, pred, valid, gold)
    return out


def _rates(metrics: dict[str, Any], valid: int, all_right: int) -> dict[str, Rate]:
    """Every rate of `metrics` as a count: what the interval and the k/n in tables come from."""
    n = metrics["n"]
    rates = {"valid_rate": Rate(valid, n), "all_fields_correct": Rate(all_right, n)}
    for name, m in metrics["fields"].items():
        rates[f"{name}.accuracy"] = Rate(m["correct"], n)
        for cls, info in (m.get("per_class") or {}).items():
            rates[f"{name}.recall.{cls}"] = Rate(info["true_positives"], info["support"])
            rates[f"{name}.precision.{cls}"] = Rate(info["true_positives"], info["predicted"])
    risk = metrics.get("risk")
    if risk:
        rates["risk.any_risk_recall"] = Rate(risk["any_risk_caught"], risk["any_risk_support"])
        rates["risk.false_alarm_rate"] = Rate(risk["false_alarms"], risk["negatives"])
        for cls, info in risk["per_class_recall"].items():
            rates[f"risk.recall.{cls}"] = Rate(info["caught"], info["support"])
    return rates


def answer_spread(
    task: Task, pred: list[dict[str, Any] | None], valid: list[bool], gold: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """How varied the answers are: distinct answers, and the most common one with its share (k/n).

    An invalid answer counts as the answer "invalid". With `gold`, also the share of the most common gold
    answer (`gold_most_common_share`): one answer to every input says nothing where the gold is one answer too.
    """
    spread = _spread(task, pred, valid)
    if gold is not None:
        counts = Counter(tuple(row.get(k) for k in task.field_names) for row in gold)
        spread["gold_most_common_share"] = Rate(max(counts.values(), default=0), len(gold)).as_dict()
    return spread


def _spread(task: Task, pred: list[dict[str, Any] | None], valid: list[bool]) -> dict[str, Any]:
    answers = Counter(
        tuple((row or {}).get(k) for k in task.field_names) if ok else "invalid"
        for row, ok in zip(pred, valid, strict=True)
    )
    if not answers:
        return {"distinct": 0, "most_common": None, "most_common_share": Rate(0, 0).as_dict()}
    top, count = answers.most_common(1)[0]
    most_common = dict(zip(task.field_names, top, strict=True)) if top != "invalid" else "invalid"
    return {
        "distinct": len(answers),
        "most_common": most_common,
        "most_common_share": Rate(count, len(pred)).as_dict(),
    }


def summary(metrics: dict[str, Any]) -> str:
    """The headline numbers as lines of text, risk first; every rate with its k/n and 95% interval."""
    rates = metrics.get("rates") or {}

    def rate(key: str, value: float | None) -> str:
        return rate_text(rates[key]) if key in rates else "n/a" if value is None else f"{value:.3f}"

    lines = []
    risk = metrics.get("risk")
    if risk:
        per = ", ".join(f"{c} {rate(f'risk.recall.{c}', v['recall'])}" for c, v in risk["per_class_recall"].items())
        few = f" (fewer than {FEW_POSITIVES} at-risk examples: anecdotal)" if risk.get("few_positives") else ""
        lines.append(f"risk: any-risk recall {rate('risk.any_risk_recall', risk['any_risk_recall'])}{few}; {per}")
        point = risk.get("operating_point")
        if point:
            lines.append(f"risk operating point: {operating_point_text(point)}")
    parse = metrics.get("parse", {})
    all_right = rate("all_fields_correct", metrics["all_fields_correct"])
    lines.append(
        f"valid {rate('valid_rate', metrics['valid_rate'])} (strict {_pct(parse.get('strict_rate'))}, repaired "
        f"{_pct(parse.get('repaired_rate'))}); all fields right {all_right}"
    )
    for name, m in metrics["fields"].items():
        acc = rate(f"{name}.accuracy", m["accuracy"])
        if "qwk" in m:
            qwk = "n/a" if m["qwk"] is None else f"{m['qwk']:.3f}"
            mae = "n/a" if m["mae"] is None else f"{m['mae']:.2f}"
            lines.append(f"{name}: acc {acc}, within-1 {_pct(m['within1'])}, MAE {mae}, QWK {qwk}")
        else:
            f1 = "n/a" if m["macro_f1"] is None else f"{m['macro_f1']:.3f}"
            lines.append(f"{name}: acc {acc}, macro-F1 {f1}")
    spread = metrics.get("answers")
    if spread and spread.get("distinct"):
        lines.append(
            f"answers: {spread['distinct']} distinct; the most common one given "
            f"{spread['most_common_share']['k']}/{spread['most_common_share']['n']} times"
        )
    if metrics.get("tokens_per_second"):
        lines.append(f"speed: {metrics['tokens_per_second']:.1f} tokens/s greedy decoding at batch 1 on this machine")
    template = metrics.get("chat_template")
    if template and not template.get("match"):
        lines.append(chat_template_warning(template))
    return "\n".join(lines)


def chat_template_warning(check: dict[str, Any]) -> str:
    """The warning for a GGUF whose embedded chat template does not render the training prompt."""
    said = check.get("note") or "renders another prompt than the one the model was trained on"
    return (
        f"WARNING: the chat template embedded in the GGUF {said}; apps using llama.cpp's chat API will prompt "
        f"it differently (scores above fed the training prompt's ids).\n  training prompt: {check.get('training')!r}"
        f"\n  GGUF's template:  {check.get('gguf')!r}"
    )


def operating_point_text(point: dict[str, Any]) -> str:
    """The risk threshold chosen on val and what it does on this split, or why there is none."""
    if point.get("threshold") is None:
        return f"none ({point.get('reason')})"
    return (
        f"P(risk) >= {point['threshold']:.4g} (chosen on {point['chosen_on']} for recall >= {point['target']:.0%}): "
        f"recall {rate_text(point['recall'])}, precision {rate_text(point['precision'])}, "
        f"flags {rate_text(point['flagged'])} of the examples"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
