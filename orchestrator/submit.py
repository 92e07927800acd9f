"""`orch submit`: render, validate, decide resume/restart, write the job, hand it to an executor.

Everything that can be refused is decided for every model before anything is
submitted, so a bad model in a list submits nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator import inputs, stagejob, stages
from orchestrator.catalog import Catalog
from orchestrator.errors import OrchError
from orchestrator.executors import JobSpec, get_executor
from orchestrator.fileio import sha256_file, write_json_atomic, write_text_atomic
from orchestrator.inputs import InputError
from orchestrator.layout import GGUF_MANIFEST
from orchestrator.locks import LOCK_NAME, run_locks
from orchestrator.models import resolve_model
from orchestrator.outputs import ADAPTER_WEIGHTS, OutputState, adapter_weights, output_status
from orchestrator.render import DATASET_INFO, render_run
from orchestrator.resources import check_resources
from orchestrator.runs import (
    ORCH_CONFIG,
    Run,
    code_version,
    dataset_files,
    last_submission,
    move_aside,
    record_event,
    sha256_text,
)
from orchestrator.secrets import job_env, redact_text, split_sets
from orchestrator.stages import Event
from orchestrator.task import Task
from orchestrator.templating import render, shell_env
from orchestrator.validation import Severity, validate_run
from orchestrator.validation.context import Context

RESOURCE_KEYS = (
    "partition",
    "nodes",
    "gpus_per_node",
    "processes_per_node",
    "cpus_per_task",
    "mem",
    "time",
    "signal_seconds",
    "max_requeues",
)


@dataclass
class Plan:
    """One job to submit (or a reason it is skipped)."""

    run: Run
    values: dict[str, Any]
    text: str
    slurm: dict[str, Any]
    action: str  # "fresh", "resume", "restart", "skip"
    note: str = ""
    job_id: str | None = None
    job_dir: Path | None = None
    moved_to: str | None = None
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # `--set` credentials: the job's env only


@dataclass
class SubmitOptions:
    method: str = "lora"
    executor: str = "local"
    task: str | None = None
    sets: tuple[str, ...] = ()
    restart: bool = False
    then: tuple[str, ...] = ()
    dry_run: bool = False
    allow_config_change: bool = False
    resources: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    own_sets: dict[str, dict[str, str]] = field(default_factory=dict)  # `--set gguf.key=...`: orch's own stages
    asked: tuple[str, ...] = ()  # the stages `--then` named (the chain may add what they read: dpo's pairs)


def submit(catalog: Catalog, models: list[str], opts: SubmitOptions, log: Callable[[str], None] = print) -> list[Plan]:
    """Plan every job of every model, refuse on any problem, then submit them in order."""
    project = catalog.project
    job_catalog = Catalog(project, saves=project.saves_setting)
    task = job_catalog.task(opts.task)
    executor = get_executor(opts.executor, project.jobs)
    bad = [s for s in opts.then if s not in stages.CHAINABLE]
    if bad:
        raise OrchError(f"--then {','.join(bad)}: unknown stage", fix=f"use --then {','.join(stages.CHAINABLE)}")
    lf_sets, own_sets = stagejob.split_sets(tuple(opts.sets))
    wanted = set(opts.then) | {stages.get(s).after for s in opts.then if stages.data_maker(s)}  # dpo: its pairs
    chain = tuple(s for s in stages.CHAINABLE if s in wanted)  # the table's order: pairs, dpo, ..., gguf, eval
    stray = sorted(set(own_sets) - set(chain))
    if stray:
        raise OrchError(f"--set {stray[0]}.…: the {stray[0]} stage is not in this chain", fix=f"add --then {stray[0]}")
    opts = dataclasses.replace(opts, sets=lf_sets, then=chain, own_sets=own_sets, asked=tuple(opts.then))
    runs = [
        job_catalog.layout.run(model, opts.method, stage, task.name)
        for model in models
        for stage in (stages.TRAINING, *chain)
    ]
    locks = {} if opts.dry_run else {job_catalog.layout.job_root(run) / LOCK_NAME: run.name for run in runs}
    with run_locks(locks):
        return _plan_and_submit(job_catalog, executor, runs, task, opts, log)


def _plan_and_submit(
    job_catalog: Catalog, executor: Any, runs: list[Run], task: Task, opts: SubmitOptions, log: Callable[[str], None]
) -> list[Plan]:
    ctx = Context([job_catalog.task(name) for name in job_catalog.task_names()])
    plans: list[Plan] = []
    for run in runs:
        if run.stage == stages.TRAINING:
            log(f"{run.model}: rendering and validating ...")
        earlier = {p.run.stage: p for p in plans if p.run.model == run.model}
        plans.append(_plan(job_catalog, executor, run, task, opts, ctx, earlier))
    if opts.dry_run:
        for plan in plans:
            log(f"--- {plan.run.name}: {plan.action} {plan.note}\n{plan.text}")
        return plans
    by_model: dict[str, dict[str, Plan]] = {}
    for plan in plans:
        by_model.setdefault(plan.run.model, {})[plan.run.stage] = plan
        if plan.action == "skip":
            log(f"{plan.run.name}: {plan.note}")
            continue
        depends = _depends_on(plan.run.stage, by_model[plan.run.model])
        _execute(job_catalog, executor, plan, depends, opts)
        log(
            f"{plan.run.name}: submitted as {opts.executor} job {plan.job_id} ({plan.action}{plan.note and ': '}"
            f"{plan.note}); logs: orch logs {plan.run.name}"
        )
    return plans


def _depends_on(stage_name: str, earlier: dict[str, Plan]) -> tuple[str, ...]:
    """The jobs a stage's job waits for (afterok): the one whose output it reads, or every earlier one."""
    stage = stages.get(stage_name)
    if stage_name == stages.TRAINING:
        return ()
    if stage.after is None:
        parents = [p for name, p in earlier.items() if name != stage_name]
    else:  # the stage it reads, or, where that one is not in the chain (or skipped), the one that stage reads, ...
        after: str | None = stage.after
        while after is not None and (after not in earlier or not earlier[after].job_id):
            after = stages.get(after).after
        parents = [earlier[after]] if after is not None else []
    return tuple(p.job_id for p in parents if p is not None and p.job_id)


