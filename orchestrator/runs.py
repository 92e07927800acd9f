"""Runs: (model, method, stage[, task]) with an output directory, job folders and events.

A run's history is its ledger records; its outputs are LLaMA-Factory's files
in its output directory. Nothing here deletes outputs: a restart moves the
old directory aside as `<dir>.bak-<timestamp>`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path
from typing import Any

from orchestrator import inputs, ledger, stages, steps
from orchestrator.errors import OrchError
from orchestrator.layout import Layout, Run
from orchestrator.project import Project
from orchestrator.stages import Event

ORCH_CONFIG = "orch_config.yaml"  # the config a training output_dir was started with


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


SUBMISSION_FIELDS = ("time", "executor", "job_id", "output_dir", "log")


def last_submission(project: Project, run: Run) -> dict[str, Any] | None:
    """The run's most recent usable `submitted` record (one missing a field is skipped, with a warning)."""
    records = [r for r in ledger.for_run(project.ledger, run.name) if r.get("event") == Event.SUBMITTED]
    for record in reversed(records):
        missing = [key for key in SUBMISSION_FIELDS if record.get(key) in (None, "")]
        if not missing:
            return record
        ledger.warn(f"{run.name}: a submitted record of {record.get('time', '?')} lacks {', '.join(missing)}; skipped")
    return None


def known_runs(project: Project) -> list[Run]:
    """Every run the ledger has seen, in first-seen order (records that name no run are not runs)."""
    seen: dict[str, Run] = {}
    for record in ledger.read(project.ledger):
        name = record.get("run")
        if not name or name in seen:
            continue
        try:
            seen[name] = Run.parse(name)
        except OrchError:
            continue
    return list(seen.values())


def run_output_dir(project: Project, run: Run) -> Path:
    """Where a run's outputs are: as its last submission recorded them, else where the layout puts them."""
    sub = last_submission(project, run)
    return project.resolve(sub["output_dir"]) if sub and sub.get("output_dir") else Layout(project).output_dir(run)


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
    keys = stages.get(stage).data_keys
    info_path = project.resolve(values.get("dataset_dir", "data")) / "dataset_info.json"
    if not keys or not info_path.is_file():
        return []
    info = inputs.read_json(info_path)
    files = []
    for key in keys:
        for name in str(values.get(key) or "").split(","):
            entry = info.get(name.strip())
            if entry and "file_name" in entry:
                files.append((info_path.parent / entry["file_name"]).resolve())
    return files


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log (for failures in status and steps.md)."""
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 16384))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])
