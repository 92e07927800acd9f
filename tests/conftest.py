"""Shared fixtures: a throwaway copy of the project, tiny local models, the SmolLM2 demo model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from tinymodels import build_tiny_qwen3

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
TINY_ID = "orch-test/tiny-qwen3"
TINY_TEMPLATE = """{#- A tiny random Qwen3 for tests. -#}
{% extends "families/qwen3.yaml.j2" %}
{% block model %}
orch:
  description: tiny random Qwen3 (tests)
model_name_or_path: orch-test/tiny-qwen3
cutoff_len: 1024
{% endblock %}
"""


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A model cache holding the tiny Qwen3 (built once per test session)."""
    cache = tmp_path_factory.mktemp("models")
    texts = []
    for line in (REPO / "data/student_mental/train.jsonl").read_text(encoding="utf-8").splitlines()[:200]:
        row = json.loads(line)
        texts.append(row["instruction"] + row["input"] + row["output"])
    build_tiny_qwen3(cache / TINY_ID, texts)
    return cache


@pytest.fixture
def project(tmp_path, model_cache, monkeypatch):
    """A copy of the repository's templates, rendered configs and (a slice of) data.

    It adds the model `tiny-qwen3` (a new model template, as an ops engineer
    would) and points ORCH_ROOT and ORCH_MODEL_CACHE at the copy.
    """
    from orchestrator.project import Project

    root = tmp_path / "proj"
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copytree(REPO / "llamafactory_configs", root / "llamafactory_configs")
    (root / "templates/models/tiny-qwen3.yaml.j2").write_text(TINY_TEMPLATE, encoding="utf-8")
    for split, count in (("train", 40), ("val", 10), ("test", 10)):
        lines = (REPO / f"data/student_mental/{split}.jsonl").read_text(encoding="utf-8").splitlines()[:count]
        target = root / f"data/student_mental/{split}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("ORCH_ROOT", str(root))
    monkeypatch.setenv("ORCH_MODEL_CACHE", str(model_cache))
    return Project(root)


@pytest.fixture
def catalog(project):
    from orchestrator.catalog import Catalog

    return Catalog(project)


@pytest.fixture
def orch():
    """Run `orch ...` in-process; returns click's Result (exit_code, output)."""
    from orchestrator.cli import cli

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real single-node SLURM on this machine (installed and started once)."""
    result = subprocess.run(["bash", str(REPO / "scripts/slurm-up.sh")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"scripts/slurm-up.sh failed:\n{result.stderr[-3000:]}"
    return True


@pytest.fixture(params=["local", "slurm"])
def executor(request, project):
    """Each test runs on the local executor and on the real SLURM; leftover jobs are cancelled."""
    if request.param == "slurm":
        request.getfixturevalue("slurm_cluster")
    yield request.param
    cancel_everything(project, request.param)


def cancel_everything(project, executor_name):
    """Cancel every job of the project's ledger that is still pending or running on that executor."""
    from orchestrator import ledger
    from orchestrator.executors import get_executor

    ex = get_executor(executor_name, project.jobs)
    for record in ledger.read(project.ledger):
        if record.get("event") == "submitted" and ex.status(str(record["job_id"])).active:
            ex.cancel(str(record["job_id"]))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The real SmolLM2-135M-Instruct, prepared into the repository's model cache once."""
    from orchestrator.catalog import Catalog
    from orchestrator.prepare import prepare_model
    from orchestrator.project import Project

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ORCH_MODEL_CACHE", raising=False)
        return prepare_model(Catalog(Project(REPO)), "smollm2-135m", log=lambda _m: None)


def write_checkpoint(folder: Path, step: int) -> Path:
    """A minimal complete checkpoint as transformers writes one: state, weights, optimizer, scheduler, RNG.

    The files hold placeholders in the real formats (a safetensors header, torch zip
    archives), enough for orch's integrity check; no trainer ever loads them here.
    """
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    header = b"{}"
    (folder / "adapter_model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        with zipfile.ZipFile(folder / name, "w") as archive:
            archive.writestr("archive/data.pkl", b"placeholder")
    return folder
