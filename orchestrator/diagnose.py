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
from orchestrator.errors import OrchError
from orchestrator.evaluation.prior import VERDICT as PRIOR_VERDICT
from orchestrator.evaluation.prior import prior_collapse
from orchestrator.layout import ADAPTER, BASE, MAJORITY, MERGED, Run
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
    """What orch eval measured for the run's task, and the verdict it supports (baselines are references only)."""
    from orchestrator.collect import evaluated

    found = [(m, i) for _, m, i in evaluated(project, task) if i.run == run.sibling(stages.TRAINING)]
    scored = [(m, i) for m, i in found if i.subject in (ADAPTER, MERGED)]
    if not scored:
        return [
            Finding(
                WARN,
                "task",
                "not evaluated on the task: a low loss is not a good model; run `orch eval` (constrained and free)",
            )
        ], None
    splits = {str(m.get("split")) for m, _ in scored} & set(task.datasets)
    majority = {split: m for split in splits if (m := _majority(project, task, split)) is not None}
    base = {(m.get("split"), m.get("decoding")): m for m, i in found if i.subject == BASE}
    threshold = task.min_risk_recall
    out, levels, collapsed = [], [], []
    for m, ident in scored:
        recall = (m.get("risk") or {}).get("any_risk_recall") if task.has_risk else None
        text = f"{m.get('split')}/{m.get('decoding')}{' (merged)' if ident.subject == MERGED else ''}: " + (
            f"valid {_pct(m.get('valid_rate'))}, all fields right {_pct(m.get('all_fields_correct'))}"
        )
        if task.has_risk:
            text += f", any-risk recall {_pct(recall)}"
        references = []
        if (reference := base.get((m.get("split"), m.get("decoding")))) is not None:
            references.append(f"untrained base {_pct(reference.get('all_fields_correct'))}")
        if (prior := majority.get(m.get("split"))) is not None:
            references.append(f"majority baseline {_pct(prior.get('all_fields_correct'))}")
        if references:
            text += f" (all fields right: {', '.join(references)})"
        low = recall is not None and recall < threshold
        unknown = task.has_risk and recall is None
        valid = m.get("valid_rate")
        invalid = not isinstance(valid, (int, float)) or valid < 1.0
        level = BAD if low else WARN if invalid or unknown else OK
        if unknown:
            text += " (no at-risk examples in this split: risk recall unknown)"
        out.append(Finding(level, "task", text))
        levels.append(level)
        if (reason := prior_collapse(task, m, majority.get(m.get("split")))) is not None:
            collapsed.append(reason)
            out.append(Finding(BAD, "prior", f"{m.get('split')}/{m.get('decoding')}: {PRIOR_VERDICT}: {reason}"))
    risk_low = BAD in levels
    low_text = f"any-risk recall below {threshold:.0%} ({task.name}'s risk.min_recall)"
    if collapsed:
        verdict = f"not usable: {PRIOR_VERDICT} ({collapsed[0]}), whatever the loss says"
        if risk_low:
            verdict += f"; {low_text}"
    elif risk_low:
        verdict = f"not usable: {low_text}"
    elif WARN in levels and any(m.get("valid_rate") != 1.0 for m, _ in scored):
        verdict = "usable only with constrained decoding (free output is not always valid)"
    elif WARN in levels:
        verdict = f"valid, but its risk recall is unknown: score it on a split with at-risk examples of {task.name}"
    elif task.has_risk:
        verdict = "valid and catches risk on this split; rank it against the others with orch collect"
    else:
        verdict = "valid on this split; rank it against the others (and the majority baseline) with orch collect"
    return out, verdict


def _majority(project: Project, task: Task, split: str) -> dict[str, Any] | None:
    """The majority baseline's metrics on a split, or None when the training labels cannot be read."""
    from orchestrator.evaluation.evaluate import baseline_metrics

    try:
        return baseline_metrics(project, task, MAJORITY, split)
    except OrchError:
        return None


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else "n/a"


def diagnose(project: Project, task: Task, run: Run) -> tuple[list[Finding], str]:
    """Every finding about a training run and the verdict (task metrics decide where they exist)."""
    run_dir = run_output_dir(project, run.sibling(stages.TRAINING))
    if not run_dir.is_dir():
        task_flag = f" --task {run.task}" if run.task else ""
        fix = f"orch submit {run.model} --method {run.method}{task_flag}"
        raise OrchError(f"{project.relative(run_dir)} does not exist", fix=fix)
    findings = (
        loss_findings(outputs.logged_losses(run_dir))
        + overfit_findings(outputs.loss_points(run_dir), outputs.loss_points(run_dir, "eval_loss"))
        + checkpoint_findings(run_dir)
    )
    task_found, verdict = task_findings(project, task, run)
    findings += task_found
    if verdict is None:
        loss_bad = any(f.level == BAD for f in findings)
        verdict = "unknown on the task (not evaluated)" + ("; the training log shows problems" if loss_bad else "")
    return findings, verdict
