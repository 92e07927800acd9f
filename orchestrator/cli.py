"""`orch`: the command line. Each command parses arguments, calls the API, prints."""

from __future__ import annotations

import contextlib
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


@cli.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--method", "-m", default="lora", show_default=True, help="lora or qlora.")
@click.option("--executor", "-e", default=None, help="slurm or local (default: $ORCH_EXECUTOR, else slurm if found).")
@task_option
@set_option
@click.option("--then", "then", default="", help="Chain stages after training: predict,export (afterok).")
@click.option("--restart", is_flag=True, help="Train from scratch; the old output directory is moved aside.")
@click.option("--allow-config-change", is_flag=True, help="Resume even though the config changed since the checkpoint.")
@click.option("--dry-run", is_flag=True, help="Render, validate and plan; submit nothing.")
@click.option("--partition", default=None, help="SLURM partition.")
@click.option("--time", "time_limit", default=None, help="SLURM time limit, e.g. 24:00:00.")
@click.option("--nodes", type=int, default=None, help="SLURM nodes (multi-node uses torchrun).")
@click.option("--gpus-per-node", type=int, default=None, help="GPUs per node (0 for a CPU partition).")
@click.option("--cpus", "cpus_per_task", type=int, default=None, help="CPUs per task.")
@click.option("--mem", default=None, help="Memory per node, e.g. 32G.")
@click.option("--signal-seconds", type=int, default=None, help="Requeue signal this long before the time limit.")
@click.option("--max-requeues", type=int, default=None, help="Upper bound on automatic requeues.")
def submit(
    models,
    method,
    executor,
    task,
    sets,
    then,
    restart,
    allow_config_change,
    dry_run,
    partition,
    time_limit,
    nodes,
    gpus_per_node,
    cpus_per_task,
    mem,
    signal_seconds,
    max_requeues,
) -> None:
    """Render, validate and submit training (and chained predict/export) jobs."""
    from orchestrator.executors import default_executor_name
    from orchestrator.submit import SubmitOptions
    from orchestrator.submit import submit as do_submit

    catalog = _catalog()
    for name in models:
        catalog.check_model(name)
    catalog.check_method(method)
    opts = SubmitOptions(
        method=method,
        executor=executor or default_executor_name(),
        task=task,
        sets=tuple(sets),
        restart=restart,
        then=tuple(s for s in then.split(",") if s),
        dry_run=dry_run,
        allow_config_change=allow_config_change,
        command="orch " + " ".join(sys.argv[1:]),
        resources={
            "partition": partition,
            "time": time_limit,
            "nodes": nodes,
            "gpus_per_node": gpus_per_node,
            "cpus_per_task": cpus_per_task,
            "mem": mem,
            "signal_seconds": signal_seconds,
            "max_requeues": max_requeues,
        },
    )
    do_submit(catalog, list(models), opts, log=lambda msg: click.echo(msg, err=msg.endswith("...")))


@cli.command()
@click.argument("model")
@click.option("--method", "-m", default="lora", show_default=True, help="lora or qlora.")
@click.option("--executor", "-e", default=None, help="slurm or local (default: $ORCH_EXECUTOR, else slurm if found).")
@task_option
@set_option
@click.option("--restart", is_flag=True, help="Train from scratch; the old output directory is moved aside.")
@click.option("--split", default="test", show_default=True, help="Task split to score on.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Examples scored at once.")
@click.option("--no-baselines", is_flag=True, help="Skip the untrained base model and the rules labeler.")
@click.option("--sort", default="all_fields_correct", show_default=True, help="Comparison column to sort by.")
@click.option("--partition", default=None, help="SLURM partition.")
@click.option("--time", "time_limit", default=None, help="SLURM time limit, e.g. 24:00:00.")
def pipeline(
    model, method, executor, task, sets, restart, split, batch_size, no_baselines, sort, partition, time_limit
) -> None:
    """Train MODEL, wait, score it and the baselines (constrained and free), compare: the whole job in one go."""
    from orchestrator.executors import default_executor_name
    from orchestrator.submit import SubmitOptions
    from orchestrator.workflow import PipelineOptions, run_pipeline

    catalog = _catalog()
    catalog.check_model(model)
    catalog.check_method(method)
    command = "orch " + " ".join(sys.argv[1:])
    submit_opts = SubmitOptions(
        method=method,
        executor=executor or default_executor_name(),
        task=task,
        sets=tuple(sets),
        restart=restart,
        command=command,
        resources={"partition": partition, "time": time_limit},
    )
    opts = PipelineOptions(split, batch_size, not no_baselines, sort, command=command)
    with _Bars() as bars:
        try:
            result = run_pipeline(
                catalog, model, submit_opts, opts, log=bars.echo, progress=bars.update, on_status=bars.training_status
            )
        except KeyboardInterrupt:
            bars.close()
            raise OrchError(
                "stopped waiting; a submitted job keeps running",
                fix=f"orch status {model}/{method} to watch it, orch cancel {model}/{method} to stop it",
            ) from None
    click.echo(result.comparison.table)
    flagged = result.comparison.flagged
    if flagged:
        click.echo(f"{len(flagged)} row(s) flagged: any-risk recall below {opts.threshold:.0%} (see risk_flag_low).")
    index = result.comparison.paths["index"]
    click.echo(f"Report: {catalog.project.relative(index)} (open it in a browser)")
    click.echo(f"Journal: {catalog.project.relative(catalog.project.steps)}")


