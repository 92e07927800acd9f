"""`orch`: the command line. Each command parses arguments, calls the API, prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from orchestrator.catalog import Catalog
from orchestrator.errors import OrchError
from orchestrator.project import find_project


def _catalog() -> Catalog:
    return Catalog(find_project())


def _select_models(catalog: Catalog, models: tuple[str, ...], all_models: bool) -> list[str]:
    if all_models or not models:
        if not all_models:
            raise OrchError("name at least one model, or pass --all", fix=f"models: {', '.join(catalog.model_names())}")
        return catalog.model_names()
    for name in models:
        catalog.check_model(name)
    return list(models)


def _select_methods(catalog: Catalog, method: str | None) -> list[str]:
    if method is None:
        return catalog.method_names()
    catalog.check_method(method)
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


class _Group(click.Group):
    """Turns an OrchError anywhere below into a clean message and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OrchError as exc:
            click.echo(f"error: {exc.render()}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="orch")
def cli() -> None:
    """Fine-tune small base models with LLaMA-Factory into a structured-output assessor."""


@cli.command("list")
def list_cmd() -> None:
    """List models (family, LLaMA-Factory template, weights), methods and tasks."""
    catalog = _catalog()
    task = catalog.task()
    rows = [("MODEL", "FAMILY", "TEMPLATE", "MODEL_NAME_OR_PATH", "DESCRIPTION")]
    for name in catalog.model_names():
        info = catalog.model_info(name, task=task)
        rows.append((name, info.family, info.template, info.model_name_or_path, info.description))
    click.echo(_table(rows))
    click.echo(f"\nfamilies: {', '.join(catalog.family_names())}")
    click.echo(f"methods:  {', '.join(catalog.method_names())}")
    click.echo(f"tasks:    {', '.join(catalog.task_names())} (default: {catalog.default_task})")


@cli.command()
@click.argument("models", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Every model under templates/models/.")
@method_option
@task_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 and show a diff if the files drift.")
def render(models: tuple[str, ...], all_models: bool, method: str | None, task: str | None, check: bool) -> None:
    """Render LLaMA-Factory configs and dataset_info.json into llamafactory_configs/."""
    from orchestrator.render import check_rendered, render_all, write_files

    catalog = _catalog()
    names = _select_models(catalog, models, all_models or not models)
    files = render_all(catalog, names, _select_methods(catalog, method), catalog.task(task))
    if check:
        diff = check_rendered(catalog, files)
        if diff:
            click.echo(diff, nl=False)
            click.echo("\nrendered configs drift from the templates: run `orch render` and commit", err=True)
            sys.exit(1)
        click.echo(f"{len(files)} rendered files match the templates")
        return
    changed = write_files(files)
    for path in changed:
        click.echo(f"wrote {catalog.project.relative(path)}")
    click.echo(f"{len(files)} files rendered, {len(changed)} changed")


@cli.command()
@click.argument("models", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Every model under templates/models/.")
@click.option(
    "--config",
    "configs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Validate this LLaMA-Factory YAML instead (any, hand-written too). Repeatable.",
)
@method_option
@task_option
@set_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quiet", "-q", is_flag=True, help="Show errors and warnings only.")
def validate(models, all_models, configs, method, task, sets, as_json, quiet) -> None:
    """Check configs before submission: every problem at once, each with its fix."""
    from orchestrator.validation import Report, validate_file, validate_runs
    from orchestrator.validation.problems import Severity

    catalog = _catalog()
    if configs:
        report = Report()
        for path in configs:
            report.add(
                catalog.project.relative(path.resolve()), validate_file(catalog.project, catalog, path.resolve())
            )
    else:
        names = _select_models(catalog, models, all_models)
        if not as_json:
            click.echo(f"validating {len(names)} model(s) ...", err=True)
        report = validate_runs(catalog, names, _select_methods(catalog, method), catalog.task(task), sets)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        for source, problems in report.problems.items():
            shown = [p for p in problems if not (quiet and p.severity is Severity.INFO)]
            status = "FAIL" if any(p.severity is Severity.ERROR for p in problems) else "ok"
            click.echo(f"{status:4} {source}")
            for problem in shown:
                click.echo("     " + problem.render().replace("\n", "\n     "))
        click.echo(
            f"{len(report.problems)} config(s): {report.count(Severity.ERROR)} error(s), "
            f"{report.count(Severity.WARNING)} warning(s)"
        )
    sys.exit(0 if report.ok else 1)


@cli.group(cls=_Group)
def models() -> None:
    """Local model weights."""


@models.command("prepare")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Rebuild even if the model cache already has it.")
def models_prepare(names: tuple[str, ...], force: bool) -> None:
    """Build a model's weights in the model cache without a hub (e.g. smollm2-135m)."""
    from orchestrator.prepare import prepare_model

    catalog = _catalog()
    for name in names:
        path = prepare_model(catalog, name, force=force, log=lambda msg: click.echo(msg, err=True))
        click.echo(f"{name}: ready at {path}")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def main() -> None:
    """Console entry point."""
    cli()


if __name__ == "__main__":
    main()