def _plan(
    catalog: Catalog, executor, run: Run, task, opts: SubmitOptions, ctx: Context, earlier: dict[str, Plan]
) -> Plan:
    if stages.get(run.stage).runner == stages.ORCH:
        return _plan_own(catalog, executor, run, task, opts, earlier)
    project = catalog.project
    sets, secret_sets = split_sets(tuple(opts.sets))
    rendered = render_run(catalog, run.model, opts.method, task, sets, stages=(run.stage,))[run.stage]
    resolved = resolve_model(project, str(rendered.values.get("model_name_or_path", "")))
    if resolved.path is not None and resolved.path != project.resolve(str(rendered.values["model_name_or_path"])):
        sets += (f"{run.stage}.model_name_or_path={resolved.path}",)
    pending = _pending_data(catalog, run, task, rendered.values, earlier)
    report = validate_run(catalog, run.model, opts.method, task, sets + pending, (run.stage,), ctx)
    problems = [p for ps in report.problems.values() for p in ps]
    problems += _executor_problems(opts.executor, rendered.values, rendered.path.name)
    errors = [p for p in problems if p.severity is Severity.ERROR and p.rule != "output-dir"]
    if errors:
        raise OrchError(
            f"{run.name}: the config fails validation; nothing was submitted\n"
            + "\n".join("  " + p.render().replace("\n", "\n  ") for p in errors)
        )
    config = render_run(catalog, run.model, opts.method, task, sets, stages=(run.stage,))[run.stage]
    settings = catalog.settings(run.model, opts.method, task)
    given = {k: v for k, v in opts.resources.items() if v is not None}
    slurm = {**settings.get("orch", {}).get("slurm", {}), **given}
    slurm = check_resources(slurm, set(given))
    # Rendered once now, so a value no job script can take stops the plan before anything is moved aside.
    render_job_script(catalog, run, catalog.layout.job_root(run) / "planned", catalog.layout.job_root(run), slurm)
    plan = Plan(run, config.values, config.text, slurm, "fresh", secrets=job_env(secret_sets, run.stage))
    _check_not_active(project, executor, run)
    out = project.resolve(str(config.values[stages.get(run.stage).output_key]))
    _decide_output(catalog, plan, opts, _stale_inputs(catalog, run, out, earlier))
    if plan.action == "restart":
        _check_readers_idle(project, run)
    return plan


