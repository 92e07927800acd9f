"""`orch list`, `orch render`, `orch validate`: what the templates offer and what they render to."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from orchestrator.cli.common import catalog, method_option, select_methods, select_models, set_option, task_option
from orchestrator.cli.ui import table


@click.command("list")
def list_cmd() -> None:
    """List models (family, LLaMA-Factory template, weights), methods and tasks."""
    cat = catalog()
    task = cat.task()
    rows = [("MODEL", "FAMILY", "TEMPLATE", "MODEL_NAME_OR_PATH", "DESCRIPTION")]
    for name in cat.model_names():
        info = cat.model_info(name, task=task)
        rows.append((name, info.family, info.template, info.model_name_or_path, info.description))
    click.echo(table(rows))
    click.echo(f"\nfamilies: {', '.join(cat.family_names())}")
    click.echo(f"methods:  {', '.join(cat.method_names())}")
    click.echo(f"tasks:    {', '.join(cat.task_names())} (default: {cat.default_task})")


@click.command()
@click.argument("models", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Every model under templates/models/.")
@method_option
@click.option("--task", default=None, help="Only this task (default: every task under templates/tasks/).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 and show a diff if the files drift.")
def render(models: tuple[str, ...], all_models: bool, method: str | None, task: str | None, check: bool) -> None:
    """Render LLaMA-Factory configs and dataset_info.json into llamafactory_configs/."""
    from orchestrator.render import check_rendered, render_all, write_files

    cat = catalog()
    names = select_models(cat, models, all_models or not models)
    tasks = [cat.task(task)] if task else [cat.task(name) for name in cat.task_names()]
    files = render_all(cat, names, select_methods(cat, method), tasks)
    if check:
        diff = check_rendered(cat, files)
        if diff:
            click.echo(diff, nl=False)
            click.echo("\nrendered configs drift from the templates: run `orch render` and commit", err=True)
            sys.exit(1)
        click.echo(f"{len(files)} rendered files match the templates")
        return
    changed = write_files(files)
    for path in changed:
        click.echo(f"wrote {cat.project.relative(path)}")
    click.echo(f"{len(files)} files rendered, {len(changed)} changed")


@click.command()
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

    cat = catalog()
    if configs:
        report = Report()
        for path in configs:
            report.add(cat.project.relative(path.resolve()), validate_file(cat.project, cat, path.resolve()))
    else:
        names = select_models(cat, models, all_models)
        if not as_json:
            click.echo(f"validating {len(names)} model(s) ...", err=True)
        report = validate_runs(cat, names, select_methods(cat, method), cat.task(task), sets)
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


COMMANDS = (list_cmd, render, validate)
