"""scripts/demo.sh composes the right orch commands (default demo, and DEMO_STEPS: the longer run).

The orch it calls is a MOCK here (ORCH_BIN: a script that records its arguments): the real demo trains
for minutes; what this checks is the script's own logic (flags, validation, the learning curve step).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _demo(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    calls = tmp_path / "calls.txt"
    recorder = tmp_path / "orch"
    recorder.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> {calls}\necho "+ $1"\n')
    recorder.chmod(0o755)
    full = {**os.environ, "ORCH_BIN": str(recorder), "ORCH_EXECUTOR": "local", **env}
    done = subprocess.run(["bash", str(REPO / "scripts/demo.sh")], env=full, capture_output=True, text=True)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_default_demo_trains_with_the_template_settings(tmp_path):
    done, calls = _demo(tmp_path)
    assert done.returncode == 0, done.stderr
    pipeline = next(c for c in calls if c.startswith("pipeline "))
    # Ships a GGUF, scored beside the adapter and the untrained base.
    assert pipeline == (
        "pipeline smollm2-135m --method lora --executor local --then export,gguf --set eval.subjects=adapter,base,gguf"
    )
    assert not any("--checkpoint" in c for c in calls)


def test_demo_steps_is_a_longer_run_from_scratch_with_its_learning_curve(tmp_path):
    done, calls = _demo(tmp_path, DEMO_STEPS="150")
    assert done.returncode == 0, done.stderr
    pipeline = next(c for c in calls if c.startswith("pipeline "))
    assert pipeline.endswith("--restart --set max_steps=150 --set save_steps=25 --set save_total_limit=8")
    assert calls[-1] == "eval smollm2-135m/lora --checkpoint all"


def test_bad_demo_steps_is_refused_before_anything_runs(tmp_path):
    for bad in ("abc", "0", "1e3", "10; rm -rf /", "-5"):
        done, calls = _demo(tmp_path, DEMO_STEPS=bad)
        assert done.returncode == 2 and "DEMO_STEPS" in done.stderr and calls == []
