"""`orch models ...`: local model weights."""

from __future__ import annotations

import click

from orchestrator.cli import Group
from orchestrator.cli.common import catalog


@click.group(cls=Group)
def models() -> None:
    """Local model weights."""


@models.command("prepare")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Rebuild even if the model cache already has it.")
def models_prepare(names: tuple[str, ...], force: bool) -> None:
    """Build a model's weights in the model cache without a hub (e.g. smollm2-135m)."""
    from orchestrator.prepare import prepare_model

    cat = catalog()
    for name in names:
        path = prepare_model(cat, name, force=force, log=lambda msg: click.echo(msg, err=True))
        click.echo(f"{name}: ready at {path}")
