"""One lock per run: plan-and-submit is check-then-act, so two submits of a run must not interleave.

An exclusive `flock` on `jobs/<run>/.submit.lock`, held from planning until the
submitted event is in the ledger. The job takes the same lock before writing its
own first event, so the ledger always has `submitted` before `started`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from orchestrator.errors import OrchError

LOCK_NAME = ".submit.lock"
RUNNING_NAME = ".running.lock"  # held by a run's job (and its trainer) while they may write the run's folders


@contextlib.contextmanager
def run_locks(locks: dict[Path, str]) -> Iterator[None]:
    """Hold the lock files (path -> run name; taken in sorted order, so two submitters never deadlock)
    or refuse at once, naming the run."""
    held: list[int] = []
    try:
        for path, name in sorted(locks.items()):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                os.close(fd)
                raise OrchError(
                    f"{name}: another `orch submit` of this run is in progress"
                    + (f" (pid {holder})" if holder else ""),
                    fix="wait for it to finish, then check `orch status`",
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            held.append(fd)
        yield
    finally:
        for fd in held:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def wait_for_submitter(path: Path, timeout_s: float = 120.0) -> None:
    """Block until no submit holds the run's lock (or `timeout_s` passes: never hang a job)."""
    if not path.exists():
        return
    fd = os.open(path, os.O_RDWR)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.2)
    finally:
        os.close(fd)


def hold_running(path: Path, say: Callable[[str], None], wait_s: float = 900.0) -> int:
    """Take the run's running lock, waiting while an earlier job of the run still holds it.

    A cancelled or requeued job keeps writing for a while (a checkpoint on the way
    out, LLaMA-Factory's final save) after the scheduler calls it ended; the next job
    must not touch the run's folders until it is gone. Returns the lock's file
    descriptor, inheritable: pass it to the trainer so the lock lives as long as
    either process (the kernel drops it when the last one exits, even on SIGKILL).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not waited:
                say("orch: an earlier job of this run is still shutting down; waiting for it")
                waited = True
            if time.monotonic() > deadline:
                say("orch: it did not end in time; going ahead")
                break
            time.sleep(0.5)
    os.set_inheritable(fd, True)
    return fd
