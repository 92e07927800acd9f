"""The append-only ledger `jobs/ledger.jsonl`: everything orch knows about runs.

One JSON object per line, one line per event (submitted, started, resumed,
requeued, finished, failed, cancelled, restarted). JSON lines rather than
SQLite: it is readable with `tail`/`grep`, shows in diffs, and appending a
line under `flock` is safe on the shared (often NFS) file systems of
clusters, where SQLite's locking is not. Each event is one `write()` of a
whole line on an O_APPEND descriptor under an exclusive lock, followed by
fsync: a crash can at worst leave a partial *last* line, which readers skip;
earlier lines are never rewritten.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.secrets import redact


def now() -> str:
    """UTC timestamp with seconds, as written in every record."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def append(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Append one record (a `time` is added if missing) and return it."""
    record = redact({"time": now(), **record})  # credentials never reach the ledger
    line = (json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _repair_torn_tail(fd, path)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return record


def _repair_torn_tail(fd: int, path: Path) -> None:
    """If a crash left a last line without its newline, end it so the next record starts clean."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with path.open("rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) != b"\n":
            os.write(fd, b"\n")


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every readable record in order; a torn line (crash mid-write) is skipped."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line (a crash mid-write)
            problem = _malformed(record)
            if problem:
                warn(f"{path.name}:{number}: {problem}; skipped")
                continue
            yield record


_WARNED: set[str] = set()
TEXT_FIELDS = ("time", "event", "run", "executor", "output_dir", "log", "model", "method", "stage")


def _malformed(record: Any) -> str | None:
    """Why a ledger line is not a record orch can use (an older orch or a hand edit wrote it), or None."""
    if not isinstance(record, dict):
        return f"a {type(record).__name__}, not a record"
    bad = [key for key in TEXT_FIELDS if key in record and record[key] is not None and not isinstance(record[key], str)]
    if isinstance(record.get("job_id"), (list, dict, bool)):
        bad.append("job_id")
    return f"{', '.join(bad)} of the wrong type" if bad else None


def warn(message: str) -> None:
    """Say once (per process) that a ledger record was skipped: an older orch or a hand edit wrote it."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"orch: warning: ledger: {message}", file=sys.stderr)


def for_run(path: Path, run: str) -> list[dict[str, Any]]:
    """The records of one run, in order."""
    return [r for r in read(path) if r.get("run") == run]
