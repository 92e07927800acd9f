"""`steps/steps.md`: the human-readable journal reviewers read.

Every submit, resume, restart, requeue, cancel, failure and finish appends an
entry rendered from `templates/steps/entry.md.j2`. Append-only; writers take
an exclusive lock so concurrent entries never interleave.
"""

from __future__ import annotations

import fcntl
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from orchestrator.secrets import redact
from orchestrator.templating import make_env, render

HEADER = "# Steps\n\nWhat was run, when, with which config, data and code, and what came out. Written by orch.\n"


MULTILINE = ("log_tail", "table")  # rendered inside code fences


def _one_line(record: dict[str, Any]) -> dict[str, Any]:
    """Table fields on one line, and no heading inside a message: a line break in a value (a --set,
    a path) cannot start a forged entry."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, str) and key == "message":
            value = "\n".join("\\" + line if line.lstrip().startswith("#") else line for line in value.splitlines())
        elif isinstance(value, str) and key not in MULTILINE:
            value = " ".join(value.splitlines())
        out[key] = value
    return out


def append_entry(templates: Path, path: Path, record: dict[str, Any]) -> None:
    """Render `record` with the steps template and append it to `path`."""
    text = render(make_env(templates), "steps/entry.md.j2", {"r": defaultdict(lambda: None, _one_line(redact(record)))})
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
