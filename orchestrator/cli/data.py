"""`orch data ...`: the data pipeline, raw corpora to the task's SFT dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from orchestrator.cli import Group
from orchestrator.cli.common import catalog, task_option
from orchestrator.cli.ui import progress
from orchestrator.errors import OrchError


@click.group(cls=Group)
def data() -> None:
    """The data pipeline: raw corpora to the task's SFT dataset."""


@data.command("normalize")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="unified.jsonl to write.")
@click.option("--format", "fmt", default=None, help="Force one format (default: detected per file).")
@click.option("--encoding", default=None, help="The files' encoding (default: UTF-8, else GB18030/GBK, BOMs stripped).")
def data_normalize(sources, out, fmt, encoding) -> None:
    """Raw corpora -> one unified, cleaned, anonymised, deduplicated dialogue file (+ stats.json)."""
    from orchestrator.data.pipeline import normalize

    summary = normalize(list(sources), out, fmt, progress=lambda m: click.echo(m, err=True), encoding=encoding)
    unknown = summary["unknown_labels"]
    if unknown["count"]:
        click.echo(
            f"warning: {unknown['count']} line(s) start with a speaker label orch does not know; "
            "kept in the turn before them:",
            err=True,
        )
        for where in unknown["where"][:5]:
            click.echo(f"  {where}", err=True)
    left_out = summary["unattributed_text"]
    if left_out["count"]:
        click.echo(f"warning: {left_out['count']} text block(s) had no speaker label and were left out:", err=True)
        for where in left_out["where"][:5]:
            click.echo(f"  {where}", err=True)
    if summary["skipped_files"]:
        shown = ", ".join(summary["skipped_files"][:5])
        click.echo(f"warning: {len(summary['skipped_files'])} file(s) are not corpus files, skipped: {shown}", err=True)
    click.echo(
        f"{summary['dialogues']} dialogues -> {out}; encodings {summary['encodings']}; "
        f"dropped {summary['dropped_dialogues']}; anonymized {summary['anonymized']}; "
        f"stats: {out.with_name('stats.json')}"
    )


@data.command("select")
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--min-assistant-chars", type=int, default=None)
@click.option("--max-chars", type=int, default=None)
@click.option("--max-turns", type=int, default=None)
@click.option("--max-windows", type=int, default=None, help="Cut long dialogues into up to N windows (default 1).")
@click.option("--all-topics", is_flag=True, help="Keep every topic: ignore the task's topics and keywords filter.")
@task_option
def data_select(source, out, min_assistant_chars, max_chars, max_turns, max_windows, all_topics, task) -> None:
    """The scenario subset (filters from the task file's `data.select`), tail-truncated."""
    from orchestrator.data.pipeline import check_select_settings, select

    task_obj = catalog().task(task)
    data_settings = task_obj.raw.get("data") or {}
    config = data_settings.get("select") if isinstance(data_settings, dict) else data_settings
    if not isinstance(config or {}, dict):
        raise OrchError("`data.select` must be a mapping of settings", where=str(task_obj.path))
    config = dict(config or {})
    check_select_settings(config, str(task_obj.path))
    overrides = {
        "min_assistant_chars": min_assistant_chars,
        "max_chars": max_chars,
        "max_turns": max_turns,
        "max_windows": max_windows,
    }
    config.update({k: v for k, v in overrides.items() if v is not None})
    if all_topics:
        config.update({"topics": [], "keywords": []})
    check_select_settings(config, "the command line")
    summary = select(source, out, config)
    click.echo(
        f"{summary['dialogues']} row(s) from {summary['source_dialogues']} of {summary['input']} dialogues -> "
        f"{out}; dropped {summary['dropped']}; truncated {summary['truncated']}"
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
    """Add the labels: a teacher model (cached, resumable) or the task's rules labeler."""
    from orchestrator.data.label import Teacher, label_with_rules, label_with_teacher

    task_obj = catalog().task(task)
    if labeler == "rules":
        summary = label_with_rules(task_obj, source, out)
    else:
        if not endpoint or not teacher_model:
            raise OrchError("a teacher needs --endpoint and --model", fix="or use --labeler rules")
        with progress("labeling") as update:
            summary = label_with_teacher(
                task_obj,
                source,
                out,
                Teacher(endpoint, teacher_model, api_key_env),
                concurrency=concurrency,
                rate=rate,
                retries=retries,
                progress=update,
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
@click.option(
    "--oversample",
    type=float,
    default=None,
    help="Repeat train's at-risk rows up to this share of train (default: the task's data.prepare.oversample_risk).",
)
@task_option
def data_prepare(labeled, split_spec, oversample, task) -> None:
    """Write the task's SFT files with deterministic stratified splits; update dataset_info.json."""
    from orchestrator.data.pipeline import check_share, prepare, split_fractions
    from orchestrator.render import render_dataset_info, write_files

    cat = catalog()
    task_obj = cat.task(task)
    if oversample is not None:
        check_share(task_obj, oversample, "the command line", "--oversample")
    counts = prepare(task_obj, labeled, split_fractions(task_obj, split_spec), cat.project.root, oversample)
    write_files({cat.project.configs / "dataset_info.json": render_dataset_info(cat)})
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
    from orchestrator.data.pipeline import check, model_cutoff

    cat = catalog()
    task_obj = cat.task(task)
    cutoff = model_cutoff(cat, model_name, method, task_obj) if model_name else None
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
            click.echo(f"OVERLAP {pair}: {shared} rows share an input or id")
    sys.exit(0 if report["ok"] else 1)
