"""`orch submit`, `orch pipeline`, `orch status`, `orch logs`, `orch cancel`: jobs on an executor."""

from __future__ import annotations

import click

from orchestrator import stages
from orchestrator.cli.common import catalog, command_line, executor_option, set_option, task_option
from orchestrator.cli.ui import Bars, table
from orchestrator.errors import OrchError
from orchestrator.layout import Layout
from orchestrator.project import find_project


@click.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--method", "-m", default="lora", show_default=True, help="lora or qlora.")
@executor_option
@task_option
@set_option
@click.option(
    "--then",
    "then",
    default="",
    help=f"Chain stages after training (afterok): {', '.join(stages.CHAINABLE)}; e.g. export,gguf,eval or dpo,eval "
    "(dpo: its pairs first).",
)
@click.option("--restart", is_flag=True, help="Train from scratch; the old output directory is moved aside.")
@click.option("--allow-config-change", is_flag=True, help="Resume even though the config changed since the checkpoint.")
@click.option("--dry-run", is_flag=True, help="Render, validate and plan; submit nothing.")
@click.option("--partition", default=None, help="SLURM partition.")
@click.option("--time", "time_limit", default=None, help="SLURM time limit, e.g. 24:00:00.")
@click.option("--nodes", type=int, default=None, help="SLURM nodes (multi-node uses torchrun).")
@click.option("--gpus-per-node", type=int, default=None, help="GPUs per node (0 for a CPU partition).")
@click.option(
    "--processes-per-node", type=int, default=None, help="Training processes per node (default: one per GPU)."
)
@click.option("--cpus", "cpus_per_task", type=int, default=None, help="CPUs per task.")
@click.option("--mem", default=None, help="Memory per node, e.g. 32G.")
@click.option("--signal-seconds", type=int, default=None, help="Requeue signal this long before the time limit.")
@click.option("--max-requeues", type=int, default=None, help="Upper bound on automatic requeues.")
def submit(models, method, executor, task, sets, then, restart, allow_config_change, dry_run, **resources) -> None:
    """Render, validate and submit training (and chained dpo/predict/export/gguf/eval) jobs."""
    from orchestrator.submit import submit as do_submit

    cat = catalog()
    resources["time"] = resources.pop("time_limit")
    opts = _submit_options(
        cat,
        models,
        method=method,
        executor=executor,
        task=task,
        sets=tuple(sets),
        restart=restart,
        then=tuple(s for s in then.split(",") if s),
        dry_run=dry_run,
        allow_config_change=allow_config_change,
        resources=resources,
    )
    do_submit(cat, list(models), opts, log=lambda msg: click.echo(msg, err=msg.endswith("...")))


def _submit_options(cat, models: tuple[str, ...], *, method: str, executor: str | None, **fields):
    """SubmitOptions for checked model and method names, on the named (or default) executor."""
    from orchestrator.executors import default_executor_name
    from orchestrator.submit import SubmitOptions

    for name in models:
        cat.check_model(name)
    cat.check_method(method)
    executor = executor or default_executor_name()
    return SubmitOptions(method=method, executor=executor, command=command_line(), **fields)


