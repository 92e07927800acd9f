"""`python -m orchestrator.cli`: the same as the `orch` console script."""

from orchestrator.cli import main

main()
