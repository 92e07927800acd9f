#!/usr/bin/env python
"""Benchmark: `orch eval` (constrained) against LLaMA-Factory's do_predict on the same model and adapter.

SmolLM2-135M-Instruct (prepared by `orch models prepare`) with a LoRA adapter
(rank 8 on every linear layer, freshly initialised: throughput does not
depend on the adapter's values, and an untrained model is what shows how
free generation behaves), on N examples of the task's data, on this CPU.
LLaMA-Factory runs with its defaults (max_new_tokens 1024, batch 8) unless
--lf-max-new-tokens is given. Prints examples per second, the share of
schema-valid outputs and the ratio.

    .venv/bin/python bench/eval_throughput.py [--examples 64] [--lf-max-new-tokens N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.catalog import Catalog  # noqa: E402
from orchestrator.evaluation.evaluate import Scored, evaluate, score_predictions_file  # noqa: E402
from orchestrator.layout import Run  # noqa: E402
from orchestrator.prepare import prepare_model  # noqa: E402
from orchestrator.project import Project  # noqa: E402


def make_project(tmp: Path, examples: int) -> Project:
    shutil.copytree(ROOT / "templates", tmp / "templates")
    shutil.copytree(ROOT / "llamafactory_configs", tmp / "llamafactory_configs")
    rows = (ROOT / "data/student_mental/train.jsonl").read_text(encoding="utf-8").splitlines()[:examples]
    for split in ("train", "val", "test"):
        (tmp / "data/student_mental").mkdir(parents=True, exist_ok=True)
        (tmp / f"data/student_mental/{split}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return Project(tmp)


def make_adapter(model_dir: Path, out: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(str(out))
    (out / "orch_config.yaml").write_text(yaml.safe_dump({"model_name_or_path": str(model_dir), "template": "smollm2"}))


def run_llamafactory(project: Project, model_dir: Path, adapter: Path, examples: int, max_new: int | None) -> dict:
    config = {
        "model_name_or_path": str(model_dir),
        "adapter_name_or_path": str(adapter),
        "template": "smollm2",
        "finetuning_type": "lora",
        "stage": "sft",
        "do_predict": True,
        "predict_with_generate": True,
        "dataset_dir": "llamafactory_configs",
        "eval_dataset": "student_mental_test",
        "max_samples": examples,
        "output_dir": "saves/lf-predict",
        "report_to": "none",
        "overwrite_output_dir": True,
    }
    if max_new is not None:
        config["max_new_tokens"] = max_new
    path = project.root / "lf_predict.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = Path(sys.executable).with_name("llamafactory-cli")
    start = time.perf_counter()
    result = subprocess.run(
        [str(cli), "train", str(path)],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"llamafactory-cli failed:\n{result.stderr[-3000:]}")
    out = project.root / "saves/lf-predict"
    runtime = json.loads((out / "predict_results.json").read_text()).get("predict_runtime")
    return {"wall": wall, "runtime": runtime, "predictions": out / "generated_predictions.jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--lf-max-new-tokens", type=int, default=None, help="default: LLaMA-Factory's (1024)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_dir = prepare_model(Catalog(Project(ROOT)), "smollm2-135m", log=lambda m: print(m, file=sys.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), args.examples)
        task = Catalog(project).task()
        adapter = project.root / "saves/smollm2-135m/lora/sft"
        make_adapter(model_dir, adapter)
        print(f"orch eval (constrained) on {args.examples} examples ...", file=sys.stderr)
        start = time.perf_counter()
        ours = evaluate(
            project,
            task,
            Scored(Run("smollm2-135m", "lora", "sft")),
            split="test",
            batch_size=args.batch_size,
            progress=lambda d, t: print(f"  {d}/{t}", file=sys.stderr, end="\r"),
        )
        ours_wall = time.perf_counter() - start
        print(f"\nLLaMA-Factory do_predict on {args.examples} examples ...", file=sys.stderr)
        lf = run_llamafactory(project, model_dir, adapter, args.examples, args.lf_max_new_tokens)
        lf_scored = score_predictions_file(project, task, lf["predictions"]).metrics
    n = args.examples
    ours_eps, lf_eps = n / ours.metrics["seconds"], n / lf["runtime"]
    rows = [
        (
            "orch eval --decoding constrained",
            f"{ours_eps:.2f}",
            f"{n / ours_wall:.2f}",
            f"{ours.metrics['valid_rate']:.0%}",
        ),
        (
            f"LLaMA-Factory do_predict (max_new_tokens {args.lf_max_new_tokens or 1024})",
            f"{lf_eps:.2f}",
            f"{n / lf['wall']:.2f}",
            f"{lf_scored['valid_rate']:.0%}",
        ),
    ]
    print("| method | examples/s (decoding) | examples/s (wall, incl. load) | schema-valid |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nratio (decoding throughput, orch / LLaMA-Factory): {ours_eps / lf_eps:.1f}x")


if __name__ == "__main__":
    main()
