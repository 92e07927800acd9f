"""orch: a thin orchestration layer over LLaMA-Factory.

The command line (`orch`, see :mod:`orchestrator.cli`) is a thin layer over
this package's Python API: :mod:`orchestrator.catalog` finds tasks and models,
:mod:`orchestrator.render` turns templates into LLaMA-Factory configs,
:mod:`orchestrator.validation` checks them before anything is submitted,
:mod:`orchestrator.submit` and :mod:`orchestrator.executors` run them (SLURM or
local), :mod:`orchestrator.evaluation` scores runs on the task,
:mod:`orchestrator.collect` compares them and :mod:`orchestrator.data` builds
the datasets.
"""

__version__ = "0.1.0"
