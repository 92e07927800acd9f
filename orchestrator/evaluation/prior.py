"""Prior collapse: a model that learned the label prior and nothing about its inputs.

A low training loss is easy to reach by answering every example with the
most frequent labels. Such a model is caught two ways, whatever its loss:

- it gives (nearly) the same answer to every input (the most common answer's
  share is at least `NEARLY_ALL`, on at least `MIN_INPUTS` inputs), or
- it beats the majority baseline on the same split beyond noise on nothing:
  for all-fields-correct and each field's accuracy, the lower end of its 95%
  Wilson interval is not above the majority baseline's value; and, where the
  task has a risk field, it does not separate at-risk examples from the
  others (its any-risk recall's interval is not wholly above its false-alarm
  rate's: answering "suicidal" to everything catches every risk and
  separates nothing).
"""

from __future__ import annotations

from typing import Any

from orchestrator.evaluation.stats import beats, separated
from orchestrator.task import Task

NEARLY_ALL = 0.95
MIN_INPUTS = 5  # fewer identical answers say nothing about collapse
VERDICT = "learned the label prior only"
RISK_SEPARATION = "risk separation"


def compared_rates(task: Task, metrics: dict[str, Any]) -> dict[str, float | None]:
    """The accuracies a model must beat the majority baseline on (one is enough), by their `rates` key."""
    out: dict[str, float | None] = {"all_fields_correct": metrics.get("all_fields_correct")}
    for name in task.field_names:
        out[f"{name}.accuracy"] = ((metrics.get("fields") or {}).get(name) or {}).get("accuracy")
    return out


def beyond_prior(task: Task, metrics: dict[str, Any], majority: dict[str, Any]) -> list[str]:
    """What `metrics` beat the majority baseline on beyond noise (`rates` keys; `risk separation`)."""
    rates = metrics.get("rates") or {}
    won = [key for key, value in compared_rates(task, majority).items() if beats(rates.get(key), value)]
    if task.has_risk and separated(rates.get("risk.any_risk_recall"), rates.get("risk.false_alarm_rate")):
        won.append(RISK_SEPARATION)
    return won


def prior_collapse(task: Task, metrics: dict[str, Any], majority: dict[str, Any] | None) -> str | None:
    """Why `metrics` show a model that learned only the label prior, or None (also when it cannot be told)."""
    share = (metrics.get("answers") or {}).get("most_common_share") or {}
    n = share.get("n")
    if isinstance(n, int) and n >= MIN_INPUTS and share["k"] / n >= NEARLY_ALL:
        return f"the same answer to {share['k']}/{n} inputs"
    if not metrics.get("rates") or majority is None or majority.get("split") != metrics.get("split"):
        return None
    if beyond_prior(task, metrics, majority):
        return None
    what = "all fields, each field" + (", separating at-risk examples from the others" if task.has_risk else "")
    return f"beats the majority baseline beyond noise on nothing ({what})"
