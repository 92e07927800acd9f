"""`orch dpo ...`: preference data from the SFT model's own mistakes."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli import Group
from orchestrator.cli.common import catalog, task_option
from orchestrator.cli.ui import progress


@click.group(cls=Group)
def dpo() -> None:
    """Preference tuning (DPO) data."""


@dpo.command("pairs")
@click.argument("run")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Pairs file (JSONL).")
@click.option("--split", default="train", show_default=True, help="Task split the SFT model is scored on.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows.")
@click.option(
    "--risk-share",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Share of gold at-risk rows given a rejected answer that misses the risk.",
)
@click.option(
    "--keep-correct",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of rows the model gets right kept, rejecting its least certain field's runner-up.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=None, help="Examples scored at once (default: from free memory).")
@task_option
def dpo_pairs(run, output, split, limit, risk_share, keep_correct, seed, batch_size, task) -> None:
    """Score the SFT RUN on a split and write DPO pairs: chosen = gold, rejected = its own valid mistakes."""
    from orchestrator import stages
    from orchestrator.preference import build_pairs, stats_path

    cat = catalog()
    parsed = cat.layout.parse_run(run, task).sibling(stages.TRAINING)
    task_obj = cat.task(cat.layout.task_of(parsed))
    out = output.resolve() if output else cat.layout.preference_pairs(parsed, split)
    if output is None:
        from orchestrator.submit import check_idle

        dpo_run = parsed.sibling(stages.DPO.name)
        check_idle(cat.project, dpo_run, f"these pairs are what {dpo_run.name} trains on; not rewritten under it")
    with progress(f"scoring {parsed.name} on {split}") as update:
        built = build_pairs(
            cat.project,
            task_obj,
            parsed,
            out,
            split=split,
            limit=limit,
            risk_share=risk_share,
            keep_correct=keep_correct,
            seed=seed,
            batch_size=batch_size,
            progress=update,
            declare=output is None,  # -o elsewhere: that folder's dataset_info.json is not orch's to write
        )
    stats = built.stats
    kinds = ", ".join(f"{k} {v}" for k, v in stats["by_kind"].items()) or "none"
    click.echo(
        f"{stats['pairs']} pair(s) from {stats['rows']} row(s) ({kinds}); {stats['rows_without_pair']} row(s) skipped"
    )
    if stats.get("warning"):
        click.echo(f"WARNING: {stats['warning']}")
    click.echo(f"pairs: {cat.project.relative(out)}")
    click.echo(f"stats: {cat.project.relative(stats_path(out))}")
    if output is None:
        click.echo(f"declared for the dpo stage in {cat.project.relative(out.parent / 'dataset_info.json')}")
