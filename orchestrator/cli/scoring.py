"""`orch eval`, `orch collect`, `orch diagnose`: which model is best, and why."""

from __future__ import annotations

import re
from pathlib import Path

import click

from orchestrator.cli.common import catalog, command_line, task_option
from orchestrator.cli.ui import Bars, progress
from orchestrator.errors import OrchError


@click.command("eval")
@click.argument("run", required=False)
@click.option("--split", default="test", show_default=True, help="Task split to score.")
@click.option(
    "--decoding",
    type=click.Choice(["constrained", "free", "both"]),
    default="constrained",
    show_default=True,
    help="both: constrained and free from one encoding of each prompt.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N examples.")
@click.option("--batch-size", type=int, default=None, help="Examples per batch (default: chosen from free memory).")
@click.option(
    "--max-new-tokens", type=int, default=None, help="Free decoding's limit (default: 1.5x the longest answer)."
)
@click.option("--base", is_flag=True, help="Score the untrained base model (no adapter) as a baseline.")
@click.option("--merged", is_flag=True, help="Score the merged model (the export stage's output) instead.")
@click.option("--gguf", is_flag=True, help="Score the gguf stage's quantized model through llama.cpp instead.")
@click.option("--rules", "rules_baseline", is_flag=True, help="Score the task's rules labeler (no model).")
@click.option("--majority", is_flag=True, help="Score the majority baseline: each field's most frequent label.")
@click.option(
    "--predictions",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Score LLaMA-Factory's generated_predictions.jsonl instead of decoding.",
)
@click.option(
    "--checkpoint",
    default=None,
    help="Score one checkpoint's adapter (N or checkpoint-N), or `all`: the learning curve over every checkpoint.",
)
@task_option
def eval_cmd(
    run,
    split,
    decoding,
    limit,
    batch_size,
    max_new_tokens,
    base,
    merged,
    gguf,
    rules_baseline,
    majority,
    predictions,
    checkpoint,
    task,
):
    """Score a run on its task: valid JSON by construction (constrained) or extracted (free)."""
    from orchestrator.evaluation.evaluate import (
        Scored,
        evaluate_baseline,
        evaluate_decodings,
        record_evaluation,
        score_predictions_file,
    )
    from orchestrator.evaluation.metrics import summary
    from orchestrator.layout import ADAPTER, BASE, GGUF, MAJORITY, MERGED, RULES

    cat = catalog()
    parsed = cat.layout.parse_run(run, task) if run else None
    task_obj = cat.task(cat.layout.task_of(parsed) if parsed else task)
    if sum((base, merged, gguf)) > 1:
        raise OrchError("--base, --merged and --gguf score different models", fix="pick one")
    other_subject = base or merged or gguf or rules_baseline or majority or predictions
    if checkpoint is not None and (other_subject or parsed is None):
        raise OrchError("--checkpoint scores a run's own adapter", fix="name the run, without --base/--gguf/...")
    if checkpoint == "all":
        _learning_curve(cat, task_obj, parsed.trained(), split, batch_size, decoding, limit)
        return
    if checkpoint is not None and re.fullmatch(r"[0-9]+", checkpoint, flags=re.ASCII):
        checkpoint = f"checkpoint-{int(checkpoint)}"
    if predictions is not None:
        results = [score_predictions_file(cat.project, task_obj, predictions.resolve())]
    elif rules_baseline or majority:
        kinds = [k for k, on in ((MAJORITY, majority), (RULES, rules_baseline)) if on]
        results = [evaluate_baseline(cat.project, task_obj, kind, split, limit) for kind in kinds]
    else:
        if parsed is None:
            raise OrchError("name a run (MODEL/METHOD) or pass --predictions FILE, --rules or --majority")
        subject = BASE if base else MERGED if merged else GGUF if gguf else ADAPTER
        decodings = ("constrained", "free") if decoding == "both" else (decoding,)
        with progress(f"{decoding} decoding") as update:
            results = list(
                evaluate_decodings(
                    cat.project,
                    task_obj,
                    Scored(parsed.trained(), subject, checkpoint),
                    decodings=decodings,
                    split=split,
                    limit=limit,
                    batch_size=batch_size,
                    max_new_tokens=max_new_tokens,
                    progress=update,
                ).values()
            )
    for result in results:
        if predictions is None:
            trained = parsed.trained() if parsed and not (rules_baseline or majority) else None
            record_evaluation(cat.project, result, trained, command_line())
        if len(results) > 1:
            click.echo(f"-- {result.metrics['decoding']}")
        click.echo(summary(result.metrics))
        click.echo(f"predictions: {cat.project.relative(result.predictions)}")


def _learning_curve(cat, task_obj, run, split: str, batch_size: int | None, decoding: str, limit: int | None) -> None:
    """`orch eval RUN --checkpoint all`: every complete checkpoint scored on the split, as a table."""
    from orchestrator.evaluation.learning_curve import learning_curve
    from orchestrator.runs import record_event
    from orchestrator.stages import Event

    if decoding != "constrained" or limit is not None:
        raise OrchError("a learning curve scores whole splits, constrained", fix="drop --decoding and --limit")
    with Bars() as bars:
        curve = learning_curve(
            cat.project,
            task_obj,
            run,
            split=split,
            batch_size=batch_size,
            progress=lambda name, done, total: bars.update(f"scoring {name}", done, total),
        )
    said = curve.verdict
    record_event(
        cat.project,
        run,
        Event.EVALUATED,
        message=f"learning curve: {len(curve.points)} checkpoint(s) scored on the {split} split; the run {said}",
        command=command_line(),
        output_dir=cat.project.relative(curve.paths["markdown"]),
        table=curve.table,
    )
    click.echo(curve.table)
    click.echo(f"the run {said}")
    for kind, path in curve.paths.items():
        click.echo(f"{kind}: {cat.project.relative(path)}")


@click.command()
@click.option("--sort", default=None, help="Column to sort by, best first (default: risk recall, else all correct).")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Flag any-risk recall below (default: the task's).",
)
@task_option
def collect(sort: str | None, threshold: float | None, task: str | None) -> None:
    """Put every evaluation of a task side by side (with its majority baseline): comparison.{md,csv,html}."""
    from orchestrator.collect import compare

    cat = catalog()
    result = compare(cat.project, cat.task(task), sort, threshold, command=command_line())
    click.echo(result.table)
    for kind, path in result.paths.items():
        click.echo(f"{kind}: {cat.project.relative(path)}")


@click.command("diagnose")
@click.argument("run")
@task_option
def diagnose_cmd(run: str, task: str | None) -> None:
    """Explain a run: loss level and trend, over-fitting, resets, checkpoints, task metrics."""
    from orchestrator.diagnose import diagnose

    cat = catalog()
    parsed = cat.layout.parse_run(run, task)
    findings, verdict = diagnose(cat.project, cat.task(cat.layout.task_of(parsed)), parsed)
    for finding in findings:
        click.echo(f"{finding.level.upper():8} {finding.topic:12} {finding.message}")
    click.echo(f"verdict: {verdict}")


COMMANDS = (eval_cmd, collect, diagnose_cmd)
