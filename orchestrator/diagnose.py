"""`orch diagnose RUN`: read a run's logs and checkpoints and say what they show, with reasons.

Loss thresholds alone do not make a verdict: a run that reached loss 0.08 can
still emit broken JSON. Where task metrics exist (orch eval) they decide;
the loss findings explain them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import outputs, stages
from orchestrator.collect import (
    CANDIDATE,
    NOT_USABLE,
    PRIOR_ONLY,
    RISK_LOW,
    Row,
    Verdict,
    evaluated,
    judge_row,
    judged_rows,
)
from orchestrator.errors import OrchError
from orchestrator.evaluation.prior import VERDICT as PRIOR_VERDICT
from orchestrator.evaluation.stats import FEW_POSITIVES
from orchestrator.layout import ADAPTER, BASE, MAJORITY, MERGED, EvalIdentity, Layout, Run
from orchestrator.outputs import output_status
from orchestrator.project import Project
from orchestrator.runs import run_output_dir
from orchestrator.task import Task

OK, WARN, BAD = "ok", "warning", "problem"


@dataclass(frozen=True)
class Finding:
    level: str
    topic: str
    message: str


def loss_findings(logged: list[tuple[int, float]]) -> list[Finding]:
    """Level, trend, restarts from scratch and divergence (NaN or inf) in the training loss."""
    broken = [(step, loss) for step, loss in logged if not math.isfinite(loss)]
    losses = [(step, loss) for step, loss in logged if math.isfinite(loss)]
    out = []
    if broken:
        step, loss = broken[0]
        out.append(Finding(BAD, "loss", f"the loss is {loss} at step {step}: training diverged (lower learning_rate?)"))
    if len(losses) < 2:
        return out + [Finding(WARN, "loss", "fewer than two logged losses: nothing to judge (lower logging_steps?)")]
    steps = [s for s, _ in losses]
    resets = [i for i in range(1, len(steps)) if steps[i] < steps[i - 1]]
    if resets:
        i = resets[0]
        out.append(
            Finding(
                BAD,
                "reset",
                f"training restarted from scratch: step {steps[i - 1]} (loss "
                f"{losses[i - 1][1]:.3f}) is followed by step {steps[i]} (loss {losses[i][1]:.3f}); "
                "a restart was chosen where a resume was meant, or the output dir was reused",
            )
        )
        losses = losses[i:]
    first, last = losses[0][1], losses[-1][1]
    tail = [loss for _, loss in losses[-max(3, len(losses) // 5) :]]
    change = (last - first) / first if first else 0.0
    if change > -0.05:
        out.append(
            Finding(
                WARN,
                "trend",
                f"loss barely moved ({first:.3f} -> {last:.3f}): under-trained, or the learning rate is too low",
            )
        )
    else:
        out.append(Finding(OK, "trend", f"loss fell {-change:.0%} ({first:.3f} -> {last:.3f})"))
    if len(tail) >= 3 and tail[-1] > min(tail) * 1.2:
        out.append(Finding(WARN, "trend", f"the last losses rise again ({min(tail):.3f} -> {tail[-1]:.3f})"))
    return out


def overfit_findings(train: list[tuple[int, float]], evals: list[tuple[int, float]]) -> list[Finding]:
    """Eval loss against train loss: a growing gap or a rising eval loss means over-fitting."""
    evals = [(step, loss) for step, loss in evals if math.isfinite(loss)]
    if not evals:
        return [
            Finding(WARN, "eval", "no eval loss logged: over-fitting cannot be seen (set val_size or eval_dataset)")
        ]
    out = []
    best_step, best = min(evals, key=lambda x: x[1])
    last_step, last_eval = evals[-1]
    near_train = [loss for step, loss in train if step <= last_step][-3:]
    train_now = sum(near_train) / len(near_train) if near_train else None
    if len(evals) >= 2 and last_eval > best * 1.1 and last_step > best_step:
        out.append(
            Finding(
                BAD,
                "overfit",
                f"eval loss rose from {best:.3f} (step {best_step}) to {last_eval:.3f} "
                f"(step {last_step}) while training went on: over-fitting; keep checkpoint-{best_step} "
                "or train fewer epochs",
            )
        )
    elif train_now is not None and last_eval > 1.5 * train_now and last_eval - train_now > 0.2:
        out.append(Finding(WARN, "overfit", f"eval loss {last_eval:.3f} is well above train loss {train_now:.3f}"))
    else:
        out.append(
            Finding(
                OK,
                "overfit",
                f"eval loss {last_eval:.3f} tracks train loss" + (f" {train_now:.3f}" if train_now is not None else ""),
            )
        )
    return out


def checkpoint_findings(run_dir: Path) -> list[Finding]:
    status = output_status(run_dir)
    out = []
    if not status.checkpoints:
        out.append(
            Finding(
                WARN,
                "checkpoints",
                "no complete checkpoint: a killed job would start from scratch (save_steps larger than the run?)",
            )
        )
    else:
        out.append(
            Finding(
                OK,
                "checkpoints",
                f"{len(status.checkpoints)} complete checkpoint(s), latest {status.latest_checkpoint.name}",
            )
        )
    if status.incomplete:
        out.append(
            Finding(WARN, "checkpoints", "cut off while being written: " + ", ".join(p.name for p in status.incomplete))
        )
    return out


def task_findings(project: Project, task: Task, run: Run) -> tuple[list[Finding], str | None]:
    """What orch eval measured for the run's task, and the verdict it supports (baselines are references only).

    Each evaluation is judged exactly as `orch collect` judges its row (`collect.judged_rows`,
    `collect.judge_row`); the run's verdict is that of its best evaluation on the task's headline split
    (test where it was scored there): the decoding a deployer would ship.
    """
    ours = {run}  # the training run (sft or dpo)
    if run.stage == stages.TRAINING:
        ours.add(run.sibling(stages.EXPORT.name))  # older merged files name the export
    found = [item for item in evaluated(project, task) if item[2].run in ours]
    if not any(ident.subject in (ADAPTER, MERGED) for _, _, ident in found):
        return [
            Finding(
                WARN,
                "task",
                "not evaluated on the task: a low loss is not a good model; run `orch eval` (constrained and free)",
            )
        ], None
    rows = judged_rows(project, task, [*found, *_majority_items(project, task, found)])
    base = {(r.values.get("split"), r.values.get("decoding")): r for r in rows if r.subject == BASE}
    majority = {r.values.get("split"): r for r in rows if r.subject == MAJORITY}
    scored = [r for r in rows if r.subject in (ADAPTER, MERGED)]
    out, judged = [], []
    for row in scored:
        verdict = judge_row(row, task)
        judged.append((row, verdict))
        out.append(Finding(_level(row, verdict), "task", _task_text(task, row, base, majority)))
        if row.values.get(PRIOR_ONLY):
            out.append(Finding(BAD, "prior", f"{_where(row)}: {PRIOR_VERDICT}: {row.values[PRIOR_ONLY]}"))
    return out, _run_verdict(task, judged)


def _where(row: Row) -> str:
    merged = " (merged)" if row.subject == MERGED else ""
    return f"{row.values.get('split')}/{row.values.get('decoding')}{merged}"


def _level(row: Row, verdict: Verdict) -> str:
    if verdict.head == NOT_USABLE:
        return BAD
    fine = verdict.head == CANDIDATE and verdict.risk_known and row.values.get("valid_rate") == 1.0
    return OK if fine else WARN


def _task_text(task: Task, row: Row, base: dict, majority: dict) -> str:
    """One evaluation's headline numbers, each with its count and interval, beside its references."""
    text = f"{_where(row)}: valid {row.cell('valid_rate')}, all fields right {row.cell('all_fields_correct')}"
    if task.has_risk:
        n = row.values.get("at_risk_n")
        if not n:
            text += ", any-risk recall unknown (no at-risk examples in this split)"
        else:
            few = " (fewer than 5 at-risk examples: anecdotal)" if n < FEW_POSITIVES else ""
            text += f", any-risk recall {row.cell('any_risk_recall')}{few}"
            if row.values.get("risk_threshold") is not None:
                text += f", {row.cell('recall_at_threshold')} at the val threshold"
    references = []
    if (reference := base.get((row.values.get("split"), row.values.get("decoding")))) is not None:
        references.append(f"untrained base {reference.cell('all_fields_correct')}")
    if (prior := majority.get(row.values.get("split"))) is not None:
        references.append(f"majority baseline {prior.cell('all_fields_correct')}")
    return text + (f" (all fields right: {', '.join(references)})" if references else "")


