"""What every command module shares: the catalog, model and method selection, common options."""

from __future__ import annotations

import sys

import click

from orchestrator.catalog import Catalog
from orchestrator.errors import OrchError
from orchestrator.project import find_project


def catalog() -> Catalog:
    """The catalog of the project orch runs in."""
    return Catalog(find_project())


def command_line() -> str:
    """The command as typed, for the ledger and steps.md."""
    return "orch " + " ".join(sys.argv[1:])


def select_models(cat: Catalog, models: tuple[str, ...], all_models: bool) -> list[str]:
    """The named models (checked), or every model with --all."""
    if all_models or not models:
        if not all_models:
            raise OrchError("name at least one model, or pass --all", fix=f"models: {', '.join(cat.model_names())}")
        return cat.model_names()
    for name in models:
        cat.check_model(name)
    return list(models)


def select_methods(cat: Catalog, method: str | None) -> list[str]:
    """The named method (checked), or every method."""
    if method is None:
        return cat.method_names()
    cat.check_method(method)
    return [method]


method_option = click.option("--method", "-m", default=None, help="lora or qlora (default: every method).")
task_option = click.option("--task", default=None, help="Task name under templates/tasks/ (default: the project's).")
set_option = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key (stage.key=value for one stage). Repeatable.",
)
executor_option = click.option(
    "--executor", "-e", default=None, help="slurm or local (default: $ORCH_EXECUTOR, else slurm if found)."
)
