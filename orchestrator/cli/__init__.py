"""`orch`: the command line, a thin layer over the Python API (one module per command group).

Every command parses its arguments, calls the API and prints; every decision
lives in the API that the tests call directly. Bad input is one clear message
and exit code 2 (`ORCH_DEBUG=1` shows the traceback).
"""

from __future__ import annotations

import os

import click

from orchestrator.errors import OrchError

EXIT_BAD_INPUT = 2
EXIT_BUG = 70  # EX_SOFTWARE: orch itself failed
EXIT_INTERRUPTED = 130


class Group(click.Group):
    """Turns an OrchError anywhere below into a clean message and exit code 2.

    Anything else that escapes a command is a bug in orch, not bad input: one line naming it and exit 70,
    so a user never reads a traceback unless they ask for it with ORCH_DEBUG=1.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except OrchError as exc:
            if os.environ.get("ORCH_DEBUG") == "1":
                raise
            click.echo(f"error: {exc.render()}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - the last guard before a traceback reaches the user
            if os.environ.get("ORCH_DEBUG") == "1" or ctx.parent is not None:
                raise
            click.echo(
                f"error: orch failed unexpectedly: {type(exc).__name__}: {exc}\n"
                "  fix: this is a bug in orch; rerun with ORCH_DEBUG=1 for the traceback and report it",
                err=True,
            )
            ctx.exit(EXIT_BUG)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="orch")
def cli() -> None:
    """Fine-tune small base models with LLaMA-Factory into a structured-output assessor."""


def _register() -> None:
    from orchestrator.cli import configs, data, dpo, jobs, models, scoring

    for module in (configs, jobs, scoring):
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(data.data)
    cli.add_command(models.models)
    cli.add_command(dpo.dpo)


_register()


def main() -> None:
    """Console entry point."""
    cli()