class _Bars:
    """One progress bar per phase on stderr (training steps, examples scored); messages go between bars."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.bar = None

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = click.progressbar(length=total, label=phase, file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.length = total
        self.bar.update(done - self.bar.pos)

    def training_status(self, status) -> None:
        """Show the last logged loss beside the training bar, and say once when a job waits in a queue."""
        if status.state == "PENDING" and status.executor != "local" and self.phase != "queued":
            self.echo(f"{status.run}: job {status.job_id} is queued ({status.reason or 'waiting for resources'}) ...")
            self.phase = "queued"
        if self.bar is not None and self.phase == "training" and status.loss:
            self.bar.label = f"training (loss {status.loss})"

    def echo(self, message: str) -> None:
        self.close()
        click.echo(message, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        self.bar, self.phase = None, None


@cli.command()
@click.argument("run", required=False)
@click.option("--all", "all_runs", is_flag=True, help="Every run in the ledger.")
def status(run: str | None, all_runs: bool) -> None:
    """A table of runs: job id, state, step/total, last loss, elapsed."""
    from orchestrator.monitor import all_status, run_status
    from orchestrator.runs import Run

    project = find_project()
    rows = all_status(project) if all_runs or not run else [s for s in [run_status(project, Run.parse(run))] if s]
    if not rows:
        click.echo("no runs yet (orch submit MODEL)")
        return
    table = [("RUN", "EXECUTOR", "JOB", "STATE", "STEP", "LOSS", "ELAPSED")]
    table += [(r.run, r.executor, r.job_id, r.state, r.step, r.loss, r.elapsed) for r in rows]
    click.echo(_table(table))
    for r in rows:
        if r.log_tail and r.state not in ("CANCELLED",):
            click.echo(f"\n{r.run}: {r.state}{' (' + r.reason + ')' if r.reason else ''}; last lines of its log:")
            click.echo(r.log_tail)


@cli.command()
@click.argument("run")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
def logs(run: str, follow: bool) -> None:
    """Print a run's job log."""
    from orchestrator.monitor import follow as follow_log
    from orchestrator.monitor import log_path
    from orchestrator.runs import Run

    project = find_project()
    if follow:
        follow_log(project, Run.parse(run), lambda text: click.echo(text, nl=False))
        return
    path = log_path(project, Run.parse(run))
    click.echo(path.read_text(encoding="utf-8", errors="replace") if path.is_file() else f"(no log yet: {path})")


@cli.command()
@click.argument("run")
def cancel(run: str) -> None:
    """Cancel a run's job. Its checkpoints stay; the next submit resumes."""
    from orchestrator.monitor import cancel as do_cancel
    from orchestrator.runs import Run

    job_id = do_cancel(find_project(), Run.parse(run), command="orch " + " ".join(sys.argv[1:]))
    click.echo(f"cancelled job {job_id} of {run}")


