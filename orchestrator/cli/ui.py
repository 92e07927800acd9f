"""Terminal output: progress bars on stderr and plain tables."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click


@contextlib.contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields a `progress(done, total)` callback."""
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:

        def update(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        yield update


class Bars:
    """One progress bar per phase on stderr (training steps, examples scored); messages go between bars."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.bar = None

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = click.progressbar(length=total, label=phase, file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.length = total
        self.bar.update(done - self.bar.pos)

    def training_status(self, status) -> None:
        """Show the last logged loss beside the training bar, and say once when a job waits in a queue."""
        if status.state == "PENDING" and status.executor != "local" and self.phase != "queued":
            self.echo(f"{status.run}: job {status.job_id} is queued ({status.reason or 'waiting for resources'}) ...")
            self.phase = "queued"
        if self.bar is not None and self.phase == "training" and status.loss:
            self.bar.label = f"training (loss {status.loss})"

    def echo(self, message: str) -> None:
        self.close()
        click.echo(message, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        self.bar, self.phase = None, None


def table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