def _run_verdict(task: Task, judged: list[tuple[Row, Verdict]]) -> str:
    """The run's verdict: its best evaluation on the headline split, in the words of the comparison."""
    splits = {row.values.get("split") for row, _ in judged}
    # test, else val, else any held-out split; the train split (scored for DPO pairs) only when nothing else is
    order = {"test": 0, "val": 1, "train": 3}
    headline = min(splits, key=lambda split: (order.get(str(split), 2), str(split)))
    candidates = [rv for rv in judged if rv[0].values.get("split") == headline]
    row, verdict = min(candidates, key=lambda rv: (rv[1].rank, rv[0].subject != ADAPTER))  # ties: the adapter's
    reasons = "; ".join(verdict.reasons)
    if verdict.head == NOT_USABLE and (prior := row.values.get(PRIOR_ONLY)):
        reasons = reasons.replace(f"({prior})", f"({prior}), whatever the loss says", 1)
    low = task.has_risk and row.values.get(RISK_LOW)
    tail = f"; any-risk recall below {task.min_risk_recall:.0%} ({task.name}'s risk.min_recall)" if low else ""
    return f"{verdict.head.lower()}: {reasons}{tail} (judged on {_where(row)})"


def _majority_items(project: Project, task: Task, found: list) -> list[tuple[Path, dict[str, Any], EvalIdentity]]:
    """The majority baseline on each scored split, computed and written nowhere (diagnose only reads)."""
    from orchestrator.evaluation.evaluate import baseline_metrics

    items = []
    for split in sorted({str(m.get("split")) for _, m, _ in found} & set(task.datasets)):
        try:
            metrics = baseline_metrics(project, task, MAJORITY, split)
        except OrchError:  # no readable training labels: judged without the majority baseline
            continue
        path = Layout(project).baseline_dir(task.name, MAJORITY, split) / "metrics.json"
        items.append((path, metrics, EvalIdentity(task.name, None, MAJORITY)))
    return items


