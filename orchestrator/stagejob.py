"""orch's own stages, as jobs: their settings at submit time, and what runs inside the job.

    python -m orchestrator.stagejob CONFIG

`jobrun` runs this (in place of `llamafactory-cli`) for a stage the stage
table marks as orch's: `pairs` (DPO pairs from the SFT run's own mistakes on
the train split: preference.py), `gguf` (the merged model to GGUF, quantized:
deploy.py) and `eval` (every model the chain made, scored with the same
scorer, outputs, ledger and steps.md entries as `orch eval`). Their settings come from the
model's templates (`orch: {gguf: {quantization: ...}, eval: {...}}`) and
`--set gguf.quantization=Q8_0` / `--set eval.split=val`, checked before the
job is queued; the job's config.yaml holds them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from orchestrator import inputs, stages
from orchestrator.errors import OrchError
from orchestrator.inputs import InputError
from orchestrator.layout import ADAPTER, BASE, GGUF, MERGED

DECODING_CHOICES = ("constrained", "free", "both")
DPO = stages.DPO.name  # an eval subject too: the dpo stage's adapter (on the SFT one)
# What each stage of a chain adds to what the eval stage scores (the adapter always).
SUBJECT_OF_STAGE = {DPO: DPO, stages.EXPORT.name: MERGED, stages.GGUF.name: GGUF}
SUBJECTS = (ADAPTER, BASE, DPO, MERGED, GGUF)
PAIRS_SETTINGS = ("limit", "risk_share", "keep_correct", "seed", "batch_size")


def split_sets(sets: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
    """(`--set`s for LLaMA-Factory configs, {orch stage: {key: raw value}}) from `--set stage.key=value`."""
    rest, own = [], {}
    for pair in sets:
        key, sep, value = pair.partition("=")
        head, dot, tail = key.strip().partition(".")
        if sep and dot and head in stages.TABLE and stages.TABLE[head].runner == stages.ORCH:
            own.setdefault(head, {})[tail] = value
        else:
            rest.append(pair)
    return tuple(rest), own


def settings(stage: str, chain: tuple[str, ...], defaults: dict[str, Any], given: dict[str, str], task: Any) -> dict:
    """An orch stage's checked settings: the templates' `orch.<stage>` block, then `--set <stage>.key=value`."""
    if defaults is not None and not isinstance(defaults, dict):
        raise OrchError(f"orch.{stage} in the model's templates must be a mapping of settings, not {defaults!r}")
    values = dict(defaults or {})
    for key, raw in given.items():
        try:  # a YAML scalar or list, as `--set` values are everywhere; else the text as given
            values[key] = inputs.parse_yaml(raw, f"--set {stage}.{key}") if raw.strip() else ""
        except InputError:
            values[key] = raw
    if stage == stages.GGUF.name:
        return _gguf_settings(values)
    if stage == stages.PAIRS.name:
        return _pairs_settings(values)
    return _eval_settings(values, chain, task)


def _pairs_settings(values: dict[str, Any]) -> dict[str, Any]:
    """`orch dpo pairs`' options (always the train split: what the dpo stage trains on)."""
    _unknown("pairs", values, PAIRS_SETTINGS)
    out: dict[str, Any] = {"limit": None, "risk_share": 1.0, "keep_correct": 0.0, "seed": 0, "batch_size": None}
    for key, value in values.items():
        if key in ("risk_share", "keep_correct"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise OrchError(f"pairs.{key}={value!r}: a share between 0 and 1", fix=f"e.g. --set pairs.{key}=0.5")
            value = float(value)
        elif not (value is None and key != "seed"):
            least = 0 if key == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise OrchError(
                    f"pairs.{key}={value!r}: not a whole number >= {least}", fix=f"e.g. --set pairs.{key}=8"
                )
        out[key] = value
    return out


def _unknown(stage: str, values: dict[str, Any], known: tuple[str, ...]) -> None:
    extra = sorted(set(values) - set(known))
    if extra:
        raise OrchError(
            f"{stage}.{extra[0]}: the {stage} stage has no such setting", fix=f"settings: {', '.join(known)}"
        )


def _gguf_settings(values: dict[str, Any]) -> dict[str, Any]:
    from orchestrator import llamacpp
    from orchestrator.deploy import DEFAULT_QUANT

    _unknown("gguf", values, ("quantization",))
    quant = values.get("quantization", DEFAULT_QUANT)
    return {"quantization": llamacpp.check_quant_type(quant, f"gguf.quantization={quant}")}


def _eval_settings(values: dict[str, Any], chain: tuple[str, ...], task: Any) -> dict[str, Any]:
    _unknown("eval", values, ("split", "decoding", "subjects", "batch_size"))
    split = str(values.get("split", "test"))
    if split not in task.datasets:
        raise OrchError(
            f"eval.split={split}: task {task.name} has no such split", fix=f"one of {', '.join(task.datasets)}"
        )
    mode = str(values.get("decoding", "both"))
    if mode not in DECODING_CHOICES:
        raise OrchError(f"eval.decoding={mode}: unknown decoding", fix=f"one of {', '.join(DECODING_CHOICES)}")
    subjects = values.get("subjects", [ADAPTER, *(SUBJECT_OF_STAGE[s] for s in chain if s in SUBJECT_OF_STAGE)])
    if isinstance(subjects, str):
        subjects = [s.strip() for s in subjects.split(",") if s.strip()]
    if not isinstance(subjects, list) or not subjects:
        raise OrchError(f"eval.subjects={subjects!r}: name the models to score", fix=f"e.g. {ADAPTER},{GGUF}")
    bad = [s for s in subjects if s not in SUBJECTS]
    if bad:
        raise OrchError(f"eval.subjects: {bad[0]!r} is not a model orch scores", fix=f"any of {', '.join(SUBJECTS)}")
    size = values.get("batch_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise OrchError(f"eval.batch_size={size!r}: not a positive whole number", fix="e.g. --set eval.batch_size=8")
    return {"split": split, "decoding": mode, "subjects": list(dict.fromkeys(subjects)), "batch_size": size}


def main(config_path: Path) -> int:
    """Run an orch stage's job from its config.yaml (in the project root); exit 1 with the reason on failure."""
    try:
        config = inputs.read_yaml_mapping(config_path, "stage job config")
        _run(config)
    except OrchError as exc:
        print(f"orch: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _run(config: dict[str, Any]) -> None:
    from orchestrator.catalog import Catalog
    from orchestrator.project import Project

    catalog = Catalog(Project(Path.cwd()))
    project = catalog.project
    task = catalog.task(str(config["task"]))
    run = catalog.layout.parse_run(str(config["run"]), task.name)
    if config["stage"] == stages.PAIRS.name:
        _pairs(catalog, task, run.sibling(stages.TRAINING), config)
        return
    if config["stage"] == stages.GGUF.name:
        from orchestrator.deploy import export_gguf

        export_gguf(
            project,
            task,
            run,
            project.resolve(str(config["source"])),
            project.resolve(str(config["output_dir"])),
            str(config["quantization"]),
            command=str(config.get("command") or ""),
            log=_say,
            template_name=_training_template(project, run),
        )
        return
    _score(project, task, run.sibling(stages.TRAINING), config)


def _pairs(catalog: Any, task: Any, run: Any, config: dict[str, Any]) -> None:
    """The dpo stage's data: pairs from the SFT run's mistakes on the train split, in its preference folder."""
    from orchestrator.preference import build_pairs

    out = catalog.layout.preference_pairs(run, "train")
    _say(f"scoring {run.name} on the train split for DPO pairs ...")
    built = build_pairs(
        catalog.project,
        task,
        run,
        out,
        limit=config.get("limit"),
        risk_share=float(config["risk_share"]),
        keep_correct=float(config["keep_correct"]),
        seed=int(config["seed"]),
        batch_size=config.get("batch_size"),
        progress=_progress("train"),  # "orch: scoring train: d/t": what orch pipeline follows
    )
    if built.stats.get("warning"):
        _say(f"WARNING: {built.stats['warning']}")
    kinds = ", ".join(f"{k} {v}" for k, v in built.stats["by_kind"].items())
    _say(f"{built.stats['pairs']} pair(s) from {built.stats['rows']} row(s) ({kinds}): {catalog.project.relative(out)}")


def _training_template(project: Any, run: Any) -> str | None:
    """The chat template name the run was trained with (its orch_config.yaml), if it can be read."""
    from orchestrator.evaluation.evaluate import training_config
    from orchestrator.runs import run_output_dir

    try:
        return str(training_config(project, run_output_dir(project, run.sibling(stages.TRAINING)))["template"])
    except (OrchError, KeyError):
        return None


def _score(project: Any, task: Any, run: Any, config: dict[str, Any]) -> None:
    """Every subject the eval stage names, each decoding, recorded as `orch eval` records it."""
    from orchestrator.evaluation.evaluate import Scored, evaluate_decodings, record_evaluation
    from orchestrator.evaluation.metrics import summary

    mode = str(config["decoding"])
    decodings = ("constrained", "free") if mode == "both" else (mode,)
    for subject in config["subjects"]:
        _say(f"scoring {subject} on the {config['split']} split ({mode}) ...")
        started = time.monotonic()
        scored = Scored(run.sibling(DPO), ADAPTER) if subject == DPO else Scored(run, subject)
        results = evaluate_decodings(
            project,
            task,
            scored,
            decodings=decodings,
            split=str(config["split"]),
            batch_size=config.get("batch_size"),
            progress=_progress(subject),
            operating_point=subject != BASE,
        )
        for result in results.values():
            record_evaluation(project, result, scored.run, str(config.get("command") or ""))
            _say(f"-- {subject}, {result.metrics['decoding']} ({time.monotonic() - started:.0f} s)")
            _say(summary(result.metrics))


def _progress(subject: str):
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 5:
            last[0] = now
            _say(f"orch: scoring {subject}: {done}/{total}")

    return report


def _say(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
