"""The risk operating point: a threshold on P(risk) chosen for a target sensitivity.

A screening tool does not take the most probable class as its decision: it
flags an example when the probability of any risk (anything but the task's
negative class) reaches a threshold chosen, on the val split, for the task's
target any-risk recall (`risk.min_recall`). Of the thresholds that reach the
target, the highest is chosen: it flags the fewest examples. The threshold
is then applied to the scored split, whose recall, precision and flagged
share are reported beside the argmax decision. A val split without at-risk
examples gives no threshold, and says so.

P(risk) comes from constrained decoding's field probabilities
(`1 - P(negative)`); free decoding has none.
"""

from __future__ import annotations

import math
from typing import Any

from orchestrator.evaluation.stats import Rate
from orchestrator.task import Task

CHOSEN_ON = "val"


def risk_scores(task: Task, probabilities: list[dict[str, dict[str, float]] | None]) -> list[float | None]:
    """P(risk field is not negative) for each example (None where no probabilities were recorded)."""
    field, negative = task.risk_field, str(task.risk_negative)
    out: list[float | None] = []
    for probs in probabilities:
        dist = (probs or {}).get(str(field))
        out.append(None if not dist or negative not in dist else max(0.0, 1.0 - float(dist[negative])))
    return out


def choose_threshold(scores: list[float | None], positives: list[bool], target: float) -> tuple[float | None, str]:
    """(the highest threshold whose recall reaches `target`, why) or (None, why not).

    Flagging is `score >= threshold`; recall only changes at the positives' scores, so the threshold is
    the positive score of rank ceil(target * positives) from the top.
    """
    if any(s is None for s in scores):
        return None, "some examples have no risk probability (score them with constrained decoding)"
    ranked = sorted((s for s, p in zip(scores, positives, strict=True) if p), reverse=True)
    if not ranked:
        return None, f"the {CHOSEN_ON} split has no at-risk examples: no threshold can be chosen"
    needed = max(1, math.ceil(target * len(ranked) - 1e-9))
    return ranked[needed - 1], f"reaches {needed}/{len(ranked)} at-risk examples of {CHOSEN_ON}"


def at_threshold(scores: list[float | None], positives: list[bool], threshold: float) -> dict[str, Rate]:
    """Recall, precision, flagged share and false-alarm rate of `score >= threshold` (no score: not flagged)."""
    flagged = [s is not None and s >= threshold for s in scores]
    caught = sum(f and p for f, p in zip(flagged, positives, strict=True))
    return {
        "recall": Rate(caught, sum(positives)),
        "precision": Rate(caught, sum(flagged)),
        "flagged": Rate(sum(flagged), len(scores)),
        "false_alarms": Rate(sum(flagged) - caught, len(scores) - sum(positives)),
    }


def operating_point(
    task: Task,
    chosen: tuple[float | None, str],
    scores: list[float | None],
    positives: list[bool],
) -> dict[str, Any]:
    """What metrics.json keeps under `risk.operating_point` for a split scored at a threshold chosen on val."""
    threshold, reason = chosen
    point: dict[str, Any] = {
        "threshold": threshold,
        "target": task.min_risk_recall,
        "chosen_on": CHOSEN_ON,
        "reason": reason,
    }
    if threshold is not None:
        point.update({key: rate.as_dict() for key, rate in at_threshold(scores, positives, threshold).items()})
    return point


def curve(scores: list[float | None], positives: list[bool]) -> list[dict[str, float | None]]:
    """Recall, precision and flagged share at every distinct score used as the threshold (for the report)."""
    points = []
    for threshold in sorted({s for s in scores if s is not None}, reverse=True):
        rates = at_threshold(scores, positives, threshold)
        points.append({"threshold": threshold, **{key: rates[key].value for key in ("recall", "precision", "flagged")}})
    return points


def positive_ranks(scores: list[float | None], positives: list[bool]) -> list[int | None]:
    """Where each at-risk example ranks by P(risk) among all examples (1: the highest), worst case on ties.

    The rank is how many examples score at least as high, so a model that gives every example the same
    P(risk) ranks its at-risk ones last: it separates nothing. No score: None.
    """
    known = [s for s in scores if s is not None]
    return [
        None if s is None else sum(other >= s for other in known)
        for s, positive in zip(scores, positives, strict=True)
        if positive
    ]
