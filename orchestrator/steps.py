"""`steps/steps.md`: the human-readable journal reviewers read.

Every submit, resume, restart, requeue, cancel, failure and finish appends an
entry rendered from `templates/steps/entry.md.j2`. Append-only; writers take
an exclusive lock so concurrent entries never interleave.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from orchestrator.templating import make_env, render

FIELDS = (
    "time",
    "event",
    "run",
    "job_id",
    "message",
    "command",
    "model",
    "method",
    "stage",
    "executor",
    "git_commit",
    "config",
    "config_sha256",
    "dataset",
    "dataset_sha256",
    "output_dir",
    "resumed_from",
    "moved_to",
    "requeues",
    "global_step",
    "train_loss",
    "eval_loss",
    "log_tail",
)
HEADER = "# Steps\n\nWhat was run, when, with which config, data and code, and what came out. Written by orch.\n"


def append_entry(templates: Path, path: Path, record: dict[str, Any]) -> None:
    """Render `record` with the steps template and append it to `path`."""
    text = render(make_env(templates), "steps/entry.md.j2", {"r": {**dict.fromkeys(FIELDS), **record}})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_size == 0:
            os.write(fd, (HEADER + "\n").encode("utf-8"))
        os.write(fd, ("\n" + text.strip() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
