"""The SLURM job script: golden files, and every branch rendered and executed from a hostile path.

Multi-node and multi-GPU training cannot run on this machine (one node, no GPU),
so the rendered scripts are compared with tests/golden/ and *executed* with bash
from a project path holding spaces and quotes, with stand-ins (mocks, named so)
for the launched Python, `srun` and `scontrol`. The single-node script runs for
real in tests/test_submit.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from orchestrator.catalog import Catalog
from orchestrator.errors import OrchError
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
        'export FORCE_TORCHRUN=1 NNODES="$SLURM_NNODES" NPROC_PER_NODE=4',
        "srun --kill-on-bad-exit=1",
        "NODE_RANK=$SLURM_NODEID",
        "export HF_HOME=/share/hf",
        'exec "$ORCH_PYTHON" -m orchestrator.jobrun "$ORCH_JOB_DIR"',
        "LLaMA-Factory-main/src",
    ):
        assert line in text, line
    assert text.startswith("#!/usr/bin/env bash\n#SBATCH --job-name=orch-qwen3-1p7b_lora_sft\n")


def test_golden_scripts_are_valid_bash():
    for path in GOLDEN.glob("*.sh"):
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0, path


HOSTILE = "my proj 'quoted' \"double\" $HOME `x`"
MOCK_PYTHON = """#!/usr/bin/env bash
# Mock of the environment's Python (named so): records what the job script launched it with.
{ printf 'arg=%s\\n' "$@"; echo "pwd=$PWD"; echo "hf_home=$HF_HOME"; echo "path0=${PATH%%:*}"
  echo "node_rank=${NODE_RANK:-}"; echo "torchrun=${FORCE_TORCHRUN:-}"; echo "nproc=${NPROC_PER_NODE:-}"; } > "$RECORD"
"""
MOCK_SRUN = """#!/usr/bin/env bash
# Mock of srun (named so): one task on this node, options dropped.
while [ "${1#--}" != "$1" ]; do shift; done
exec "$@"
"""
MOCK_SCONTROL = "#!/usr/bin/env bash\n# Mock of scontrol (named so).\necho localhost\n"


@pytest.mark.parametrize(("nodes", "gpus"), [(1, 0), (1, 2), (2, 2)], ids=["single", "multi-gpu", "multi-node"])
def test_every_branch_runs_from_a_hostile_path(tmp_path, nodes, gpus):
    root = tmp_path / HOSTILE
    bin_dir, stubs = root / ".venv/bin", tmp_path / "stubs"
    for folder, name, text in (
        (bin_dir, "python", MOCK_PYTHON),
        (stubs, "srun", MOCK_SRUN),
        (stubs, "scontrol", MOCK_SCONTROL),
    ):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
        (folder / name).chmod(0o755)
    catalog = Catalog(Project(REPO))
    slurm = {**catalog.settings("qwen3-1p7b", "lora", catalog.task())["orch"]["slurm"], "nodes": nodes}
    slurm["gpus_per_node"] = gpus
    job_dir = root / "jobs/run 'a'/1"
    job_dir.mkdir(parents=True)
    hf_home = str(tmp_path / "hf 'home' $x")
    text = render_job_script(
        catalog,
        Run("qwen3-1p7b", "lora", "sft"),
        job_dir,
        job_dir / "job.log",
        slurm,
        python=str(bin_dir / "python"),
        root=root,
        env={"HF_HOME": hf_home},
    )
    script = job_dir / "job.sh"
    script.write_text(text, encoding="utf-8")
    record = tmp_path / "record.txt"
    env = {**os.environ, "RECORD": str(record), "PATH": f"{stubs}:{os.environ['PATH']}"}
    env.update(SLURM_NNODES=str(nodes), SLURM_NODEID="0", SLURM_JOB_NODELIST="localhost")
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = record.read_text(encoding="utf-8").splitlines()
    assert seen[:3] == ["arg=-m", "arg=orchestrator.jobrun", f"arg={job_dir}"]
    assert f"pwd={root}" in seen and f"hf_home={hf_home}" in seen and f"path0={bin_dir}" in seen
    assert ("node_rank=0" in seen) == (nodes > 1 or gpus > 1)
    assert ("torchrun=1" in seen and f"nproc={gpus}" in seen) == (gpus > 1 or nodes > 1)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("partition", "x\ntouch pwned"),
        ("partition", "gpu; touch pwned"),
        ("time", "12:00:00\n#"),
        ("mem", "32G $(touch pwned)"),
        ("nodes", "2 --wrap=x"),
        ("gpus_per_node", -1),
    ],
)
def test_a_resource_that_is_not_slurm_format_is_refused(key, value):
    with pytest.raises(OrchError) as caught:
        _script_with(**{key: value})
    assert key in str(caught.value) or key.replace("_", "-") in str(caught.value)


def test_a_value_with_a_line_break_never_reaches_a_script():
    with pytest.raises(OrchError) as caught:
        _script_with(env={"HF_HOME": "/share/hf\ntouch pwned"})
    assert "control character" in str(caught.value)


def _script_with(env: dict | None = None, **slurm_changes) -> str:
    catalog = Catalog(Project(REPO))
    slurm = {**catalog.settings("qwen3-1p7b", "lora", catalog.task())["orch"]["slurm"], **slurm_changes}
    job_dir = Path("/cluster/orch/jobs/x/1")
    return render_job_script(
        catalog, Run("qwen3-1p7b", "lora", "sft"), job_dir, job_dir / "job.log", slurm, env=env or {}
    )
