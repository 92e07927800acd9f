"""Honest small numbers: a proportion with its count and its 95% Wilson interval.

A recall of 0% on one at-risk dialogue and a recall of 0% on two hundred are
different facts; every rate orch reports keeps its count (k/n) and an
interval that stays inside [0, 1] and is sensible for k = 0 or k = n
(Wilson's score interval, unlike the normal approximation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
FEW_POSITIVES = 5  # a split with fewer at-risk examples than this is marked: its recall is anecdote


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of k successes in n trials (None when n is 0)."""
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"{k} successes out of {n} trials")
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """k of n, with its value and 95% Wilson interval."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.k, self.n)

    def as_dict(self) -> dict[str, Any]:
        """What metrics.json keeps: `{"k", "n", "low", "high"}` (low/high None when n is 0)."""
        low, high = self.interval or (None, None)
        return {"k": self.k, "n": self.n, "low": low, "high": high}

    def text(self) -> str:
        """`0.561 (23/41, 0.41-0.70)`; `n/a (0/0)` when there is nothing to count."""
        if not self.n:
            return "n/a (0/0)"
        low, high = self.interval
        return f"{self.value:.3f} ({self.k}/{self.n}, {low:.2f}-{high:.2f})"


def rate_text(rate: dict[str, Any] | None) -> str:
    """A stored rate (`Rate.as_dict`) as text; `n/a` when missing."""
    if not rate or not isinstance(rate.get("n"), int):
        return "n/a"
    return Rate(int(rate["k"]), int(rate["n"])).text()


def separated(hits: dict[str, Any] | None, false_alarms: dict[str, Any] | None) -> bool | None:
    """Whether positives are flagged more often than negatives beyond noise (None: a side has no examples).

    The hit rate's interval must lie wholly above the false-alarm rate's: flagging everything (or
    nothing) never separates, whatever its recall.
    """
    if not hits or not false_alarms or hits.get("low") is None or false_alarms.get("high") is None:
        return None
    return float(hits["low"]) > float(false_alarms["high"])


def beats(rate: dict[str, Any] | None, reference: float | None) -> bool:
    """Whether a rate is above a reference value beyond noise: its interval's lower end is above it."""
    if not rate or rate.get("low") is None or reference is None:
        return False
    return float(rate["low"]) > reference


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def stored_rate(value: Any) -> dict[str, Any] | None:
    """A stored `{k, n, ...}` rate with its interval recomputed from k/n; None when it is not one (k > n, ...)."""
    if not isinstance(value, dict):
        return None
    k, n = _count(value.get("k")), _count(value.get("n"))
    if k is None or n is None or k > n:
        return None
    return Rate(k, n).as_dict()


def checked_rates(metrics: dict[str, Any]) -> str | None:
    """Normalise a metrics.json's stored counts in place (intervals from k/n); the first malformed key, or None.

    Files from other versions or hand edits must not crash a comparison, nor be judged on half a rate.
    """
    places: list[tuple[dict[str, Any], str, str]] = []
    rates = metrics.get("rates")
    if rates is not None and not isinstance(rates, dict):
        return "rates"
    places += [(rates, key, f"rates.{key}") for key in rates or {}]
    answers = metrics.get("answers")
    if answers is not None and not isinstance(answers, dict):
        return "answers"
    for key in ("most_common_share", "gold_most_common_share"):
        if answers and key in answers:
            places.append((answers, key, f"answers.{key}"))
    for holder, key, where in places:
        rate = stored_rate(holder[key])
        if rate is None:
            return where
        holder[key] = rate
    fields = metrics.get("fields") or {}
    if not isinstance(fields, dict) or not all(isinstance(v, dict) for v in fields.values()):
        return "fields"
    if not isinstance(metrics.get("split"), (str, type(None))):
        return "split"
    for key in ("valid_rate", "all_fields_correct"):
        if not _number_or_none(metrics.get(key)):
            return key
    return _risk_problem(metrics.get("risk"))


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _risk_problem(risk: Any) -> str | None:
    """The first malformed key of a metrics.json's `risk` section (normalising its stored rates), or None."""
    if risk is None:
        return None
    if not isinstance(risk, dict):
        return "risk"
    for key in ("any_risk_recall",):
        if not _number_or_none(risk.get(key)):
            return f"risk.{key}"
    for key in ("any_risk_caught", "any_risk_support", "false_alarms", "negatives"):
        if key in risk and _count(risk[key]) is None:
            return f"risk.{key}"
    per_class = risk.get("per_class_recall") or {}
    if not isinstance(per_class, dict) or not all(
        isinstance(v, dict) and _number_or_none(v.get("recall")) for v in per_class.values()
    ):
        return "risk.per_class_recall"
    point = risk.get("operating_point")
    if point is None:
        return None
    if not isinstance(point, dict) or not _number_or_none(point.get("threshold")):
        return "risk.operating_point"
    for key in ("recall", "precision", "flagged", "false_alarms"):
        if key in point:
            rate = stored_rate(point[key])
            if rate is None:
                return f"risk.operating_point.{key}"
            point[key] = rate
    return None