def _pending_data(
    catalog: Catalog, run: Run, task: Task, values: dict[str, Any], earlier: dict[str, Plan]
) -> tuple[str, ...]:
    """A stage whose data an earlier job of this chain (re)writes (dpo: the pairs) is validated as before that
    data exists: what is on disk now is about to be replaced, and the job that writes it checks it. Only when
    it reads that data: the chain's folder, and the dataset the pairs stage declares there."""
    from orchestrator.preference import pairs_dataset

    maker = stages.data_maker(run.stage)
    if maker is None or maker not in earlier or earlier[maker].action == "skip":
        return ()
    folder = catalog.layout.preference_dir(run.sibling(stages.TRAINING))
    if catalog.project.resolve(str(values.get("dataset_dir", ""))).resolve() != folder.resolve():
        return ()  # the user's own data: validated as it is
    if str(values.get("dataset", "")).strip() != pairs_dataset(task):
        raise OrchError(
            f"{run.name}: dataset {values.get('dataset')!r} is not what the {maker} stage writes into "
            f"{catalog.project.relative(folder)}",
            fix=f"--set {run.stage}.dataset={pairs_dataset(task)} (or your own dataset_dir)",
        )
    # The same folder name under a folder that does not exist: "not written yet", as before the first pairs.
    pending = folder.parent.parent / "(written by this chain)" / folder.parent.name / folder.name
    return (f"{run.stage}.dataset_dir={pending}",)


def _stale_inputs(catalog: Catalog, run: Run, out: Path, earlier: dict[str, Plan]) -> str | None:
    """Why a training stage that starts from another's output (dpo: the SFT adapter and its pairs) must start
    over: its inputs are rebuilt by this submission, or are newer than its own outputs (None: they are not)."""
    stage = stages.get(run.stage)
    if run.stage == stages.TRAINING or not stage.trains:
        return None
    rebuilt = [name for name in (stage.after, stages.TRAINING) if name in earlier and earlier[name].action != "skip"]
    if rebuilt:
        return f"its inputs are rebuilt by this submission ({', '.join(rebuilt)})"
    started = out / ORCH_CONFIG
    sft = run.sibling(stages.TRAINING)
    inputs_now = [catalog.layout.output_dir(sft) / ADAPTER_WEIGHTS, catalog.layout.preference_pairs(sft, "train")]
    if started.is_file() and any(p.is_file() and p.stat().st_mtime > started.stat().st_mtime for p in inputs_now):
        return "its SFT adapter or pairs changed after it started"
    return None


def _check_readers_idle(project, run: Run) -> None:
    """Nothing that reads a run's output is running while that output is moved aside (a dpo job reading sft)."""
    for reader in (run.sibling(name) for name in stages.TABLE if name != run.stage):
        check_idle(project, reader, f"{run.name} would be moved aside while {reader.name} may read it")


def _plan_own(catalog: Catalog, executor, run: Run, task, opts: SubmitOptions, earlier: dict[str, Plan]) -> Plan:
    """A job of one of orch's own stages (pairs, gguf, eval): its settings checked, its config written by orch."""
    project, layout = catalog.project, catalog.layout
    settings = catalog.settings(run.model, opts.method, task)
    own = settings.get("orch", {})
    values: dict[str, Any] = {"stage": run.stage, "run": run.name, "task": task.name}
    values.update(stagejob.settings(run.stage, opts.then, own.get(run.stage), opts.own_sets.get(run.stage, {}), task))
    if run.stage == stages.GGUF.name:
        values["source"] = _export_dir(catalog, run, task, opts)
        values["output_dir"] = layout.output_setting(run)
        _check_convertible(catalog, run, settings)
    else:
        values["output_dir"] = layout.output_setting(run.sibling(stages.TRAINING))
    _check_inputs(catalog, run, task, opts, values, earlier)
    reuse = _reusable_pairs(catalog, run, values, opts, earlier) if run.stage == stages.PAIRS.name else None
    values["command"] = redact_text(opts.command)  # the job's config is a file: never a credential in it
    text = f"# orch's own {run.stage} stage (python -m orchestrator.stagejob), written by orch submit.\n"
    text += yaml.safe_dump(values, sort_keys=False, allow_unicode=True)
    given = {k: v for k, v in opts.resources.items() if v is not None}
    slurm = check_resources({**own.get("slurm", {}), **given}, set(given))
    render_job_script(catalog, run, layout.job_root(run) / "planned", layout.job_root(run), slurm)
    plan = Plan(run, values, text, slurm, "fresh")
    if reuse:
        plan.action, plan.note = "skip", reuse
        return plan
    _check_not_active(project, executor, run)
    if run.stage == stages.PAIRS.name:
        check_idle(project, run.sibling(stages.DPO.name), f"{run.name} would rewrite the pairs it trains on")
    if stages.get(run.stage).folder:
        _decide_output(catalog, plan, opts)
    return plan


