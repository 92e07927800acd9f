"""Honest small numbers: Wilson intervals, counts beside every rate, the risk operating point.

Pure functions on crafted inputs (no model): the intervals against published values, the threshold
choice with and without positives on val, and the counts `score` keeps.
"""

from __future__ import annotations

import pytest

from orchestrator.evaluation import operating_point as op
from orchestrator.evaluation.metrics import score, summary
from orchestrator.evaluation.stats import Rate, beats, wilson


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Closed forms: 0/n -> (0, z^2/(n+z^2)); n/n -> (n/(n+z^2), 1); 1/1 -> (1/(1+z^2), 1).
        (0, 10, 0.0, 0.27754),
        (10, 10, 0.72246, 1.0),
        (1, 1, 0.20654, 1.0),
        # Published: Newcombe (1998), Statistics in Medicine 17:857, table I (Wilson score, method 3).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_against_known_values(k, n, low, high):
    got = wilson(k, n)
    assert got == pytest.approx((low, high), abs=6e-5)


def test_wilson_edges():
    assert wilson(0, 0) is None and Rate(0, 0).text() == "n/a (0/0)"
    with pytest.raises(ValueError):
        wilson(3, 2)
    assert Rate(23, 41).text() == "0.561 (23/41, 0.41-0.70)"
    assert beats(Rate(40, 41).as_dict(), 0.561) and not beats(Rate(26, 41).as_dict(), 0.561)


# Val: three at-risk examples scored 0.9, 0.6, 0.3 and two negatives scored 0.5, 0.2.
VAL_SCORES = [0.9, 0.5, 0.6, 0.2, 0.3]
VAL_POSITIVE = [True, False, True, False, True]


@pytest.mark.parametrize(("target", "threshold"), [(0.9, 0.3), (1.0, 0.3), (0.6, 0.6), (0.5, 0.6), (0.3, 0.9)])
def test_threshold_is_the_highest_that_reaches_the_target(target, threshold):
    chosen, _why = op.choose_threshold(VAL_SCORES, VAL_POSITIVE, target)
    assert chosen == threshold
    reached = op.at_threshold(VAL_SCORES, VAL_POSITIVE, chosen)["recall"]
    assert reached.value >= target
    higher = [s for s in VAL_SCORES if s > chosen]
    if higher:  # any stricter threshold misses the target
        assert op.at_threshold(VAL_SCORES, VAL_POSITIVE, min(higher))["recall"].value < target


def test_no_threshold_without_positives_on_val_and_it_says_so():
    chosen, why = op.choose_threshold([0.9, 0.1], [False, False], 0.9)
    assert chosen is None and "no at-risk examples" in why
    chosen, why = op.choose_threshold([0.9, None], [True, False], 0.9)
    assert chosen is None and "constrained" in why


def test_at_threshold_counts():
    rates = op.at_threshold(VAL_SCORES, VAL_POSITIVE, 0.3)
    assert (rates["recall"].k, rates["recall"].n) == (3, 3)
    assert (rates["precision"].k, rates["precision"].n) == (3, 4)
    assert (rates["flagged"].k, rates["flagged"].n) == (4, 5)
    curve = op.curve(VAL_SCORES, VAL_POSITIVE)
    assert [p["threshold"] for p in curve] == sorted(VAL_SCORES, reverse=True)
    assert curve[-1]["recall"] == 1.0 and curve[-1]["flagged"] == 1.0


def _labels(risk: str, depression: int = 0) -> dict:
    return {"depression_level": depression, "anxiety_level": 0, "risk_flag": risk, "student_distress_score": 0}


def test_risk_scores_from_constrained_probabilities(catalog):
    task = catalog.task()
    probs = [{"risk_flag": {"none": 0.25, "suicidal": 0.7, "self_harm": 0.05, "violence": 0.0}}, None]
    assert op.risk_scores(task, probs) == [pytest.approx(0.75), None]


