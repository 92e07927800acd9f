"""The one exception type users see: what is wrong, where, and how to fix it."""

from __future__ import annotations


class OrchError(Exception):
    """A user-facing error; the CLI prints it and exits non-zero.

    `where` names the file (and line) or key at fault, `fix` says what to do.
    """

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        """The error as the CLI prints it."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text
