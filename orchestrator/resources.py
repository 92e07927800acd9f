"""SLURM resources of a job, checked against SLURM's own formats before they reach a script.

The job script's `#SBATCH` lines take these values; each must match its format
exactly (a line break in a partition name would end the directive block and run
as a command), so anything else is refused with the option that gave it.
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator.errors import OrchError

# key -> (pattern, what it is, an example)
FORMATS: dict[str, tuple[str, str, str]] = {
    "partition": (r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*", "partition name(s), comma-separated", "gpu"),
    "time": (
        r"\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}",
        "time limit: minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]",
        "12:00:00",
    ),
    "mem": (r"\d+[KMGTkmgt]?", "memory: a number with an optional K/M/G/T unit", "64G"),
    "nodes": (r"[1-9]\d*", "a node count (1 or more)", "1"),
    "gpus_per_node": (r"\d+", "a GPU count per node (0 or more)", "1"),
    "processes_per_node": (r"[1-9]\d*", "training processes per node (default: one per GPU)", "2"),
    "cpus_per_task": (r"[1-9]\d*", "a CPU count (1 or more)", "8"),
    "signal_seconds": (r"\d+", "seconds before the limit (0 or more)", "300"),
    "max_requeues": (r"\d+", "a requeue count (0 or more)", "3"),
}
OPTION = {key: "--" + key.replace("_", "-") for key in FORMATS} | {"cpus_per_task": "--cpus"}
COUNTS = ("nodes", "gpus_per_node", "processes_per_node", "cpus_per_task", "signal_seconds", "max_requeues")


def check_resources(
    slurm: dict[str, Any], given_on_command_line: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The resources with counts as integers; OrchError naming the first one not in SLURM's format."""
    out = dict(slurm)
    for key, (pattern, what, example) in FORMATS.items():
        value = slurm.get(key)
        if value is None or (key == "partition" and value == ""):
            continue
        source = OPTION[key] if key in given_on_command_line else f"orch.slurm.{key} (model template)"
        if key == "time" and isinstance(value, int) and not isinstance(value, bool):
            raise OrchError(
                f"{source} = {value!r}: a time limit must be quoted text in YAML "
                "(YAML reads an unquoted 12:00:00 as the number 43200)",
                fix=f"write it quoted, e.g. time: '{example}'",
            )
        text = str(value) if not isinstance(value, bool) else "<bool>"
        if not re.fullmatch(pattern, text, re.ASCII):
            raise OrchError(f"{source} = {value!r} is not a valid {what}", fix=f"give e.g. {OPTION[key]} {example}")
        if key in COUNTS:
            out[key] = int(text)
    return out
