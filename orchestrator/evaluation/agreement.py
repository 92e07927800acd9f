"""How far a merged or quantized model still answers like the adapter it came from.

Per field: the share of examples (matched by id) where both gave the same
valid value. Risk: the change in any-risk recall against the adapter, same
split and decoding, by argmax and at each model's own val threshold (a
quantized model's P(risk) can shift enough to lose an example there while
its argmax answers agree); a drop in either is flagged, because a quantized
model that quietly stops flagging risk is the worst outcome of shipping one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator import inputs
from orchestrator.layout import ADAPTER, GGUF, MERGED, read_metrics
from orchestrator.project import Project
from orchestrator.runs import Run
from orchestrator.task import Task

COMPARED = (MERGED, GGUF)  # the subjects compared against their adapter


def _answers(path: Path) -> dict[str, Any]:
    """Each example's parsed answer by id, or a clear error naming the file and line."""
    from orchestrator.errors import OrchError
    from orchestrator.inputs import InputError

    out = {}
    try:
        for line in inputs.read_jsonl(path):
            if isinstance(line.data, dict):
                out[str(line.data.get("id"))] = line.data.get("parsed")
    except InputError as exc:
        raise OrchError(
            f"cannot read it: {exc.message}", where=exc.where, fix="re-run the evaluation that wrote it"
        ) from None
    return out


def _same(task: Task, name: str, a: Any, b: Any) -> bool:
    """Both answers give field `name` the same allowed value (of the same JSON type: true is not 1)."""
    if not (isinstance(a, dict) and isinstance(b, dict) and name in a and name in b):
        return False
    x, y = a[name], b[name]
    allowed = any(type(v) is type(x) and v == x for v in task.field_values(name))
    return type(x) is type(y) and x == y and allowed


def field_agreement(task: Task, reference: Path, other: Path) -> dict[str, Any]:
    """Per-field agreement of two predictions.jsonl files (examples in both, by id), with the count compared.

    `all`: the share of examples where every field agrees. `same_examples`: both files scored the same ids.
    """
    ref, oth = _answers(reference), _answers(other)
    ids = [i for i in ref if i in oth]
    out: dict[str, Any] = {"n": len(ids), "same_examples": set(ref) == set(oth)}
    for name in task.field_names:
        same = sum(_same(task, name, ref[i], oth[i]) for i in ids)
        out[name] = same / len(ids) if ids else None
    every = sum(all(_same(task, n, ref[i], oth[i]) for n in task.field_names) for i in ids)
    out["all"] = every / len(ids) if ids else None
    return out


def against_adapter(task: Task, metrics: dict[str, Any], predictions: Path, adapter_dir: Path) -> dict[str, Any] | None:
    """Agreement with the adapter's answers and the change in any-risk recall (None: the adapter was not scored)."""
    ref_pred, ref_metrics = adapter_dir / "predictions.jsonl", adapter_dir / "metrics.json"
    if not ref_pred.is_file() or not ref_metrics.is_file() or not predictions.is_file():
        return None
    out = {"agreement": field_agreement(task, ref_pred, predictions)}
    if task.has_risk and not out["agreement"]["same_examples"]:  # e.g. one of them scored with --limit
        out.update(risk_recall_change=None, risk_recall_change_at_threshold=None, risk_recall_drop=None)
    elif task.has_risk:
        theirs = read_metrics(ref_metrics)
        argmax = _change(_argmax_recall(metrics), _argmax_recall(theirs))
        at_threshold = _change(_threshold_recall(metrics), _threshold_recall(theirs))
        out["risk_recall_change"] = argmax
        out["risk_recall_change_at_threshold"] = at_threshold
        out["risk_recall_drop"] = any(c is not None and c < 0 for c in (argmax, at_threshold))
    return out


def _argmax_recall(metrics: dict[str, Any]) -> float | None:
    return (metrics.get("risk") or {}).get("any_risk_recall")


def _threshold_recall(metrics: dict[str, Any]) -> float | None:
    """Any-risk recall at the model's own val threshold (None: no threshold chosen)."""
    recall = ((metrics.get("risk") or {}).get("operating_point") or {}).get("recall")
    if not isinstance(recall, dict) or not recall.get("n"):
        return None
    return recall["k"] / recall["n"]


def _change(mine: Any, theirs: Any) -> float | None:
    numbers = isinstance(mine, (int, float)) and isinstance(theirs, (int, float))
    return mine - theirs if numbers else None


def compare_to_adapter(project: Project, task: Task, run: Run, split: str = "test") -> list[dict[str, str]]:
    """The model card's score rows: the adapter, merged and GGUF evaluations of a training run on `split`."""
    from orchestrator.evaluation.evaluate import Scored

    rows: list[dict[str, str]] = []
    adapter = Scored(run, ADAPTER)
    for subject in (ADAPTER, *COMPARED):
        scored = Scored(run, subject)
        for decoding in ("constrained", "free"):
            folder = scored.eval_dir(project, split, decoding)
            if not (folder / "metrics.json").is_file():
                continue
            metrics = read_metrics(folder / "metrics.json")
            vs = None
            if subject != ADAPTER:
                reference = adapter.eval_dir(project, split, decoding)
                vs = against_adapter(task, metrics, folder / "predictions.jsonl", reference)
            rows.append(_card_row(task, subject, metrics, vs))
    return rows


def _card_row(task: Task, subject: str, metrics: dict[str, Any], vs: dict[str, Any] | None) -> dict[str, str]:
    recall = (metrics.get("risk") or {}).get("any_risk_recall")
    agree = (
        "-"
        if vs is None
        else ", ".join(f"{k} {v:.0%}" for k, v in vs["agreement"].items() if k != "n" and v is not None)
    )
    recall_text = "-" if recall is None else f"{recall:.0%}"
    changes = [
        f"{what} {change:+.0%}"
        for what, change in (
            ("argmax", (vs or {}).get("risk_recall_change")),
            ("at its val threshold", (vs or {}).get("risk_recall_change_at_threshold")),
        )
        if change is not None
    ]
    if changes:
        recall_text += f" (vs adapter: {', '.join(changes)}{'; DROPPED' if (vs or {}).get('risk_recall_drop') else ''})"
    size = metrics.get("model_bytes")
    label = metrics.get("quantization") or subject
    return {
        "label": label,
        "decoding": str(metrics.get("decoding")),
        "split": str(metrics.get("split")),
        "valid": "-" if metrics.get("valid_rate") is None else f"{metrics['valid_rate']:.0%}",
        "recall": recall_text if task.has_risk else "-",
        "agreement": agree,
        "size": "-" if not size else f"{size / 1e6:.1f} MB",
    }
