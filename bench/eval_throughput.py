#!/usr/bin/env python
"""Benchmark: scoring against its floor and against LLaMA-Factory's do_predict, same model, adapter, examples.

SmolLM2-135M-Instruct (prepared by `orch models prepare`) with a LoRA adapter
(rank 8 on every linear layer, freshly initialised: throughput does not
depend on the adapter's values, and an untrained model is what shows how
free generation behaves), on N examples of the task's data, on this CPU.

    (a) floor: one plain forward over every prompt (same length-sorted batches, last logits only)
    (b) orch eval --decoding constrained
    (c) orch eval --decoding both
    (d) LLaMA-Factory do_predict at its defaults (max_new_tokens 1024)
    (e) LLaMA-Factory do_predict at max_new_tokens = the longest valid answer (the fairest setting for it)

Times exclude model loading on every side. Prints a table, the ratios, and one machine-readable line:
`floor_ratio=(b)/(a) lf_default_ratio=(d)/(b) lf_fair_ratio=(e)/(b) valid=<share of (b) schema-valid>`.

    .venv/bin/python bench/eval_throughput.py [--examples 16] [--skip-lf-default]
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
from orchestrator.evaluation import decoding  # noqa: E402
from orchestrator.evaluation.evaluate import (  # noqa: E402
    Scored,
    evaluate_decodings,
    gold_rows,
    load_for_eval,
    score_predictions_file,
    training_config,
)
from orchestrator.evaluation.prompts import load_template, prompt_ids  # noqa: E402
from orchestrator.layout import Run  # noqa: E402
from orchestrator.prepare import prepare_model  # noqa: E402
from orchestrator.project import Project  # noqa: E402

LF_DEFAULT_MAX_NEW = 1024


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


def floor_seconds(project: Project, task, run: Run, batch_size: int | None) -> tuple[float, int]:
    """(seconds, prompt tokens) of one plain forward over every prompt, batched as orch batches them."""
    import torch

    train_dir = project.root / "saves/smollm2-135m/lora/sft"
    model, tokenizer, template_name = load_for_eval(project, train_dir, training_config(project, train_dir), False)
    template = load_template(tokenizer, template_name)
    prompts = [prompt_ids(template, tokenizer, row) for row in gold_rows(project, task, "test")]
    size = batch_size or decoding.auto_batch_size(model, max(len(p) for p in prompts))
    pad = decoding._pad_id(tokenizer)
    start = time.perf_counter()
    with torch.no_grad():
        for batch in decoding.length_sorted_batches(prompts, size):
            width = max(len(prompts[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(batch):
                ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]) :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1)
    return time.perf_counter() - start, sum(len(p) for p in prompts)


def run_llamafactory(project: Project, model_dir: Path, adapter: Path, examples: int, max_new: int) -> dict:
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
        "output_dir": f"saves/lf-predict-{max_new}",
        "report_to": "none",
        "overwrite_output_dir": True,
        "max_new_tokens": max_new,
    }
    path = project.root / f"lf_predict_{max_new}.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = Path(sys.executable).with_name("llamafactory-cli")
    result = subprocess.run(
        [str(cli), "train", str(path)],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    if result.returncode != 0:
        sys.exit(f"llamafactory-cli failed:\n{result.stderr[-3000:]}")
    out = project.root / config["output_dir"]
    runtime = json.loads((out / "predict_results.json").read_text())["predict_runtime"]
    return {"seconds": runtime, "predictions": out / "generated_predictions.jsonl"}


def longest_answer_tokens(model_dir: Path, task) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    longest = {name: max(task.field_values(name), key=lambda v: len(str(v))) for name in task.field_names}
    return len(tokenizer.encode(task.canonical_answer(longest), add_special_tokens=False)) + 1  # + end token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=None, help="default: chosen from free memory")
    parser.add_argument("--skip-lf-default", action="store_true", help="skip (d), the slowest row")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    n = args.examples
    model_dir = prepare_model(Catalog(Project(ROOT)), "smollm2-135m", log=lambda m: print(m, file=sys.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), n)
        task = Catalog(project).task()
        run = Run("smollm2-135m", "lora", "sft")
        make_adapter(model_dir, project.root / "saves/smollm2-135m/lora/sft")
        adapter = project.root / "saves/smollm2-135m/lora/sft"
        print(f"(a) floor on {n} examples ...", file=sys.stderr)
        floor, tokens = floor_seconds(project, task, run, args.batch_size)
        print("(b) orch constrained ...", file=sys.stderr)
        ours = evaluate_decodings(project, task, Scored(run), decodings=("constrained",), batch_size=args.batch_size)
        print("(c) orch both ...", file=sys.stderr)
        both = evaluate_decodings(project, task, Scored(run), batch_size=args.batch_size)
        fair_budget = longest_answer_tokens(model_dir, task)
        print(f"(e) LLaMA-Factory do_predict, max_new_tokens {fair_budget} ...", file=sys.stderr)
        fair = run_llamafactory(project, model_dir, adapter, n, fair_budget)
        fair_valid = score_predictions_file(project, task, fair["predictions"]).metrics["valid_rate"]
        default = None
        if not args.skip_lf_default:
            print(f"(d) LLaMA-Factory do_predict, max_new_tokens {LF_DEFAULT_MAX_NEW} ...", file=sys.stderr)
            default = run_llamafactory(project, model_dir, adapter, n, LF_DEFAULT_MAX_NEW)
            default["valid"] = score_predictions_file(project, task, default["predictions"]).metrics["valid_rate"]
    b = ours["constrained"].metrics
    c = both["constrained"].metrics
    rows = [
        ("(a) floor: one forward over the prompts", floor, None),
        ("(b) orch constrained", b["seconds"], b["valid_rate"]),
        ("(c) orch both (constrained + free)", c["seconds"], both["free"].metrics["valid_rate"]),
    ]
    if default is not None:
        rows.append(
            (f"(d) LLaMA-Factory do_predict, max_new_tokens {LF_DEFAULT_MAX_NEW}", default["seconds"], default["valid"])
        )
    rows.append((f"(e) LLaMA-Factory do_predict, max_new_tokens {fair_budget}", fair["seconds"], fair_valid))
    print(f"{n} examples, {tokens / n:.0f} prompt tokens each on average; times exclude model loading\n")
    print("| method | seconds | examples/s | x the floor's time | schema-valid |")
    print("|---|---|---|---|---|")
    for name, seconds, valid in rows:
        shown = "n/a" if valid is None else f"{valid:.0%}"
        print(f"| {name} | {seconds:.1f} | {n / seconds:.2f} | {seconds / floor:.2f} | {shown} |")
    default_ratio = default["seconds"] / b["seconds"] if default else float("nan")
    print(
        f"\nfloor_ratio={b['seconds'] / floor:.2f} lf_default_ratio={default_ratio:.1f} "
        f"lf_fair_ratio={fair['seconds'] / b['seconds']:.2f} valid={b['valid_rate']:.2f}"
    )


if __name__ == "__main__":
    main()
