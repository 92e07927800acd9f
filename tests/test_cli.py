"""The CLI is a thin layer: every command the README lists is there, and bad input is one clear line."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_commands() -> set[str]:
    block = README.read_text(encoding="utf-8").split("## Commands", 1)[1].split("```")[1]
    return {m.group(1) for m in re.finditer(r"^orch (\w+)", block, re.M)}


def test_help_lists_every_command_the_readme_documents():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = set(re.findall(r"^  (\w+)\s", result.output.split("Commands:", 1)[1], re.M))
    documented = _readme_commands()
    assert documented >= {"submit", "eval", "collect", "diagnose", "pipeline", "validate", "render"}
    assert documented <= listed, f"README documents commands the CLI lacks: {documented - listed}"
    assert listed <= documented | {"data", "models"}, f"commands missing from the README: {listed - documented}"


def test_bad_input_is_one_message_and_exit_2_unless_debugging(project, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "no-slash"])
    assert result.exit_code == 2 and "bad run name 'no-slash'" in result.output
    assert "Traceback" not in result.output
    monkeypatch.setenv("ORCH_DEBUG", "1")
    result = runner.invoke(cli, ["eval", "no-slash"])
    assert result.exit_code != 0 and result.exception is not None  # the traceback is the user's to see


def test_majority_baseline_and_collect_sorted_by_a_text_column(project):
    runner = CliRunner()
    scored = runner.invoke(cli, ["eval", "--majority", "--rules"])
    assert scored.exit_code == 0, scored.output
    assert "saves/_baselines/student_mental/eval/test/majority/predictions.jsonl" in scored.output
    result = runner.invoke(cli, ["collect", "--sort", "model"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| majority") or line.startswith("| rules")]
    assert [r.split(" | ")[0] for r in rows] == ["| majority", "| rules"]  # sorted by the text column