@click.command()
@click.argument("model")
@click.option("--method", "-m", default="lora", show_default=True, help="lora or qlora.")
@executor_option
@task_option
@set_option
@click.option("--restart", is_flag=True, help="Train from scratch; the old output directory is moved aside.")
@click.option(
    "--then",
    "then",
    default="",
    help="Stages between training and scoring, e.g. export,gguf: their models are scored too (the deploy demo).",
)
@click.option(
    "--dpo", is_flag=True, help="Then DPO on pairs from the SFT model's own mistakes (--then dpo); SFT and DPO scored."
)
@click.option("--split", default="test", show_default=True, help="Task split to score on.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Examples scored at once.")
@click.option("--no-baselines", is_flag=True, help="Skip the untrained base model and the model-free baselines.")
@click.option("--sort", default=None, help="Comparison column to sort by (default: risk recall, else all correct).")
@click.option("--partition", default=None, help="SLURM partition.")
@click.option("--time", "time_limit", default=None, help="SLURM time limit, e.g. 24:00:00.")
def pipeline(
    model,
    method,
    executor,
    task,
    sets,
    restart,
    then,
    dpo,
    split,
    batch_size,
    no_baselines,
    sort,
    partition,
    time_limit,
) -> None:
    """Train MODEL, then the chain and the eval job (scoring on the executor), baselines, compare: in one go."""
    from orchestrator.collect import compact_table, verdict_lines
    from orchestrator.workflow import PipelineOptions, run_pipeline

    cat = catalog()
    resources = {"partition": partition, "time": time_limit}
    submit_opts = _submit_options(
        cat,
        (model,),
        method=method,
        executor=executor,
        task=task,
        sets=tuple(sets),
        restart=restart,
        resources=resources,
    )
    chain = tuple(s for s in then.split(",") if s) + ((stages.DPO.name,) if dpo else ())
    opts = PipelineOptions(split, batch_size, chain, not no_baselines, sort, command=command_line())
    with Bars() as bars:
        try:
            result = run_pipeline(
                cat, model, submit_opts, opts, log=bars.echo, progress=bars.update, on_status=bars.training_status
            )
        except KeyboardInterrupt:
            bars.close()
            raise OrchError(
                "stopped waiting; a submitted job keeps running",
                fix=f"orch status {model}/{method} to watch it, orch cancel {model}/{method} to stop it",
            ) from None
    comparison = result.comparison
    task_obj = cat.task(submit_opts.task)
    click.echo(f"\n{split} split, the headline numbers (every column of every split: the report files):")
    click.echo(compact_table(comparison.rows, task_obj, split))
    for line in verdict_lines(comparison.rows, task_obj, split):
        click.echo(line)
    if comparison.flagged:
        click.echo(
            f"{len(comparison.flagged)} row(s) flagged: any-risk recall below {comparison.threshold:.0%} "
            "(see risk_recall_low)."
        )
    click.echo(f"Full table: {cat.project.relative(comparison.paths['md'])}")
    click.echo(f"Report: {cat.project.relative(comparison.paths['index'])} (open it in a browser)")
    click.echo(f"Journal: {cat.project.relative(cat.project.steps)}")
    click.echo(f"Timeline: {result.timeline_text()}")


@click.command()
@click.argument("run", required=False)
@click.option("--all", "all_runs", is_flag=True, help="Every run in the ledger.")
def status(run: str | None, all_runs: bool) -> None:
    """A table of runs: job id, state, step/total, last loss, elapsed."""
    from orchestrator.monitor import all_status, run_status

    project = find_project()
    one = Layout(project).parse_run(run) if run else None
    rows = all_status(project) if all_runs or one is None else [s for s in [run_status(project, one)] if s]
    if not rows:
        click.echo("no runs yet (orch submit MODEL)")
        return
    lines = [("RUN", "EXECUTOR", "JOB", "STATE", "STEP", "LOSS", "TOK/S", "MFU", "ELAPSED")]
    lines += [(r.run, r.executor, r.job_id, r.state, r.step, r.loss, r.tokens_per_s, r.mfu, r.elapsed) for r in rows]
    click.echo(table(lines))
    for r in rows:
        if r.log_tail and r.state not in ("CANCELLED",):
            click.echo(f"\n{r.run}: {r.state}{' (' + r.reason + ')' if r.reason else ''}; last lines of its log:")
            click.echo(r.log_tail)


@click.command()
@click.argument("run")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
def logs(run: str, follow: bool) -> None:
    """Print a run's job log."""
    from orchestrator.monitor import follow as follow_log
    from orchestrator.monitor import log_path

    project = find_project()
    parsed = Layout(project).parse_run(run)
    if follow:
        follow_log(project, parsed, lambda text: click.echo(text, nl=False))
        return
    path = log_path(project, parsed)
    click.echo(path.read_text(encoding="utf-8", errors="replace") if path.is_file() else f"(no log yet: {path})")


@click.command()
@click.argument("run")
def cancel(run: str) -> None:
    """Cancel a run's job. Its checkpoints stay; the next submit resumes."""
    from orchestrator.monitor import cancel as do_cancel

    project = find_project()
    job_id = do_cancel(project, Layout(project).parse_run(run), command=command_line())
    click.echo(f"cancelled job {job_id} of {run}")


COMMANDS = (submit, pipeline, status, logs, cancel)