def preference_findings(margins: list[tuple[int, float]], accuracies: list[tuple[int, float]]) -> list[Finding]:
    """What a DPO run's trainer log says: whether the policy came to prefer the chosen answers over the rejected
    ones (reward margin > 0, accuracy > 0.5), relative to the SFT model it started from. It says nothing of the
    task: the scores do."""
    if not margins or not accuracies:
        return [Finding(WARN, "preference", "no reward margins or accuracies logged yet (lower logging_steps?)")]
    broken = [(step, value) for step, value in [*margins, *accuracies] if not math.isfinite(value)]
    if broken:
        step, value = broken[0]
        return [Finding(BAD, "preference", f"a reward margin or accuracy is {value} at step {step}: DPO diverged")]
    (first_step, first), (last_step, last) = margins[0], margins[-1]
    accuracy = accuracies[-1][1]
    text = (
        f"reward margin {first:.3f} at step {first_step} -> {last:.3f} at step {last_step}, "
        f"preference accuracy {accuracy:.0%} (share of pairs where the chosen answer gained more than the rejected)"
    )
    if last <= 0 or accuracy <= 0.5:
        return [Finding(WARN, "preference", text + ": the model does not prefer the gold answers yet (more steps?)")]
    return [Finding(OK, "preference", text)]


def _state_dir(run_dir: Path) -> Path:
    """Where the trainer's full log is: the finished run's folder, else its latest complete checkpoint."""
    if (run_dir / outputs.TRAINER_STATE).is_file():
        return run_dir
    complete = [c for c in outputs.checkpoints(run_dir) if outputs.is_complete(c)]
    return complete[-1] if complete else run_dir


def diagnose(project: Project, task: Task, run: Run) -> tuple[list[Finding], str]:
    """Every finding about a training run (sft, or dpo with its reward margins) and the verdict (task metrics
    decide where they exist)."""
    trained = run.trained()
    run_dir = run_output_dir(project, trained)
    if not run_dir.is_dir():
        task_flag = f" --task {run.task}" if run.task else ""
        then = "" if trained.stage == stages.TRAINING else f" --then {trained.stage}"
        fix = f"orch submit {run.model} --method {run.method}{task_flag}{then}"
        raise OrchError(f"{project.relative(run_dir)} does not exist", fix=fix)
    findings = (
        loss_findings(outputs.logged_losses(run_dir))
        + overfit_findings(outputs.loss_points(run_dir), outputs.loss_points(run_dir, "eval_loss"))
        + checkpoint_findings(run_dir)
    )
    if trained.stage == stages.DPO.name:
        state_dir = _state_dir(run_dir)
        margins = outputs.loss_points(state_dir, "rewards/margins")
        findings += preference_findings(margins, outputs.loss_points(state_dir, "rewards/accuracies"))
    task_found, verdict = task_findings(project, task, trained)
    findings += task_found
    if verdict is None:
        loss_bad = any(f.level == BAD for f in findings)
        verdict = "unknown on the task (not evaluated)" + ("; the training log shows problems" if loss_bad else "")
    return findings, verdict
