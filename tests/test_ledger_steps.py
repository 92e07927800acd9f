"""The ledger and steps.md: append-only, atomic lines, no interleaving under concurrency."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from conftest import REPO

from orchestrator import ledger, steps
from orchestrator.runs import Run, move_aside


def _writer(path: str, worker: int, count: int) -> None:
    for i in range(count):
        ledger.append(Path(path), {"event": "x", "run": f"w{worker}", "i": i, "pad": "y" * 3000})


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "ledger.jsonl"
    procs = [multiprocessing.Process(target=_writer, args=(str(path), w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 200
    records = [json.loads(line) for line in lines]  # every line is whole JSON
    for w in range(4):
        assert [r["i"] for r in records if r["run"] == f"w{w}"] == list(range(50))


def test_torn_last_line_is_skipped_and_earlier_lines_survive(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger.append(path, {"event": "submitted", "run": "a/b/sft"})
    with path.open("a") as handle:
        handle.write('{"event": "started", "run": "a/b')  # a crash mid-write
    assert [r["event"] for r in ledger.read(path)] == ["submitted"]
    ledger.append(path, {"event": "finished", "run": "a/b/sft"})
    assert [r["event"] for r in ledger.read(path)] == ["submitted", "finished"]


def _step_writer(path: str, worker: int) -> None:
    for i in range(20):
        steps.append_entry(
            REPO / "templates",
            Path(path),
            {
                "time": "t",
                "event": "started",
                "run": f"m{worker}/lora/sft",
                "model": f"m{worker}",
                "method": "lora",
                "stage": "sft",
                "message": f"worker {worker} entry {i}\n" + "line\n" * 50,
            },
        )


def test_steps_entries_do_not_interleave(tmp_path):
    path = tmp_path / "steps.md"
    procs = [multiprocessing.Process(target=_step_writer, args=(str(path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    text = path.read_text()
    assert text.startswith("# Steps")
    entries = text.split("\n## ")[1:]
    assert len(entries) == 60
    for entry in entries:
        worker = entry.split("m", 1)[1][0]
        assert f"worker {worker} entry" in entry and entry.count("line\n") == 50


def test_steps_entry_has_the_reviewers_fields(tmp_path):
    path = tmp_path / "steps.md"
    steps.append_entry(
        REPO / "templates",
        path,
        {
            "time": "2026-01-01T00:00:00+00:00",
            "event": "finished",
            "run": "m/lora/sft",
            "model": "m",
            "method": "lora",
            "stage": "sft",
            "executor": "slurm",
            "job_id": "42",
            "git_commit": "abc123",
            "config": "jobs/x/config.yaml",
            "config_sha256": "f" * 64,
            "dataset": "data/t.jsonl",
            "dataset_sha256": "e" * 16,
            "resumed_from": "saves/m/lora/sft/checkpoint-20",
            "train_loss": 0.1234,
            "eval_loss": 0.2345,
            "command": "orch submit m",
        },
    )
    text = path.read_text()
    for needle in (
        "finished · m/lora/sft · job 42",
        "`orch submit m`",
        "`abc123`",
        "jobs/x/config.yaml",
        "data/t.jsonl",
        "checkpoint-20",
        "0.1234",
        "0.2345",
        "slurm (job 42)",
    ):
        assert needle in text, needle


def test_move_aside_never_overwrites(tmp_path):
    first = tmp_path / "sft"
    first.mkdir()
    (first / "a").write_text("1")
    moved1 = move_aside(first)
    first.mkdir()
    (first / "a").write_text("2")
    moved2 = move_aside(first)
    assert moved1 != moved2 and (moved1 / "a").read_text() == "1" and (moved2 / "a").read_text() == "2"


def test_run_names_round_trip():
    run = Run("qwen3-1p7b", "lora", "sft")
    assert run.name == "qwen3-1p7b/lora/sft" and Run.parse(run.name) == run
    assert Run.parse("qwen3-1p7b/qlora") == Run("qwen3-1p7b", "qlora", "sft")
    assert Run.parse("m/lora/predict@sleep") == Run("m", "lora", "predict", "sleep")
