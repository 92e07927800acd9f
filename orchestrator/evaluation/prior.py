"""Prior collapse: a model that learned the label prior and nothing about its inputs.

A low training loss is easy to reach by answering every example with the
most frequent labels. Such a model is caught two ways, whatever its loss:

- it gives (nearly) the same valid answer to every input (the most common
  answer's share is at least `NEARLY_ALL`, on at least `MIN_INPUTS` inputs)
  while the gold answers are not (nearly) all one answer themselves, or
- it beats the majority baseline on the same split beyond noise on nothing:
  for all-fields-correct and each field's accuracy, the lower end of its 95%
  Wilson interval is not above the majority baseline's value; and, where the
  task has a risk field, it does not separate at-risk examples from the
  others (its any-risk recall's interval is not wholly above its false-alarm
  rate's: answering "suicidal" to everything catches every risk and
  separates nothing).

Where the files cannot tell (an older metrics.json without counts, no
majority baseline on the split), the judgement is UNKNOWN and says why,
never a silent "not collapsed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.evaluation.stats import beats, separated
from orchestrator.task import Task

NEARLY_ALL = 0.95
MIN_INPUTS = 5  # fewer identical answers say nothing about collapse
VERDICT = "learned the label prior only"
RISK_SEPARATION = "risk separation"
COLLAPSED, BEYOND, UNKNOWN = "collapsed", "beyond", "unknown"


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


@dataclass(frozen=True)
class PriorJudgement:
    """Whether a model learned only the label prior: COLLAPSED, BEYOND or UNKNOWN, and why."""

    state: str
    reason: str  # collapsed: the evidence; beyond: what it beats the prior on; unknown: why it cannot be told


def judge_prior(task: Task, metrics: dict[str, Any], majority: dict[str, Any] | None) -> PriorJudgement:
    """The prior-collapse rule (module docstring) on one evaluation; UNKNOWN where the files cannot tell."""
    same = _same_answer(metrics)
    if same is not None:
        return PriorJudgement(COLLAPSED, same)
    rates = metrics.get("rates")
    if not rates:
        return PriorJudgement(UNKNOWN, "its metrics.json keeps no counts (an older orch wrote it): score it again")
    if metrics.get("valid_rate") == 0:
        return PriorJudgement(UNKNOWN, "no valid answer to judge")
    if majority is None or majority.get("split") != metrics.get("split"):
        return PriorJudgement(UNKNOWN, "no majority baseline on the same split to compare with")
    won = beyond_prior(task, metrics, majority)
    if won:
        return PriorJudgement(BEYOND, ", ".join(won))
    needed = [*compared_rates(task, majority)]
    needed += ["risk.any_risk_recall", "risk.false_alarm_rate"] if task.has_risk else []
    missing = [key for key in needed if key not in rates]
    if missing:
        return PriorJudgement(UNKNOWN, f"its metrics.json lacks {', '.join(missing)}: score it again")
    what = "all fields, each field" + (", separating at-risk examples from the others" if task.has_risk else "")
    return PriorJudgement(COLLAPSED, f"beats the majority baseline beyond noise on nothing ({what})")


def _same_answer(metrics: dict[str, Any]) -> str | None:
    """'the same answer to k/n inputs' where nearly every valid answer is one and the gold answers vary."""
    spread = metrics.get("answers") or {}
    share = spread.get("most_common_share") or {}
    k, n = share.get("k"), share.get("n")
    if spread.get("most_common") == "invalid" or not isinstance(k, int) or not isinstance(n, int):
        return None  # all invalid is another failure (the valid rate says it), not a learned prior
    if n < MIN_INPUTS or k / n < NEARLY_ALL:
        return None
    gold = spread.get("gold_most_common_share") or {}
    if isinstance(gold.get("k"), int) and gold.get("n") and gold["k"] / gold["n"] >= NEARLY_ALL:
        return None  # the gold is (nearly) one answer too: one answer says nothing by itself
    return f"the same answer to {k}/{n} inputs"


def prior_collapse(task: Task, metrics: dict[str, Any], majority: dict[str, Any] | None) -> str | None:
    """Why `metrics` show a model that learned only the label prior, or None (not so, or not known)."""
    judged = judge_prior(task, metrics, majority)
    return judged.reason if judged.state == COLLAPSED else None