def _reusable_pairs(
    catalog: Catalog, run: Run, values: dict[str, Any], opts: SubmitOptions, earlier: dict[str, Plan]
) -> str | None:
    """Why the pairs on disk serve this chain's dpo stage as they are (None: build them).

    They do unless `--then pairs` asks for them, the SFT run is trained in this submission, they are older
    than its adapter (pairs are the SFT model's mistakes: a retrained model needs new ones), or they were
    built with other settings than this chain's.
    """
    from orchestrator.preference import SETTINGS, stats_path

    training = earlier.get(stages.TRAINING)
    if stages.PAIRS.name in opts.asked or training is None or training.action != "skip":
        return None
    sft = run.sibling(stages.TRAINING)
    pairs = catalog.layout.preference_pairs(sft, "train")
    adapter = adapter_weights(catalog.layout.output_dir(sft))
    if adapter is None or not all(p.is_file() for p in (pairs, stats_path(pairs), pairs.parent / DATASET_INFO)):
        return None
    if pairs.stat().st_mtime < adapter.stat().st_mtime:
        return None
    try:
        built = inputs.read_json(stats_path(pairs))
    except InputError:
        return None
    if not isinstance(built, dict) or any(built.get(key) != values.get(key) for key in SETTINGS):
        return None
    if built.get("pairs_sha256") != sha256_file(pairs):  # stats of another pairs file (a build cut off midway)
        return None
    return f"pairs of the finished SFT run reused from {catalog.project.relative(pairs)}; --then pairs rebuilds them"


def _check_convertible(catalog: Catalog, run: Run, settings: dict[str, Any]) -> None:
    """llama.cpp's converter knows the model's architecture: its config.json's where the weights are here,
    else the family's `orch.architecture`."""
    from orchestrator import llamacpp

    resolved = resolve_model(catalog.project, str(settings.get("model_name_or_path", "")))
    architectures: list[str] = []
    if resolved.path is not None and (resolved.path / "config.json").is_file():
        config = inputs.read_json(resolved.path / "config.json")
        architectures = [str(a) for a in (config.get("architectures") or [])] if isinstance(config, dict) else []
    declared = settings.get("orch", {}).get("architecture")
    where = f"{run.name} ({'config.json' if architectures else 'orch.architecture of its family'})"
    for architecture in architectures or ([str(declared)] if declared else []):
        llamacpp.check_architecture(architecture, where)


def _check_inputs(
    catalog: Catalog, run: Run, task, opts: SubmitOptions, values: dict[str, Any], earlier: dict[str, Plan]
) -> None:
    """What an orch stage reads is made by this chain, or is on disk and not older than a training run
    this submission starts: refused here, not after the queue."""
    project, layout, chain = catalog.project, catalog.layout, opts.then
    needs = {stages.GGUF.name: [stages.EXPORT.name]}.get(run.stage, [])
    markers = {stages.GGUF.name: GGUF_MANIFEST, stages.DPO.name: ADAPTER_WEIGHTS}
    if run.stage == stages.EVAL.name:
        needs = [s for s, subject in stagejob.SUBJECT_OF_STAGE.items() if subject in values["subjects"]]
    training = earlier.get(stages.TRAINING)
    for stage in needs:
        if stage in chain:
            continue
        fix = f"add it: --then {','.join(s for s in stages.CHAINABLE if s in {*chain, stage})}"
        if stage == stages.EXPORT.name:
            folder, marker = project.resolve(_export_dir(catalog, run, task, opts)), "config.json"
        else:
            folder, marker = layout.output_dir(run.sibling(stage)), markers[stage]
        if stage == stages.DPO.name and (folder / marker).is_file():
            sft = layout.output_dir(run.sibling(stages.TRAINING)) / marker
            if sft.is_file() and sft.stat().st_mtime > (folder / marker).stat().st_mtime:
                raise OrchError(
                    f"{run.name} would score the DPO adapter in {project.relative(folder)}, trained on an SFT "
                    "adapter that was trained again since",
                    fix=fix,
                )
        if not (folder / marker).is_file():
            raise OrchError(
                f"{run.name} reads the {stage} stage's output, which is neither in this chain nor in "
                f"{project.relative(folder)}",
                fix=fix,
            )
        if training is not None and training.action != "skip":
            raise OrchError(
                f"{run.name} would read the {stage} stage's output in {project.relative(folder)}, made from the "
                f"adapter this submission trains anew ({training.action})",
                fix=fix,
            )


