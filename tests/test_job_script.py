"""The SLURM job script: multi-node rendering against a committed golden file.

Multi-node and multi-GPU training cannot run on this machine (one node, no
GPU), so the rendered script is compared with tests/golden/; the single-node
script runs for real in tests/test_submit.py.
"""

from __future__ import annotations

from pathlib import Path

from conftest import REPO

from orchestrator.catalog import Catalog
from orchestrator.project import Project
from orchestrator.runs import Run
from orchestrator.submit import render_job_script

GOLDEN = Path(__file__).parent / "golden"


def _script(nodes: int, gpus: int) -> str:
    catalog = Catalog(Project(REPO))
    run = Run("qwen3-1p7b", "lora", "sft")
    slurm = catalog.settings("qwen3-1p7b", "lora", catalog.task())["orch"]["slurm"]
    slurm = {**slurm, "partition": "a40", "nodes": nodes, "gpus_per_node": gpus, "time": "12:00:00"}
    job_dir = Path("/cluster/orch/jobs/qwen3-1p7b_lora_sft/20260101-000000-000000")
    return render_job_script(
        catalog,
        run,
        job_dir,
        job_dir / "job.log",
        slurm,
        python="/cluster/orch/.venv/bin/python",
        root=Path("/cluster/orch"),
        env={"HF_HOME": "/share/hf", "ORCH_MODEL_CACHE": "/share/models"},
    )


def test_multinode_script_matches_golden_mock_cluster():
    assert _script(nodes=2, gpus=4) == (GOLDEN / "slurm_2nodes_4gpus.sh").read_text()


def test_single_node_multi_gpu_script_matches_golden_mock_cluster():
    assert _script(nodes=1, gpus=4) == (GOLDEN / "slurm_1node_4gpus.sh").read_text()


def test_script_has_the_resource_and_requeue_directives():
    text = _script(nodes=2, gpus=4)
    for line in (
        "#SBATCH --partition=a40",
        "#SBATCH --nodes=2",
        "#SBATCH --gres=gpu:4",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@300",
        "#SBATCH --time=12:00:00",
        "trap requeue USR1",
        "SIGNAL_SECONDS=300",
        "export FORCE_TORCHRUN=1 NNODES=$SLURM_NNODES NPROC_PER_NODE=4",
        "srun --kill-on-bad-exit=1",
        "NODE_RANK=$SLURM_NODEID",
        "export HF_HOME=/share/hf",
        "LLaMA-Factory-main/src",
    ):
        assert line in text, line
    assert text.startswith("#!/usr/bin/env bash\n#SBATCH --job-name=orch-qwen3-1p7b_lora_sft\n")