def test_score_keeps_counts_intervals_and_answer_spread(catalog):
    task = catalog.task()
    gold = [_labels("suicidal"), _labels("none"), _labels("none", 1), _labels("none")]
    pred = [_labels("none"), _labels("none"), _labels("none"), None]
    metrics = score(task, gold, pred, [True, True, True, False])
    rates = metrics["rates"]
    assert rates["all_fields_correct"]["k"] == 1 and rates["all_fields_correct"]["n"] == 4
    assert rates["risk.any_risk_recall"] == {"k": 0, "n": 1, "low": 0.0, "high": pytest.approx(0.79345, abs=1e-5)}
    assert rates["depression_level.accuracy"]["k"] == 2 and rates["valid_rate"]["k"] == 3
    assert rates["risk_flag.precision.none"] == {"k": 2, "n": 3, **_interval(2, 3)}  # rows 2 and 3
    assert metrics["risk"]["few_positives"] is True
    spread = metrics["answers"]
    assert spread["distinct"] == 2 and spread["most_common"] == _labels("none")
    assert (spread["most_common_share"]["k"], spread["most_common_share"]["n"]) == (3, 4)
    text = summary(metrics)
    assert "any-risk recall 0.000 (0/1, 0.00-0.79)" in text and "anecdotal" in text
    assert "all fields right 0.250 (1/4," in text


def _interval(k: int, n: int) -> dict:
    low, high = wilson(k, n)
    return {"low": low, "high": high}