@cli.command("eval")
@click.argument("run", required=False)
@click.option("--split", default="test", show_default=True, help="Task split to score.")
@click.option(
    "--decoding",
    type=click.Choice(["constrained", "free", "both"]),
    default="constrained",
    show_default=True,
    help="both: constrained and free from one encoding of each prompt.",
)
@click.option("--limit", type=int, default=None, help="Only the first N examples.")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option(
    "--max-new-tokens", type=int, default=None, help="Free decoding's limit (default: 1.5x the longest answer)."
)
@click.option("--base", is_flag=True, help="Score the untrained base model (no adapter) as a baseline.")
@click.option("--merged", is_flag=True, help="Score the merged model (the export stage's output) instead.")
@click.option("--rules", "rules_baseline", is_flag=True, help="Score the rules labeler (a baseline row, no model).")
@click.option(
    "--predictions",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Score LLaMA-Factory's generated_predictions.jsonl instead of decoding.",
)
@task_option
def eval_cmd(run, split, decoding, limit, batch_size, max_new_tokens, base, merged, rules_baseline, predictions, task):
    """Score a run on the task: valid JSON by construction (constrained) or extracted (free)."""
    from orchestrator.evaluation.evaluate import (
        evaluate_decodings,
        evaluate_rules,
        record_evaluation,
        score_predictions_file,
    )
    from orchestrator.evaluation.metrics import summary
    from orchestrator.runs import Run

    catalog = _catalog()
    task_obj = catalog.task(task)
    command = "orch " + " ".join(sys.argv[1:])
    parsed = None
    if predictions is not None:
        results = [score_predictions_file(task_obj, predictions.resolve())]
    elif rules_baseline:
        results = [evaluate_rules(catalog.project, task_obj, split, limit)]
    else:
        if not run:
            raise OrchError("name a run (MODEL/METHOD) or pass --predictions FILE")
        parsed = Run.parse(run)
        out = _eval_dir(catalog, parsed, merged)
        decodings = ("constrained", "free") if decoding == "both" else (decoding,)
        with _progress(f"{decoding} decoding") as progress:
            results = list(
                evaluate_decodings(
                    catalog.project,
                    task_obj,
                    out,
                    decodings=decodings,
                    split=split,
                    limit=limit,
                    batch_size=batch_size,
                    base=base,
                    max_new_tokens=max_new_tokens,
                    progress=progress,
                ).values()
            )
    for result in results:
        if predictions is None:
            record_evaluation(catalog.project, result, parsed, command)
        if len(results) > 1:
            click.echo(f"-- {result.metrics['decoding']}")
        click.echo(summary(result.metrics))
        click.echo(f"predictions: {catalog.project.relative(result.predictions)}")


def _eval_dir(catalog: Catalog, run, merged: bool) -> Path:
    """The output directory `orch eval` scores: the run's (from the ledger), or its merged model."""
    from orchestrator.runs import Run, last_submission

    sub = last_submission(catalog.project, run)
    project = catalog.project
    out = (
        project.resolve(sub["output_dir"])
        if sub
        else project.resolve(f"{project.saves_setting}/{run.model}/{run.method}/sft")
    )
    if merged:
        export = last_submission(project, Run(run.model, run.method, "export", run.task))
        out = project.resolve(export["output_dir"]) if export else out.parent / "merged"
    return out


@cli.command()
@click.option("--sort", default="any_risk_recall", show_default=True, help="Column to sort by (best first).")
@click.option("--threshold", type=float, default=0.9, show_default=True, help="Flag rows with any-risk recall below.")
@task_option
def collect(sort: str, threshold: float, task: str | None) -> None:
    """Put every evaluated run side by side: reports/comparison.{md,csv,html} and reports/index.html."""
    from orchestrator.collect import compare

    catalog = _catalog()
    result = compare(catalog.project, catalog.task(task), sort, threshold, command="orch " + " ".join(sys.argv[1:]))
    click.echo(result.table)
    for kind, path in result.paths.items():
        click.echo(f"{kind}: {catalog.project.relative(path)}")


@cli.command("diagnose")
@click.argument("run")
def diagnose_cmd(run: str) -> None:
    """Explain a run: loss level and trend, over-fitting, resets, checkpoints, task metrics."""
    from orchestrator.diagnose import diagnose
    from orchestrator.runs import Run

    catalog = _catalog()
    out = _eval_dir(catalog, Run.parse(run), merged=False)
    if not out.is_dir():
        raise OrchError(
            f"{catalog.project.relative(out)} does not exist", fix=f"orch submit {Run.parse(run).model} first"
        )
    findings, verdict = diagnose(out)
    for finding in findings:
        click.echo(f"{finding.level.upper():8} {finding.topic:12} {finding.message}")
    click.echo(f"verdict: {verdict}")


@cli.group(cls=_Group)
def data() -> None:
    """The data pipeline: raw corpora to the task's SFT dataset."""


@data.command("normalize")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="unified.jsonl to write.")
@click.option("--format", "fmt", default=None, help="Force one format (default: detected per file).")
def data_normalize(sources, out, fmt) -> None:
    """Raw corpora -> one unified, cleaned, anonymised, deduplicated dialogue file (+ stats.json)."""
    from orchestrator.data.pipeline import normalize

    summary = normalize(list(sources), out, fmt, progress=lambda m: click.echo(m, err=True))
    click.echo(
        f"{summary['dialogues']} dialogues -> {out}; dropped {summary['dropped_dialogues']}; "
        f"anonymized {summary['anonymized']}; stats: {out.with_name('stats.json')}"
    )


@data.command("select")
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--min-assistant-chars", type=int, default=None)
@click.option("--max-chars", type=int, default=None)
@click.option("--max-turns", type=int, default=None)
@task_option
def data_select(source, out, min_assistant_chars, max_chars, max_turns, task) -> None:
    """The student-scenario subset (filters from the task file's `data.select`), tail-truncated."""
    from orchestrator.data.pipeline import select

    config = dict((_catalog().task(task).raw.get("data") or {}).get("select") or {})
    overrides = {"min_assistant_chars": min_assistant_chars, "max_chars": max_chars, "max_turns": max_turns}
    config.update({k: v for k, v in overrides.items() if v is not None})
    summary = select(source, out, config)
    click.echo(
        f"{summary['dialogues']} of {summary['input']} kept -> {out}; dropped {summary['dropped']}; "
        f"truncated {summary['truncated']}"
    )


