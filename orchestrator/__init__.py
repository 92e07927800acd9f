"""orch: a thin orchestration layer over LLaMA-Factory.

The command line (`orch`, see :mod:`orchestrator.cli`) is a thin layer over
this package's Python API: :mod:`orchestrator.catalog` finds tasks and models,
:mod:`orchestrator.render` turns templates into LLaMA-Factory configs,
:mod:`orchestrator.validation` checks them before anything is submitted and
:mod:`orchestrator.models` prepares local model directories.
"""

__version__ = "0.1.0"