def _export_dir(catalog: Catalog, run: Run, task, opts: SubmitOptions) -> str:
    """Where the export stage writes the merged model, as its rendered config says (overrides included)."""
    sets, _ = split_sets(tuple(opts.sets))
    rendered = render_run(catalog, run.model, opts.method, task, sets, stages=(stages.EXPORT.name,))
    return str(rendered[stages.EXPORT.name].values[stages.EXPORT.output_key])


def _executor_problems(executor: str, values: dict[str, Any], source: str):
    """Hardware that the chosen executor cannot give: refused here, not hours later."""
    from orchestrator.validation.problems import Problem
    from orchestrator.validation.rules import _has_cuda

    if executor != "local" or _has_cuda():
        return []
    out = []
    for key in ("bf16", "fp16", "quantization_bit"):
        if values.get(key):
            out.append(
                Problem(
                    Severity.ERROR,
                    "hardware",
                    f"{source}: {key}",
                    f"{key} needs a CUDA GPU and the local executor runs on this machine, which has none",
                    f"--set {key}=false for a CPU run, or --executor slurm"
                    if key != "quantization_bit"
                    else "use --method lora on CPU",
                )
            )
    return out


def _check_not_active(project, executor, run: Run) -> None:
    """The run's last job, on whichever executor it went to, has ended."""
    check_idle(project, run, "not submitted twice")


def check_idle(project, run: Run, why: str) -> None:
    """Refuse (`why`) while the run's last job, on whichever executor it went to, is pending or running."""
    last = last_submission(project, run)
    if last is None:
        return
    state = get_executor(str(last["executor"]), project.jobs).status(str(last["job_id"]))
    if state.active:
        raise OrchError(
            f"{run.name} already has {state.state.lower()} job {last['job_id']}: {why}",
            fix=f"wait for it (orch status {run.name}) or cancel it (orch cancel {run.name})",
        )


def _decide_output(catalog: Catalog, plan: Plan, opts: SubmitOptions, stale: str | None = None) -> None:
    project = catalog.project
    out = project.resolve(str(plan.values[stages.get(plan.run.stage).output_key]))
    if out.exists() and not out.is_dir():
        raise OrchError(
            f"{plan.run.name}: output folder {project.relative(out)} is a file",
            fix="give output_dir a folder (or leave it to the run layout)",
        )
    others = [s for s in stages.TABLE.values() if s.folder and s.name != plan.run.stage]
    mine = out.resolve()
    folders = {s.name: catalog.layout.output_dir(plan.run.sibling(s.name)).resolve() for s in others}
    taken = next((name for name, other in folders.items() if mine == other or other in mine.parents), None)
    if taken:
        raise OrchError(
            f"{plan.run.name}: its output folder {project.relative(out)} is (inside) the {taken} stage's",
            fix=f"drop the {stages.get(plan.run.stage).output_key} override: each stage writes to its own folder",
        )
    if not stages.get(plan.run.stage).trains:
        if out.exists() and any(out.iterdir()):
            _check_owned(catalog, plan.run, out)
            plan.action, plan.note = "restart", "earlier outputs will be moved aside"
        return
    status = output_status(out)
    if (opts.restart or stale) and out.exists():
        _check_owned(catalog, plan.run, out)
        plan.action, plan.note = "restart", f"{stale + ': ' if stale else ''}old outputs will be moved aside"
        return
    if status.state is OutputState.FINISHED:
        plan.action, plan.note = "skip", f"already finished in {project.relative(out)}; --restart trains again"
        return
    if status.state is OutputState.BLOCKED:
        raise OrchError(
            f"{plan.run.name}: {project.relative(out)} holds weights but no checkpoint",
            fix="--restart moves it aside and starts fresh",
        )
    if status.state is OutputState.RESUMABLE:
        plan.action, plan.note = "resume", f"from {status.latest_checkpoint.name}"
        _check_config_unchanged(project, plan, out, opts.allow_config_change)


def _check_owned(catalog: Catalog, run: Run, out: Path) -> None:
    """Outputs are moved aside only from the run's own folder in the run layout, never from anywhere else."""
    if not catalog.layout.owns(out, run):
        raise OrchError(
            f"{run.name}: {catalog.project.relative(out)} is not this run's folder "
            f"({catalog.layout.output_setting(run)}); orch moves aside only its own run folders",
            fix="move it yourself, or drop the output_dir override so the run writes to its own folder",
        )