def _gold(n: int) -> list[dict]:
    """n varied gold answers: depression 0-3 cycling, distress 0-9 cycling, one in five suicidal."""
    return [
        {
            "depression_level": i % 4,
            "anxiety_level": (i // 2) % 4,
            "risk_flag": "suicidal" if i % 5 == 0 else "none",
            "student_distress_score": i % 10,
        }
        for i in range(n)
    ]


def _scored(task, gold, pred, split="test"):
    return {**score(task, gold, pred, [p is not None for p in pred]), "split": split}


def test_prior_collapse_rule_on_crafted_predictions(catalog):
    from orchestrator.evaluation.prior import prior_collapse

    task = catalog.task()
    gold = _gold(40)
    constant = {"depression_level": 0, "anxiety_level": 0, "risk_flag": "none", "student_distress_score": 0}
    majority = _scored(task, gold, [constant] * 40)
    # The same answer to every input: the prior, whatever else.
    assert prior_collapse(task, _scored(task, gold, [constant] * 40), majority) == "the same answer to 40/40 inputs"
    nearly = [constant] * 39 + [gold[1]]
    assert "39/40" in prior_collapse(task, _scored(task, gold, nearly), majority)
    # Varied answers, each field one value off and the risk flipped: never right.
    shifted = [
        {
            "depression_level": (g["depression_level"] + 1) % 4,
            "anxiety_level": (g["anxiety_level"] + 1) % 4,
            "risk_flag": "none" if g["risk_flag"] == "suicidal" else "suicidal",
            "student_distress_score": (g["student_distress_score"] + 1) % 10,
        }
        for g in gold
    ]
    assert "nothing" in prior_collapse(task, _scored(task, gold, shifted), majority)
    # One example in ten right (risk never caught): no better than the majority beyond noise.
    tenth = [
        {**(g if i % 10 == 0 else s), "risk_flag": s["risk_flag"]}
        for i, (g, s) in enumerate(zip(gold, shifted, strict=True))
    ]
    assert "nothing" in prior_collapse(task, _scored(task, gold, tenth), majority)
    # A model that is right on every example beats it; so does one that only catches the risks.
    assert prior_collapse(task, _scored(task, gold, gold), majority) is None
    risk_only = [{**constant, "risk_flag": g["risk_flag"]} for g in gold]
    assert prior_collapse(task, _scored(task, gold, risk_only), majority) is None
    # No majority on the same split: only the same-answer rule can speak.
    assert prior_collapse(task, _scored(task, gold, shifted), _scored(task, gold, [constant] * 40, "val")) is None
    # Metrics written before counts were kept: unknown, not a verdict.
    assert prior_collapse(task, {"split": "test", "all_fields_correct": 0.5}, majority) is None


def test_separation_needs_hits_above_false_alarms_beyond_noise():
    from orchestrator.evaluation.stats import separated

    assert separated(Rate(3, 3).as_dict(), Rate(0, 57).as_dict()) is True
    assert separated(Rate(3, 3).as_dict(), Rate(57, 57).as_dict()) is False  # flags everything
    assert separated(Rate(1, 3).as_dict(), Rate(10, 57).as_dict()) is False  # within noise
    assert separated(Rate(3, 3).as_dict(), Rate(0, 0).as_dict()) is None


def test_flagging_everything_is_no_better_than_the_prior(catalog):
    """Answering "suicidal" to every input catches every risk and learned nothing."""
    from orchestrator.evaluation.prior import prior_collapse

    task = catalog.task()
    gold = _gold(40)
    constant = {"depression_level": 0, "anxiety_level": 0, "risk_flag": "none", "student_distress_score": 0}
    majority = _scored(task, gold, [constant] * 40)
    alarmist = [{**g, "risk_flag": "suicidal", "depression_level": (g["depression_level"] + 1) % 4} for g in gold]
    alarmist = [{**a, "anxiety_level": 3, "student_distress_score": 9} for a in alarmist]
    metrics = _scored(task, gold, alarmist)
    assert metrics["risk"]["any_risk_recall"] == 1.0 and metrics["answers"]["distinct"] > 1
    assert "separating at-risk examples" in prior_collapse(task, metrics, majority)


def _row(values: dict, rates: dict, subject: str = "adapter"):
    from orchestrator.collect import Row

    base = {"model": "m", "method": "lora", "decoding": "constrained", "split": "test", "prior_only": ""}
    return Row({**base, **values}, None, None, rates, subject)


def test_verdicts_explain_themselves(catalog):
    from orchestrator.collect import row_verdict

    task = catalog.task()
    risk = {"any_risk_recall": 1.0, "at_risk_n": 10, "risk_threshold": None, "valid_rate": 1.0}
    good = {"any_risk_recall": Rate(10, 10).as_dict(), "false_alarm_rate": Rate(2, 50).as_dict()}
    assert row_verdict(_row(risk, good), task).startswith("CANDIDATE: catches 1.000 (10/10")
    alarmist = {"any_risk_recall": Rate(10, 10).as_dict(), "false_alarm_rate": Rate(50, 50).as_dict()}
    verdict = row_verdict(_row(risk, alarmist), task)
    assert verdict.startswith("NOT USABLE") and "does not separate at-risk examples" in verdict
    point = {
        **risk,
        "any_risk_recall": 0.2,
        "risk_threshold": 0.3,
        "recall_at_threshold": 0.9,
        "flagged_share": 0.2,
    }
    rates = {
        "any_risk_recall": Rate(2, 10).as_dict(),
        "false_alarm_rate": Rate(0, 50).as_dict(),
        "recall_at_threshold": Rate(9, 10).as_dict(),
        "flagged_share": Rate(12, 60).as_dict(),
        "false_alarms_at_threshold": Rate(3, 50).as_dict(),
    }
    assert row_verdict(_row(point, rates), task).startswith("USABLE AT THE VAL THRESHOLD")
    few = row_verdict(_row({**risk, "at_risk_n": 3, "prior_only": "the same answer to 60/60 inputs"}, good), task)
    assert few.startswith("NOT USABLE: learned the label prior only (the same answer to 60/60 inputs)")
    assert "anecdotal" in few
    base = row_verdict(_row({**risk, "prior_only": "x"}, good, subject="base"), task)
    assert base.startswith("NOT USABLE: no better than the label prior (x)")
    unknown = row_verdict(_row({**risk, "at_risk_n": 0}, {}), task)
    assert unknown.startswith("CANDIDATE: risk recall unknown")
    no_risk = task.__class__(**{**task.__dict__, "risk_field": None, "risk_negative": None})
    assert (
        row_verdict(_row({"valid_rate": 1.0}, {}), no_risk)
        == "CANDIDATE: valid, and beyond the label prior on this split"
    )


def test_the_prior_judgement_says_when_it_cannot_tell(catalog):
    from orchestrator.collect import row_verdict
    from orchestrator.evaluation.prior import BEYOND, COLLAPSED, UNKNOWN, PriorJudgement, judge_prior

    task = catalog.task()
    gold = _gold(40)
    constant = {"depression_level": 0, "anxiety_level": 0, "risk_flag": "none", "student_distress_score": 0}
    majority = _scored(task, gold, [constant] * 40)
    old = {"split": "test", "all_fields_correct": 0.5, "answers": {"distinct": 7}}
    assert judge_prior(task, old, majority).state == UNKNOWN
    assert "score it again" in judge_prior(task, old, majority).reason
    shifted = _scored(task, gold, [{**constant, "depression_level": 3}] * 20 + [constant] * 20)
    assert judge_prior(task, shifted, None).state == UNKNOWN
    half = _scored(task, gold, [{**constant, "depression_level": 3}] * 20 + [constant] * 20)
    del half["rates"]["risk.false_alarm_rate"]  # a file from before the false-alarm count was kept
    assert judge_prior(task, half, majority).state == UNKNOWN
    assert "risk.false_alarm_rate" in judge_prior(task, half, majority).reason
    assert judge_prior(task, _scored(task, gold, gold), majority).state == BEYOND
    # Every output invalid is a broken model (its valid rate says so), not a learned prior.
    broken = _scored(task, gold, [None] * 40)
    assert judge_prior(task, broken, majority) == PriorJudgement(UNKNOWN, "no valid answer to judge")
    assert judge_prior(task, _scored(task, gold, [constant] * 40), majority).state == COLLAPSED
    # Gold that is (nearly) one answer itself: a perfect model that gives it is not called collapsed.
    same_gold = [constant] * 19 + [{**constant, "risk_flag": "suicidal"}]
    perfect = _scored(task, same_gold, same_gold)
    assert judge_prior(task, perfect, _scored(task, same_gold, [constant] * 20)).state == BEYOND
    # A row that cannot be judged is not a candidate.
    row = _row({"valid_rate": 1.0, "at_risk_n": 10, "any_risk_recall": 1.0}, {})
    row.prior = PriorJudgement(UNKNOWN, "no majority baseline on the same split to compare with")
    assert row_verdict(row, task).startswith("NOT JUDGED: whether it beats the label prior cannot be told (no majority")


def test_stored_counts_are_checked_and_their_intervals_recomputed():
    from orchestrator.evaluation.stats import checked_rates

    metrics = {"rates": {"a": {"k": 3, "n": 10}}, "answers": {"most_common_share": {"k": 5, "n": 10}}}
    assert checked_rates(metrics) is None and metrics["rates"]["a"]["low"] == pytest.approx(wilson(3, 10)[0])
    for bad, where in (
        ({"rates": {"x": {"k": 9, "n": 7}}}, "rates.x"),
        ({"rates": {"x": {"k": None, "n": 7}}}, "rates.x"),
        ({"rates": {"x": {"k": True, "n": 7}}}, "rates.x"),
        ({"rates": [1]}, "rates"),
        ({"answers": {"most_common_share": {"k": None, "n": 3}}}, "answers.most_common_share"),
        ({"fields": [1, 2]}, "fields"),
        ({"fields": {"f": 3}}, "fields"),
        ({"risk": "high"}, "risk"),
    ):
        assert checked_rates(bad) == where


def test_without_a_val_split_the_reason_is_said_and_ranks_are_still_kept(catalog, tmp_path):
    import dataclasses

    from orchestrator.evaluation.evaluate import _no_val_split, _write

    task = catalog.task()
    no_val = dataclasses.replace(task, datasets={k: v for k, v in task.datasets.items() if k != "val"})
    threshold, reason = _no_val_split(no_val, "test", ("constrained",))
    assert threshold is None and "has no val split" in reason
    assert _no_val_split(task, "test", ("constrained",)) is None and _no_val_split(no_val, "test", ("free",)) is None
    gold = _gold(6)
    rows = [{"id": i, "gold": g} for i, g in enumerate(gold)]
    raws = [task.canonical_answer(g) for g in gold]
    probs = [{"risk_flag": {"none": 0.2 if task.at_risk(g) else 0.9, "suicidal": 0.1}} for g in gold]
    result = _write(no_val, rows, raws, probs, tmp_path / "out", {"split": "test"}, (threshold, reason))
    risk = result.metrics["risk"]
    assert risk["operating_point"]["threshold"] is None and "no val split" in summary(result.metrics)
    assert risk["positive_ranks"] and all(r <= sum(map(task.at_risk, gold)) for r in risk["positive_ranks"])
    plain = _write(no_val, rows, raws, probs, tmp_path / "plain", {"split": "test"})
    assert "operating_point" not in plain.metrics["risk"] and plain.metrics["risk"]["curve"]


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda m: m["risk"]["operating_point"].update(recall={"k": 99, "n": 4}), "risk.operating_point.recall"),
        (lambda m: m["risk"]["operating_point"].update(recall="x"), "risk.operating_point.recall"),
        (lambda m: m["risk"]["per_class_recall"].update(suicidal=1.0), "risk.per_class_recall"),
        (lambda m: m["risk"].update(any_risk_recall="0.9"), "risk.any_risk_recall"),
        (lambda m: m["risk"].update(any_risk_support="4"), "risk.any_risk_support"),
        (lambda m: m.update(split=3), "split"),
        (lambda m: m.update(valid_rate="1"), "valid_rate"),
    ],
)
def test_malformed_risk_sections_are_named(catalog, edit, where):
    from orchestrator.evaluation.stats import checked_rates

    task = catalog.task()
    gold = _gold(10)
    metrics = _scored(task, gold, gold)
    metrics["risk"]["operating_point"] = {"threshold": 0.5, "recall": Rate(2, 2).as_dict()}
    assert checked_rates(metrics) is None
    edit(metrics)
    assert checked_rates(metrics) == where


