"""One lock per run around plan-and-submit: concurrent submits of a run give exactly one job."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO, cancel_everything

from orchestrator import ledger
from orchestrator.errors import OrchError
from orchestrator.locks import LOCK_NAME, run_locks
from orchestrator.runs import Run
from orchestrator.submit import SubmitOptions, submit

SETS = ("bf16=false", "per_device_train_batch_size=2", "max_steps=400", "save_steps=50", "logging_steps=10")
SFT = Run("tiny-qwen3", "lora", "sft")


def _submitted(project) -> list[dict]:
    return [r for r in ledger.for_run(project.ledger, SFT.name) if r["event"] == "submitted"]


def test_a_submit_in_progress_refuses_a_second(project, catalog):
    lock = catalog.layout.job_root(SFT) / LOCK_NAME
    opts = SubmitOptions(executor="local", sets=SETS)
    try:
        with run_locks({lock: SFT.name}):  # another submit of the run is planning right now
            with pytest.raises(OrchError) as refused:
                submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
            assert "another `orch submit` of this run is in progress" in str(refused.value)
            assert f"pid {os.getpid()}" in str(refused.value)
            assert _submitted(project) == []
        plans = submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)  # released: it goes ahead
        assert [p.action for p in plans] == ["fresh"] and len(_submitted(project)) == 1
    finally:
        cancel_everything(project, "local")


def test_concurrent_submits_give_exactly_one_job(project):
    """Two real `orch submit` processes started together: one job, the other a clear refusal."""
    cmd = [sys.executable, "-m", "orchestrator.cli", "submit", "tiny-qwen3", "-e", "local"]
    for item in SETS:
        cmd += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        procs = [subprocess.Popen(cmd, cwd=project.root, env=env, **pipes) for _ in range(2)]
        results = [(p.wait(timeout=600), p.communicate()[0]) for p in procs]
        codes = sorted(code for code, _ in results)
        assert codes[0] == 0 and codes[1] != 0, results
        refusal = next(text for code, text in results if code != 0)
        assert "in progress" in refusal or "already has" in refusal, refusal
        assert "Traceback" not in refusal
        assert len(_submitted(project)) == 1
    finally:
        cancel_everything(project, "local")


@pytest.mark.parametrize(
    ("sets", "then", "restart", "folder"),
    [
        (("predict.output_dir=data",), ("predict",), False, "data"),
        (("output_dir=.",), (), True, "."),
        (("output_dir=templates",), (), True, "templates"),
    ],
    ids=["predict-into-data", "restart-project-root", "restart-templates"],
)
def test_only_the_runs_own_folders_are_ever_moved_aside(project, catalog, sets, then, restart, folder):
    """The issue's case: `--set predict.output_dir=data --then predict` moved the project's data/ aside."""
    before = sorted(p.name for p in (project.root / folder).iterdir())
    opts = SubmitOptions(executor="local", sets=SETS + sets, then=then, restart=restart)
    with pytest.raises(OrchError) as refused:
        submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
    assert "not this run's folder" in str(refused.value) or "fails validation" in str(refused.value)
    assert set(before) <= {p.name for p in (project.root / folder).iterdir()}  # nothing moved away
    assert not list(project.root.glob("*.bak-*")) and _submitted(project) == []


@pytest.mark.parametrize(
    ("option", "value"),
    [("--partition", "x\ntouch pwned"), ("--time", "1:00:00; touch pwned"), ("--mem", "$(touch pwned)")],
)
def test_the_issue_injection_is_refused_before_anything_runs(project, orch, option, value):
    """`orch submit ... --partition $'x\\ntouch pwned'` ran `touch`: now refused, naming the option."""
    result = orch("submit", "tiny-qwen3", "-e", "local", option, value, "--set", "bf16=false")
    assert result.exit_code == 2 and option in result.output and "Traceback" not in result.output
    assert not (project.root / "pwned").exists() and _submitted(project) == []


def test_a_template_count_given_as_text_is_read_as_a_number_and_an_unquoted_time_refused():
    from orchestrator.resources import check_resources

    assert check_resources({"gpus_per_node": "0", "nodes": "1"})["gpus_per_node"] == 0
    with pytest.raises(OrchError, match="quoted"):
        check_resources({"time": 43200})  # YAML's reading of an unquoted 12:00:00
    with pytest.raises(OrchError):
        check_resources({"time": "\u0663\u0660"})  # Arabic-Indic digits: sbatch would refuse them


def test_an_unreadable_stored_config_is_a_clear_refusal(project, catalog):
    from conftest import write_checkpoint

    out = project.root / "saves/tiny-qwen3/lora/sft"
    write_checkpoint(out / "checkpoint-2", 2)
    (out / "orch_config.yaml").write_text("a: [1,\n")
    with pytest.raises(OrchError, match="unreadable"):
        submit(catalog, ["tiny-qwen3"], SubmitOptions(executor="local", sets=SETS, dry_run=True), log=lambda _m: None)


def test_an_output_folder_that_is_a_file_is_refused(project, catalog):
    opts = SubmitOptions(executor="local", sets=SETS + ("predict.output_dir=README.md",), then=("predict",))
    (project.root / "README.md").write_text("x")
    with pytest.raises(OrchError, match="is a file"):
        submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
