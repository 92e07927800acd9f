"""Atomic file writes: a reader sees the old file or the new one, never half."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchError


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temp file in the same folder and a rename."""
    with _writable(path):
        _write_text_atomic(path, text)


@contextmanager
def _writable(path: Path) -> Iterator[None]:
    """An OS refusal to write (a folder in the way, no permission, no space) as a clear error naming the path."""
    if path.is_dir():
        raise OrchError(f"{path} is a folder", fix="name a file to write")
    try:
        yield
    except OSError as exc:
        raise OrchError(f"cannot write {path}: {exc.strerror or exc}", fix="choose a writable path") from None


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode a plain open() would
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_path(path: Path) -> Path:
    """A temp name beside `path` for a tool that writes a file itself (rename it into place when complete)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_texts_together(files: dict[Path, str]) -> None:
    """Write several files as a set: every one is staged (temp file, fsync) before any is renamed into place.

    A failure while staging leaves every target as it was; the renames that follow cannot fail for want of
    space, so readers see the old set or the new one (up to the instant between renames).
    """
    for path in files:
        if path.is_dir():
            raise OrchError(f"{path} is a folder", fix="name a file to write")
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((tmp, path))
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException as exc:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OrchError(
                f"cannot write {exc.filename or 'the set'}: {exc.strerror or exc}", fix="choose a writable path"
            ) from None
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as indented UTF-8 JSON, atomically."""
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
