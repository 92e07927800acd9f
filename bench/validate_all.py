#!/usr/bin/env python
"""Benchmark: wall time of `orch validate --all` over every shipped model and method.

Prints a table: the whole command (a fresh process, as a user runs it), the
part of it that is importing LLaMA-Factory, and the budget ratio (target:
under 15 s on a 2-core machine). Run: `make bench` or `.venv/bin/python bench/validate_all.py`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BUDGET_S = 15.0
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, result


def main(repeats: int = 3) -> None:
    runs, imports = [], []
    report = {}
    for i in range(repeats):
        print(f"run {i + 1}/{repeats}: orch validate --all ...", file=sys.stderr, flush=True)
        seconds, result = timed([str(BIN / "orch"), "validate", "--all", "--json"])
        if result.returncode not in (0, 1):
            sys.exit(f"orch validate failed:\n{result.stderr[-2000:]}")
        report = json.loads(result.stdout)
        runs.append(seconds)
        seconds, _ = timed([sys.executable, "-c", "import llamafactory.hparams, llamafactory.data.template"])
        imports.append(seconds)
    wall, imp = statistics.median(runs), statistics.median(imports)
    rows = [
        ("configs validated", f"{len(report['configs'])}"),
        ("errors / warnings", f"{report['counts']['error']} / {report['counts']['warning']}"),
        (f"orch validate --all (median of {repeats})", f"{wall:.2f} s"),
        ("  of which importing LLaMA-Factory", f"{imp:.2f} s"),
        (
            "  the checks themselves",
            f"{wall - imp:.2f} s ({(wall - imp) / len(report['configs']) * 1000:.0f} ms/config)",
        ),
        ("budget", f"{BUDGET_S:.0f} s"),
        ("wall / budget", f"{wall / BUDGET_S:.2f}x" + ("  (within budget)" if wall <= BUDGET_S else "  (OVER budget)")),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
