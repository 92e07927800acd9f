"""Runs: (model, method, stage[, task]) with an output directory, job folders and events.

A run's history is its ledger records; its outputs are LLaMA-Factory's files
in its output directory. Nothing here deletes outputs: a restart moves the
old directory aside as `<dir>.bak-<timestamp>`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import ledger, steps
from orchestrator.project import Project

STAGE_COMMAND = {"sft": "train", "predict": "train", "export": "export"}
ORCH_CONFIG = "orch_config.yaml"  # the config a training output_dir was started with


@dataclass(frozen=True)
class Run:
    """One unit of work: a stage of a model under a method (and task)."""

    model: str
    method: str
    stage: str
    task: str | None = None  # None: the project's default task

    @property
    def name(self) -> str:
        base = f"{self.model}/{self.method}/{self.stage}"
        return f"{base}@{self.task}" if self.task else base

    @property
    def slug(self) -> str:
        return self.name.replace("/", "_").replace("@", "_")

    @classmethod
    def parse(cls, name: str) -> Run:
        """`model/method/stage[@task]` (stage defaults to sft)."""
        base, _, task = name.partition("@")
        parts = base.split("/")
        if len(parts) == 2:
            parts.append("sft")
        if len(parts) != 3 or not all(parts):
            from orchestrator.errors import OrchError

            raise OrchError(f"bad run name {name!r}", fix="write MODEL/METHOD[/STAGE], e.g. qwen3-1p7b/lora/sft")
        return cls(parts[0], parts[1], parts[2], task or None)


def output_key(stage: str) -> str:
    """The config key holding a stage's output directory."""
    return "export_dir" if stage == "export" else "output_dir"


def record_event(project: Project, run: Run, event: str, **fields: Any) -> dict[str, Any]:
    """Append an event to the ledger and an entry to steps.md."""
    record = ledger.append(
        project.ledger,
        {
            "event": event,
            "run": run.name,
            "model": run.model,
            "method": run.method,
            "stage": run.stage,
            "task": run.task,
            **{k: v for k, v in fields.items() if v is not None},
        },
    )
    steps.append_entry(project.templates, project.steps, record)
    return record


def last_submission(project: Project, run: Run) -> dict[str, Any] | None:
    """The run's most recent `submitted` record."""
    records = [r for r in ledger.for_run(project.ledger, run.name) if r.get("event") == "submitted"]
    return records[-1] if records else None


def known_runs(project: Project) -> list[Run]:
    """Every run the ledger has seen, in first-seen order."""
    seen: dict[str, Run] = {}
    for record in ledger.read(project.ledger):
        if record.get("run") and record["run"] not in seen:
            seen[record["run"]] = Run.parse(record["run"])
    return list(seen.values())


def move_aside(path: Path) -> Path:
    """Rename `path` to `<path>.bak-<timestamp>` (never overwriting an earlier backup)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        n += 1
    path.rename(target)
    return target


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def code_version(root: Path) -> str:
    """`git describe`-like: the commit, `-dirty` when tracked files changed."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit or "unknown") + ("-dirty" if dirty else "")


def dataset_files(project: Project, values: dict[str, Any], stage: str) -> list[Path]:
    """The data files a config reads, from its dataset_info.json."""
    keys = ("dataset", "eval_dataset") if stage == "sft" else ("eval_dataset",) if stage == "predict" else ()
    info_path = project.resolve(values.get("dataset_dir", "data")) / "dataset_info.json"
    if not keys or not info_path.is_file():
        return []
    info = json.loads(info_path.read_text(encoding="utf-8"))
    files = []
    for key in keys:
        for name in str(values.get(key) or "").split(","):
            entry = info.get(name.strip())
            if entry and "file_name" in entry:
                files.append((info_path.parent / entry["file_name"]).resolve())
    return files


def training_summary(output_dir: Path) -> dict[str, Any]:
    """Final losses and steps from LLaMA-Factory's result files (what is there)."""
    out: dict[str, Any] = {}
    for name, keys in (("train_results.json", ("train_loss",)), ("eval_results.json", ("eval_loss",))):
        path = output_dir / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            out.update({k: data[k] for k in keys if k in data})
    state = output_dir / "trainer_state.json"
    if state.is_file():
        out["global_step"] = json.loads(state.read_text(encoding="utf-8")).get("global_step")
    return out


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log (for failures in status and steps.md)."""
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 16384))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])
