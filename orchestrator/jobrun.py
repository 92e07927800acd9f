"""What runs inside a job: resume from the latest checkpoint, run LLaMA-Factory, record the outcome.

    python -m orchestrator.jobrun JOB_DIR

The job script (templates/jobs/job.sh.j2) calls this on the compute node.
Because a requeued SLURM job runs the same script again, the checkpoint to
resume from is found here, at start time, and passed to llamafactory-cli
as an explicit `resume_from_checkpoint` (never relying on
`overwrite_output_dir` semantics).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator import inputs, stages
from orchestrator.fileio import sha256_file, write_text_atomic
from orchestrator.locks import LOCK_NAME, RUNNING_NAME, hold_running, wait_for_submitter
from orchestrator.outputs import OutputStatus, output_status, set_aside_incomplete, training_summary
from orchestrator.project import Project
from orchestrator.runs import ORCH_CONFIG, Run, dataset_files, log_tail, record_event
from orchestrator.secrets import ENV_PREFIX, overrides_from_env, redact_text
from orchestrator.stages import Event
from orchestrator.throughput import device_name


def main(job_dir: Path) -> int:
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    project = Project(Path(job["root"]))
    run = Run(job["model"], job["method"], job["stage"], job.get("task"))
    job_id = os.environ.get("SLURM_JOB_ID") or os.environ.get("ORCH_JOB_ID") or job.get("job_id")
    leader = os.environ.get("NODE_RANK", os.environ.get("SLURM_NODEID", "0")) == "0"
    requeues = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    output_dir = project.resolve(job["output_dir"])
    config = job_dir / "config.yaml"
    stage = stages.get(run.stage)
    if stage.runner == stages.ORCH:
        cmd = [sys.executable, "-m", "orchestrator.stagejob", str(config)]
    else:
        cmd = [_llamafactory_cli(), stage.command, str(config)]
    common = {
        "executor": job["executor"],
        "job_id": job_id,
        "output_dir": job["output_dir"],
        "config": project.relative(config),
        "requeues": requeues or None,
    }

    resumed_from = None
    set_aside: list[str] = []
    running = hold_running(job_dir.parent / RUNNING_NAME, _say) if leader else None
    if stage.trains:
        status = _checkpoints_settled(output_dir, leader)
        for moved, reasons in set_aside_incomplete(status) if leader else []:
            set_aside.append(f"{project.relative(moved)} ({'; '.join(reasons)})")
            print(f"orch: set aside an unusable checkpoint: {set_aside[-1]}", flush=True)
        latest = status.latest_checkpoint
        if latest is not None:
            resumed_from = project.relative(latest)
            cmd.append(f"resume_from_checkpoint={latest}")
            print(f"orch: resuming from {resumed_from}", flush=True)
        # The config the checkpoints written from now on come from (submit compares against it).
        write_text_atomic(output_dir / ORCH_CONFIG, config.read_text(encoding="utf-8"))
    if leader:
        wait_for_submitter(job_dir.parent / LOCK_NAME)  # the ledger has `submitted` before this event
        event = Event.REQUEUED if requeues else Event.RESUMED if resumed_from else Event.STARTED
        device, devices = device_name()
        record_event(
            project,
            run,
            event,
            resumed_from=resumed_from,
            set_aside=set_aside or None,
            **_chain_made_data(project, run, config),
            device=device,
            devices=devices * int(os.environ.get("SLURM_NNODES", "1") or 1),
            **common,
        )

    given = sorted(k[len(ENV_PREFIX) :].lower() for k in os.environ if k.startswith(ENV_PREFIX))
    if given:
        print(f"orch: credentials from the submitting environment: {', '.join(given)}", flush=True)
    if stage.runner == stages.LLAMAFACTORY:
        cmd += overrides_from_env()  # never in a file: the environment, else this process's command line
    print(f"orch: {redact_text(' '.join(cmd))}", flush=True)
    child = subprocess.Popen(cmd, cwd=project.root, pass_fds=(running,) if running is not None else ())
    stopped = []

    def forward(signum, _frame):
        stopped.append(signum)
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    if not leader:
        return code
    if stopped:
        record_event(
            project,
            run,
            Event.INTERRUPTED,
            message=f"stopped by signal {stopped[0]} (cancel, time limit "
            "or requeue); the next start resumes from the latest checkpoint",
            **common,
        )
        return 128 + stopped[0]
    if code == 0:
        summary = training_summary(output_dir) if stage.trains else {}
        record_event(project, run, Event.FINISHED, **summary, **common)
    else:
        record_event(
            project,
            run,
            Event.FAILED,
            message=f"{'llamafactory-cli' if stage.runner == stages.LLAMAFACTORY else 'orch ' + stage.name} "
            f"exited with {code}",
            log_tail=log_tail(project.resolve(job["log"])),
            **common,
        )
    return code


def _say(text: str) -> None:
    print(text, flush=True)


def _chain_made_data(project: Project, run: Run, config: Path) -> dict[str, str]:
    """The data a stage trains on when an earlier job of its chain wrote it (dpo: the pairs), as it is now:
    at submit time it did not exist yet, so the start event is where steps.md gets it."""
    if stages.data_maker(run.stage) is None:
        return {}
    values = inputs.read_yaml_mapping(config, "job config")
    data = [p for p in dataset_files(project, values, run.stage) if p.is_file()]  # LLaMA-Factory names a missing one
    if not data:
        return {}
    return {
        "dataset": ", ".join(project.relative(p) for p in data),
        "dataset_sha256": ",".join(sha256_file(p)[:16] for p in data),
    }


def _checkpoints_settled(output_dir: Path, leader: bool, wait_s: float = 300.0) -> OutputStatus:
    """The output folder's checkpoints; on other ranks, once the leader has set the unusable ones aside.

    Only the leader (node rank 0) renames; the others wait for it, so no two
    processes race over the same folder, and all resume from the same checkpoint.
    """
    status = output_status(output_dir)
    deadline = time.monotonic() + wait_s
    while not leader and status.incomplete and time.monotonic() < deadline:
        time.sleep(1.0)
        status = output_status(output_dir)
    return status


def _llamafactory_cli() -> str:
    beside = Path(sys.executable).with_name("llamafactory-cli")
    return str(beside) if beside.exists() else "llamafactory-cli"


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
