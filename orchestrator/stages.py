"""The one table of stage facts, and the names of the events a run's history is made of.

Every module that needs to know how a stage runs, where its output goes, what
its rendered config is called or which data it reads asks this table; no
stage name is spelled out anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.errors import OrchError

LLAMAFACTORY, ORCH = "llamafactory", "orch"  # who runs a stage's job


@dataclass(frozen=True)
class Stage:
    """What orch knows about one stage: a LLaMA-Factory one (rendered config) or one orch runs itself."""

    name: str  # the run's stage: model/method/<name>
    command: str  # `llamafactory-cli <command> config.yaml` (orch stages: `python -m orchestrator.stagejob`)
    config_prefix: str  # rendered file `<prefix>_<model>_<method>[_<task>].yaml`
    output_key: str  # the config key holding the stage's output folder
    folder: str  # the output folder's name in the run layout ("" for none of its own)
    data_keys: tuple[str, ...]  # config keys naming the datasets it reads
    trains: bool  # writes checkpoints: resumable, never silently restarted; every other stage follows one
    runner: str = LLAMAFACTORY
    after: str | None = "sft"  # the stage whose output it reads: its job waits for that one (None: every earlier)


SFT = Stage("sft", "train", "train", "output_dir", "sft", ("dataset", "eval_dataset"), True, after=None)
# DPO from the SFT model's own mistakes: orch scores the SFT run and writes the pairs (into the SFT run's
# folder), then LLaMA-Factory trains on them from the SFT adapter, in a folder of its own.
PAIRS = Stage("pairs", "pairs", "pairs", "output_dir", "", (), False, ORCH, after="sft")
DPO = Stage("dpo", "train", "dpo", "output_dir", "dpo", ("dataset",), True, after="pairs")
PREDICT = Stage("predict", "train", "predict", "output_dir", "predict", ("eval_dataset",), False)
EXPORT = Stage("export", "export", "export", "export_dir", "merged", (), False)
# orch's own stages: the merged model to GGUF (llama.cpp), and scoring every model the chain made.
GGUF = Stage("gguf", "gguf", "gguf", "output_dir", "gguf", (), False, ORCH, after="export")
EVAL = Stage("eval", "eval", "eval", "output_dir", "", (), False, ORCH, after=None)

TABLE: dict[str, Stage] = {s.name: s for s in (SFT, PAIRS, DPO, PREDICT, EXPORT, GGUF, EVAL)}
NAMES: tuple[str, ...] = tuple(TABLE)
LLAMAFACTORY_NAMES: tuple[str, ...] = tuple(s.name for s in TABLE.values() if s.runner == LLAMAFACTORY)
TRAINING = SFT.name  # the stage every submission starts with; every other one may follow it (`--then`)
CHAINABLE: tuple[str, ...] = tuple(name for name in TABLE if name != TRAINING)


def data_maker(stage: str) -> str | None:
    """The orch stage that writes the data a stage trains on (dpo: pairs), or None: the task's files."""
    after = get(stage).after
    return after if after is not None and TABLE[after].runner == ORCH and get(stage).data_keys else None


def get(name: str) -> Stage:
    """The stage called `name`, or a clear error listing the known ones."""
    if name not in TABLE:
        raise OrchError(f"unknown stage {name!r}", fix=f"stages: {', '.join(NAMES)}")
    return TABLE[name]


def by_prefix(prefix: str) -> Stage | None:
    """The stage whose rendered configs start with `prefix_` (None if no stage does)."""
    return next((s for s in TABLE.values() if s.config_prefix == prefix), None)


class Event:
    """The events of a run's history (ledger `event` field, steps.md headings)."""

    SUBMITTED = "submitted"
    STARTED = "started"
    RESUMED = "resumed"
    REQUEUED = "requeued"
    RESTARTED = "restarted"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    EVALUATED = "evaluated"
    COLLECTED = "collected"

    STARTS = (STARTED, RESUMED, REQUEUED)
    # What the job itself writes when it ends: authoritative over a later reconciliation.
    OWN_ENDINGS = (FINISHED, FAILED, INTERRUPTED)
    # A job's last word: after one of these nothing is reconciled for it (interrupted may be requeued).
    TERMINAL = (FINISHED, FAILED, CANCELLED, TIMEOUT)