def _check_config_unchanged(project, plan: Plan, out: Path, allow: bool) -> None:
    previous = out / ORCH_CONFIG
    if not previous.is_file():
        return
    try:
        stored = inputs.read_yaml(previous)
    except InputError as exc:
        stored = exc
    if not isinstance(stored, dict):
        raise OrchError(
            f"{plan.run.name}: {project.relative(previous)} (the config its checkpoints come from) is unreadable",
            fix="restore it, or `--restart` to train afresh (the old outputs are moved aside)",
        )
    old, new = _comparable(stored), _comparable(plan.values)
    if old == new:
        return
    diff = "".join(
        difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), f"{project.relative(previous)} (checkpoint)", "now"
        )
    )
    if not allow:
        raise OrchError(
            f"{plan.run.name}: the config changed since its checkpoints were written:\n{diff}",
            fix="--allow-config-change resumes anyway; --restart starts fresh (old outputs kept)",
        )
    plan.note += " (config changed, allowed)"


def _comparable(values: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {k: v for k, v in values.items() if k != "resume_from_checkpoint"}, sort_keys=True, allow_unicode=True
    )


def _execute(catalog: Catalog, executor, plan: Plan, depends: tuple[str, ...], opts: SubmitOptions) -> None:
    project = catalog.project
    run = plan.run
    stage = stages.get(run.stage)
    out = project.resolve(str(plan.values[stage.output_key]))
    if plan.action == "restart" and out.exists():
        moved = move_aside(out)
        plan.moved_to = project.relative(moved)
        record_event(
            project,
            run,
            Event.RESTARTED,
            moved_to=plan.moved_to,
            output_dir=project.relative(out),
            command=opts.command,
            message="old outputs moved aside; training starts from scratch"
            if stage.trains
            else "earlier outputs moved aside",
        )
    job_dir = catalog.layout.new_job_dir(run)
    config = job_dir / "config.yaml"
    write_text_atomic(config, plan.text)
    log = job_dir / "job.log"
    job = {
        "root": str(project.root),
        "model": run.model,
        "method": run.method,
        "stage": run.stage,
        "task": run.task,
        "output_dir": str(plan.values[stage.output_key]),
        "executor": executor.name,
        "log": project.relative(log),
    }
    write_json_atomic(job_dir / "job.json", job)
    script = job_dir / "job.sh"
    write_text_atomic(script, render_job_script(catalog, run, job_dir, log, plan.slurm))
    spec = JobSpec(
        name=f"orch-{run.slug}", script=script, log=log, job_dir=job_dir, depends_on=depends, env=plan.secrets
    )
    plan.job_id = executor.submit(spec)
    plan.job_dir = job_dir
    data = dataset_files(project, plan.values, run.stage)
    record_event(
        project,
        run,
        Event.SUBMITTED,
        executor=executor.name,
        job_id=plan.job_id,
        command=opts.command,
        git_commit=code_version(project.root),
        config=project.relative(config),
        config_sha256=sha256_text(plan.text),
        dataset=", ".join(project.relative(p) for p in data) or None,
        dataset_sha256=",".join(sha256_file(p)[:16] for p in data) or None,
        output_dir=job["output_dir"],
        job_dir=project.relative(job_dir),
        log=job["log"],
        depends_on=list(depends) or None,
        action=plan.action,
        message=f"{plan.action}{': ' + plan.note if plan.note else ''}",
    )


def render_job_script(
    catalog: Catalog,
    run: Run,
    job_dir: Path,
    log: Path,
    slurm: dict[str, Any],
    python: str | None = None,
    root: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """The job script for a run (SLURM directives + the local body)."""
    root = root or catalog.project.root
    slurm = check_resources(slurm)
    python = python or sys.executable
    context = {
        "job": {
            "name": f"orch-{run.slug}",
            "run": run.name,
            "stage": run.stage,
            "dir": str(job_dir),
            "log": str(log),
            "master_port": 29500 + random.Random(run.name).randrange(1000),
        },
        "slurm": {k: slurm.get(k) for k in RESOURCE_KEYS},
        "paths": {"root": str(root), "python": python, "bin": str(Path(python).parent)},
        "env": env if env is not None else _job_env(catalog),
    }
    return render(shell_env(catalog.project.templates), "jobs/job.sh.j2", context)


def _job_env(catalog: Catalog) -> dict[str, str]:
    """Settings a job must see as the submitting shell does (never secrets)."""
    keys = ("ORCH_MODEL_CACHE", "ORCH_SAVES", "HF_HOME")
    return {k: os.environ[k] for k in keys if os.environ.get(k)}
