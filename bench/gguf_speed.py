#!/usr/bin/env python
"""Benchmark: the demo model scored through transformers (fp32) and through llama.cpp (F16, Q4_K_M), same prompts.

SmolLM2-135M-Instruct (prepared by `orch models prepare`) converted with llama.cpp's own converter and
quantizer (from the pinned llama-cpp-python source distribution), on N examples of the task's test split,
on this CPU. For each backend:

    constrained scoring, one example at a time (batch 1: what an app does)     examples/s
    greedy decoding at batch 1 after the first prompt, 32 tokens               tokens/s
    file size of what must be shipped                                          MB

Model loading is excluded. Prints a table, the ratios against transformers, and one machine-readable line:
`q4_scoring_ratio=<Q4 ex/s / fp32 ex/s> q4_decode_ratio=<Q4 tok/s / fp32 tok/s> q4_size_ratio=<Q4 MB / fp32 MB>
f16_agree=<share of examples whose constrained answers equal fp32's> q4_agree=<same for Q4_K_M>`.

    .venv/bin/python bench/gguf_speed.py [--examples 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator import llamacpp  # noqa: E402
from orchestrator.catalog import Catalog  # noqa: E402
from orchestrator.evaluation import decoding  # noqa: E402
from orchestrator.evaluation.evaluate import gold_rows  # noqa: E402
from orchestrator.evaluation.prompts import load_template, prompt_ids  # noqa: E402
from orchestrator.prepare import prepare_model  # noqa: E402
from orchestrator.project import Project  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--examples", type=int, default=8)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(max(1, torch.get_num_threads()))
    catalog = Catalog(Project(ROOT))
    task = catalog.task()
    model_dir = prepare_model(catalog, "smollm2-135m", log=lambda _m: None)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    template = load_template(tokenizer, "smollm2")
    rows = gold_rows(catalog.project, task, "test", limit=args.examples)
    prompts = [prompt_ids(template, tokenizer, row) for row in rows]
    longest = max(len(p) for p in prompts) + 64

    results: dict[str, dict] = {}
    started = time.perf_counter()
    reference = [decoding.constrained(model, tokenizer, task, [p])[0].labels for p in prompts]
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
    results["transformers fp32"] = {
        "examples_per_s": len(prompts) / seconds,
        "tokens_per_s": decoding.decode_speed(model, prompts[0]),
        "mb": size / 1e6,
        "agree": 1.0,
    }
    with tempfile.TemporaryDirectory() as tmp:
        f16, q4 = Path(tmp) / "F16.gguf", Path(tmp) / "Q4_K_M.gguf"
        llamacpp.convert(model_dir, f16, log=lambda _m: None)
        llamacpp.quantize(f16, q4, "Q4_K_M")
        for name, path in (("llama.cpp F16", f16), ("llama.cpp Q4_K_M", q4)):
            gguf = llamacpp.GgufModel(path, n_ctx=longest)
            started = time.perf_counter()
            answers = [llamacpp.constrained_one(gguf, tokenizer, task, p).labels for p in prompts]
            seconds = time.perf_counter() - started
            results[name] = {
                "examples_per_s": len(prompts) / seconds,
                "tokens_per_s": llamacpp.decode_speed(gguf, prompts[0]),
                "mb": path.stat().st_size / 1e6,
                "agree": sum(a == r for a, r in zip(answers, reference, strict=True)) / len(prompts),
            }
            gguf.close()

    print(f"{len(prompts)} test examples, prompts {min(map(len, prompts))}-{max(map(len, prompts))} tokens\n")
    print("| backend | constrained ex/s (batch 1) | decode tok/s (batch 1) | MB | answers = fp32 |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['examples_per_s']:.2f} | {r['tokens_per_s']:.1f} | {r['mb']:.1f} | {r['agree']:.0%} |")
    fp32, q4r, f16r = results["transformers fp32"], results["llama.cpp Q4_K_M"], results["llama.cpp F16"]
    ratios = {
        "q4_scoring_ratio": q4r["examples_per_s"] / fp32["examples_per_s"],
        "q4_decode_ratio": q4r["tokens_per_s"] / fp32["tokens_per_s"],
        "q4_size_ratio": q4r["mb"] / fp32["mb"],
        "f16_agree": f16r["agree"],
        "q4_agree": q4r["agree"],
    }
    print("\nratios against transformers fp32: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print(" ".join(f"{k}={v:.3f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
