"""The run layout: a run's identity and every folder it owns on disk. The only place paths are built.

A run is model/method/stage/task. Its folders:

    <saves>/<model>/<method>/<folder>            the project's default task (today's paths, kept)
    <saves>/<model>/<method>/<folder>@<task>     any other task: never shares a folder with another task
    <output>/eval/<split>/<decoding>[-base]/      what `orch eval` wrote (adapter, or the untrained base)
    <output>/eval/checkpoints/<checkpoint>/<split>/<decoding>/  a checkpoint's adapter scored (learning curve)
    <output>/eval/checkpoints/learning-curve-<split>.{md,json}  the learning curve over the checkpoints
    <output>/preference/pairs-<split>.{jsonl,stats.json}  DPO pairs from the run's own mistakes
    <output>/preference/dataset_info.json         declares them (ranking) for the dpo config's dataset_dir
    <saves>/_baselines/<task>/eval/<split>/<kind>/ the model-free baselines (majority, rules)
    jobs/<model>_<method>_<stage>[_<task>]/<time>/ job script, job config, log
    reports/ (default task), reports/<task>/       the comparison and the HTML report

`<folder>` comes from the stage table (sft, dpo, predict, merged, gguf; the pairs
stage writes into the SFT run's `preference/`, the eval stage into the folders of
the models it scores). `<saves>` is
`$ORCH_SAVES` (default `saves`, relative to the project root). Every
metrics.json orch writes names its task, run and subject, so a comparison
never mixes tasks; metrics written before they carried a task are read as the
default task's (they could only be).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import inputs, stages
from orchestrator.errors import OrchError
from orchestrator.inputs import InputError
from orchestrator.project import Project
from orchestrator.task import TASK_NAME

BASELINES = "_baselines"  # model names may not start with "_", so this never meets a model's folder
TASK_SEP = "@"
EVAL = "eval"
CHECKPOINT_EVALS = "checkpoints"  # eval/checkpoints/checkpoint-N/...: never a split's eval/<split>/<decoding>
LF_PREDICT_EVAL = "eval-llamafactory"
PREFERENCE = "preference"  # <training output>/preference/pairs-<split>.jsonl: DPO pairs built from the run
# Subjects of an evaluation: what was scored.
ADAPTER, BASE, MERGED, RULES, MAJORITY, LF_PREDICT = "adapter", "base", "merged", "rules", "majority", "llamafactory"
GGUF = "gguf"  # the gguf stage's quantized model, scored through llama.cpp
GGUF_MANIFEST = "gguf.json"  # in the gguf stage's folder: which files it wrote, from what (deploy.py writes it)
BASELINE_KINDS = (MAJORITY, RULES)


@dataclass(frozen=True)
class Run:
    """One unit of work: a stage of a model under a method, for a task (None: the project's default task)."""

    model: str
    method: str
    stage: str
    task: str | None = None

    @property
    def name(self) -> str:
        base = f"{self.model}/{self.method}/{self.stage}"
        return f"{base}{TASK_SEP}{self.task}" if self.task else base

    @property
    def slug(self) -> str:
        return self.name.replace("/", "_").replace(TASK_SEP, "_")

    def sibling(self, stage: str) -> Run:
        """The same model, method and task at another stage."""
        return Run(self.model, self.method, stage, self.task)

    def trained(self) -> Run:
        """The training run a run names: itself for a training stage (sft, dpo), else the SFT run."""
        return self if stages.get(self.stage).trains else self.sibling(stages.TRAINING)

    @classmethod
    def parse(cls, name: str) -> Run:
        """`model/method[/stage][@task]` (stage defaults to sft)."""
        base, sep, task = name.partition(TASK_SEP)
        if sep and not TASK_NAME.match(task):
            raise OrchError(f"bad run name {name!r}: {task!r} is not a task name", fix="write MODEL/METHOD@TASK")
        parts = base.split("/")
        if len(parts) == 2:
            parts.append(stages.TRAINING)
        if len(parts) != 3 or not all(parts):
            raise OrchError(f"bad run name {name!r}", fix="write MODEL/METHOD[/STAGE][@TASK], e.g. qwen3-1p7b/lora/sft")
        stages.get(parts[2])
        return cls(parts[0], parts[1], parts[2], task or None)


class Layout:
    """Where a project's runs, evaluations, baselines, jobs and reports live."""

    def __init__(self, project: Project, saves: str | None = None):
        self.project = project
        self.saves = saves if saves is not None else project.saves_setting

    # --- identity ----------------------------------------------------------
    def run(self, model: str, method: str, stage: str, task: str | None = None) -> Run:
        """A run with its task normalised (the default task is None, so its paths stay as they were)."""
        stages.get(stage)
        return Run(model, method, stage, None if task in (None, self.project.default_task) else task)

    def parse_run(self, name: str, task: str | None = None) -> Run:
        """A run named on the command line, for `task` (--task) unless the name carries its own `@task`."""
        run = Run.parse(name)
        if run.task and task and self.run(run.model, run.method, run.stage, task).task != run.task:
            raise OrchError(f"{name} names task {run.task!r} but --task says {task!r}", fix="give the task once")
        return self.run(run.model, run.method, run.stage, run.task or task)

    def task_of(self, run: Run) -> str:
        """The task name a run belongs to."""
        return run.task or self.project.default_task

    # --- run folders -------------------------------------------------------
    def output_setting(self, run: Run) -> str:
        """The output folder as a config writes it (relative to the root unless $ORCH_SAVES is absolute)."""
        folder = stages.get(run.stage).folder
        if not folder:
            raise OrchError(f"stage {run.stage} has no output folder of its own", fix="name the run's training stage")
        if run.task:
            folder += TASK_SEP + run.task
        return f"{self.saves.rstrip('/')}/{run.model}/{run.method}/{folder}"

    def output_dir(self, run: Run) -> Path:
        """A run's output folder (absolute)."""
        return self.project.resolve(self.output_setting(run))

    def stage_outputs(self, model: str, method: str, task: str | None) -> dict[str, str]:
        """Every stage's output folder as configs write it, by stage folder name (what templates see)."""
        run = self.run(model, method, stages.TRAINING, task)
        out = {s.folder: self.output_setting(run.sibling(s.name)) for s in stages.TABLE.values() if s.folder}
        return {**out, PREFERENCE: f"{out[stages.SFT.folder]}/{PREFERENCE}"}

    @property
    def saves_root(self) -> Path:
        return self.project.resolve(self.saves)

    def owns(self, path: Path, run: Run) -> bool:
        """Whether `path` is the run's own output folder under the saves root (the only folder orch moves aside)."""
        return path.resolve() == self.output_dir(run).resolve()

    # --- evaluations -------------------------------------------------------
    @staticmethod
    def scored_stage(subject: str, stage: str = stages.TRAINING) -> str:
        """The stage whose output folder holds the model a subject of a run's `stage` is (merged: export; gguf:
        gguf; an adapter: the run's training stage, sft or dpo)."""
        trained = stage if stages.get(stage).trains else stages.TRAINING
        return {MERGED: stages.EXPORT.name, GGUF: stages.GGUF.name}.get(subject, trained)

    @staticmethod
    def eval_subpath(split: str, decoding: str, subject: str = ADAPTER, checkpoint: str | None = None) -> Path:
        """An evaluation's folder inside the scored model's output folder (a checkpoint's: one level deeper).

        Checkpoint evaluations sit below `eval/checkpoints/`, where `orch collect` does not look: a
        learning curve's points are not rows of the comparison.
        """
        if checkpoint:
            return Path(EVAL, CHECKPOINT_EVALS, checkpoint, split, decoding)
        return Path(EVAL, split, f"{decoding}-base" if subject == BASE else decoding)

    def preference_dir(self, run: Run) -> Path:
        """The folder of the DPO pairs built from a training run, and of their dataset_info.json (the dpo
        config's `dataset_dir`): inside that run's folder, so a retrained run never keeps stale pairs."""
        return self.output_dir(run) / PREFERENCE

    def preference_pairs(self, run: Run, split: str) -> Path:
        """The DPO pairs `orch dpo pairs` builds from a training run on a split."""
        return self.preference_dir(run) / self.pairs_file_name(split)

    @staticmethod
    def pairs_file_name(split: str) -> str:
        """A split's pairs file in a preference folder."""
        return f"pairs-{split}.jsonl"

    @staticmethod
    def learning_curve_stem(split: str) -> Path:
        """The learning curve's files inside a training run's output folder, without their suffix."""
        return Path(EVAL, CHECKPOINT_EVALS, f"learning-curve-{split}")

    def baseline_dir(self, task: str, kind: str, split: str) -> Path:
        """Where a model-free baseline of a task is scored."""
        return self.saves_root / BASELINES / task / EVAL / split / kind

    def predictions_eval_dir(self, predictions: Path) -> Path:
        """Where LLaMA-Factory's own generated_predictions.jsonl is scored: beside it."""
        return predictions.parent / LF_PREDICT_EVAL

    def metrics_files(self) -> list[Path]:
        """Every metrics.json an evaluation wrote in a live run folder or a baseline folder.

        Folders moved aside (`sft.bak-<time>`) are history, not runs: their evaluations are not read.
        """
        root = self.saves_root
        runs = set(root.glob(f"*/*/*/{EVAL}/*/*/metrics.json"))
        runs |= set(root.glob(f"*/*/*/{LF_PREDICT_EVAL}/metrics.json"))
        found = {p for p in runs if self._is_run_folder_name(p.relative_to(root).parts[2])}
        found |= set(root.glob(f"{BASELINES}/*/{EVAL}/*/*/metrics.json"))
        return sorted(found)

    @staticmethod
    def _is_run_folder_name(name: str) -> bool:
        folder, sep, task = name.partition(TASK_SEP)
        return folder in {s.folder for s in stages.TABLE.values() if s.folder} and (
            not sep or TASK_NAME.match(task) is not None
        )

    def identify(self, metrics_path: Path, metrics: dict[str, Any]) -> EvalIdentity:
        """Which task, run and subject a metrics.json belongs to (older files: read from the path)."""
        subject = str(metrics.get("subject") or metrics.get("model") or ADAPTER)  # "model": files before subjects
        rel = metrics_path.relative_to(self.saves_root).parts  # as found: a symlinked model folder is still one
        if metrics.get("run"):
            try:
                run: Run | None = Run.parse(str(metrics["run"]))
            except OrchError as exc:
                raise OrchError(f"{metrics_path}: {exc.message}", fix="re-run the evaluation that wrote it") from None
        elif rel[0] == BASELINES or (rel[0], rel[1]) == ("rules", "baseline"):  # the latter: older rules rows
            run = None
        else:
            folder, _, task = rel[2].partition(TASK_SEP)
            stage = next((s.name for s in stages.TABLE.values() if s.folder and s.folder == folder), stages.TRAINING)
            run = Run(rel[0], rel[1], stage, task or None)
            if stage == stages.EXPORT.name and subject == ADAPTER:  # older merged evaluations said "adapter"
                subject = MERGED
        task_name = metrics.get("task") or (self.task_of(run) if run else self.project.default_task)
        return EvalIdentity(str(task_name), run, subject)

    # --- jobs and reports --------------------------------------------------
    def job_root(self, run: Run) -> Path:
        """A run's job folders (one per submission)."""
        return self.project.jobs / run.slug

    def new_job_dir(self, run: Run) -> Path:
        """A fresh, uniquely named job folder for a submission (created)."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = self.job_root(run) / stamp
        path.mkdir(parents=True)
        return path

    def reports_dir(self, task: str) -> Path:
        """The comparison and report of a task."""
        base = self.project.root / "reports"
        return base if task == self.project.default_task else base / task


@dataclass(frozen=True)
class EvalIdentity:
    """What one metrics.json scored."""

    task: str
    run: Run | None  # None: a model-free baseline
    subject: str


def read_metrics(path: Path) -> dict[str, Any]:
    """A metrics.json, or a clear error naming it."""
    try:
        data = inputs.read_json(path)
    except InputError as exc:
        raise OrchError(
            f"cannot read it: {exc.message}", where=exc.where, fix="re-run the evaluation that wrote it"
        ) from None
    if not isinstance(data, dict):
        raise OrchError(f"{path} is not a JSON object", fix="re-run the evaluation that wrote it")
    return data