@data.command("label")
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--labeler", type=click.Choice(["teacher", "rules"]), default="teacher", show_default=True)
@click.option("--endpoint", default=None, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
@click.option("--model", "teacher_model", default=None, help="The teacher model name at the endpoint.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Env var holding the API key.")
@click.option("--concurrency", type=int, default=4, show_default=True)
@click.option("--rate", type=float, default=None, help="Max requests per second.")
@click.option("--retries", type=int, default=4, show_default=True)
@click.option("--limit", type=int, default=None)
@task_option
def data_label(
    source, out, labeler, endpoint, teacher_model, api_key_env, concurrency, rate, retries, limit, task
) -> None:
    """Add the labels: a teacher model (cached, resumable) or the rules baseline."""
    from orchestrator.data.label import Teacher, label_with_rules, label_with_teacher

    task_obj = _catalog().task(task)
    if labeler == "rules":
        summary = label_with_rules(task_obj, source, out)
    else:
        if not endpoint or not teacher_model:
            raise OrchError("a teacher needs --endpoint and --model", fix="or use --labeler rules")
        with _progress("labeling") as progress:
            summary = label_with_teacher(
                task_obj,
                source,
                out,
                Teacher(endpoint, teacher_model, api_key_env),
                concurrency=concurrency,
                rate=rate,
                retries=retries,
                progress=progress,
                limit=limit,
            )
    click.echo(
        f"labeled {summary['labeled']}, failed {summary['failed']} (listed in "
        f"{out.with_suffix('.failures.jsonl')}) -> {out}"
    )


@data.command("prepare")
@click.argument("labeled", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--split",
    "split_spec",
    default=None,
    help="e.g. train=0.8,val=0.1,test=0.1 (default: the task's splits, 10% each but train).",
)
@task_option
def data_prepare(labeled, split_spec, task) -> None:
    """Write the task's SFT files with deterministic stratified splits; update dataset_info.json."""
    from orchestrator.data.pipeline import prepare
    from orchestrator.render import render_dataset_info, write_files

    catalog = _catalog()
    task_obj = catalog.task(task)
    others = [s for s in task_obj.datasets if s != "train"]
    fractions = {"train": 1 - 0.1 * len(others), **{s: 0.1 for s in others}}
    if split_spec:
        fractions = {}
        for part in split_spec.split(","):
            name, _, value = part.partition("=")
            fractions[name.strip()] = float(value)
    counts = prepare(task_obj, labeled, fractions, catalog.project.root)
    write_files({catalog.project.configs / "dataset_info.json": render_dataset_info(catalog)})
    for split, info in counts.items():
        click.echo(f"{split}: {info}")


@data.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--json", "as_json", is_flag=True)
@click.option("--model", "model_name", default=None, help="Also flag rows too long for this model's cutoff_len.")
@click.option("--method", default="lora", show_default=True)
@task_option
def data_check(files, as_json, model_name, method, task) -> None:
    """Every bad row with its line and reason, label distributions, duplicates, overlap between files."""
    from orchestrator.data.pipeline import check
    from orchestrator.models import resolve_model
    from orchestrator.render import render_run

    catalog = _catalog()
    task_obj = catalog.task(task)
    cutoff = None
    if model_name:
        catalog.check_model(model_name)
        values = render_run(catalog, model_name, method, task_obj, stages=("sft",))["sft"].values
        resolved = resolve_model(catalog.project, str(values["model_name_or_path"]))
        if resolved.path is None:
            raise OrchError(
                f"{model_name}'s tokenizer is not available here", fix=resolved.download_hint(catalog.project)
            )
        cutoff = (resolved.path, str(values["template"]), int(values.get("cutoff_len", 2048)))
    report = check(task_obj, list(files), cutoff)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for path, info in report["files"].items():
            click.echo(
                f"{path}: {info['rows']} rows, {len(info['problems'])} bad, {info['duplicate_inputs']} duplicate inputs"
            )
            for problem in info["problems"][:50]:
                click.echo(f"  {problem['where']}: {problem['message']}")
            for name, dist in info["labels"].items():
                click.echo(f"  {name}: {dist}")
        for pair, shared in report["overlap"].items():
            click.echo(f"OVERLAP {pair}: {shared} shared inputs")
    sys.exit(0 if report["ok"] else 1)


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


@contextlib.contextmanager
def _progress(label: str):
    """A progress bar on stderr; yields a `progress(done, total)` callback."""
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        yield progress


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def main() -> None:
    """Console entry point."""
    cli()


if __name__ == "__main__":
    main()