def test_a_verdict_says_why_there_is_no_val_threshold(catalog, tmp_path):
    from orchestrator.collect import row_for, row_verdict
    from orchestrator.evaluation.evaluate import _write
    from orchestrator.layout import EvalIdentity, Run

    task = catalog.task()
    gold = _gold(10)
    rows = [{"id": i, "gold": g} for i, g in enumerate(gold)]
    raws = [task.canonical_answer(g) for g in gold]
    probs = [{"risk_flag": {"none": 0.2 if task.at_risk(g) else 0.9, "suicidal": 0.1}} for g in gold]
    reason = "the val split has no at-risk examples: no threshold can be chosen"
    result = _write(task, rows, raws, probs, tmp_path / "e", {"split": "test"}, (None, reason))
    ident = EvalIdentity(task.name, Run("m", "lora", "sft"), "adapter")
    row = row_for(catalog.project, task, tmp_path / "e/metrics.json", result.metrics, ident)
    assert f"no val threshold ({reason})" in row_verdict(row, task)
    chosen = _write(task, rows, raws, probs, tmp_path / "c", {"split": "test"}, (0.5, "reaches 2/2"))
    row = row_for(catalog.project, task, tmp_path / "c/metrics.json", chosen.metrics, ident)
    assert "no val threshold" not in row_verdict(row, task) and "at the val threshold" in row_verdict(row, task)
