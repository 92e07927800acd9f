#!/usr/bin/env python
"""Benchmark: training throughput (tokens/s) and model-FLOPs utilisation (MFU) of a LoRA step, here.

SmolLM2-135M-Instruct (prepared by `orch models prepare`) with a rank-8 LoRA on
every linear layer, AdamW, batches of B sequences of L tokens: bf16 on a GPU,
fp32 on CPU. FLOPs per token are 6·N (N: non-embedding parameters, counted as
`orch status` counts them, `orchestrator.throughput`). The peak is the GPU's
entry in `orchestrator.throughput.PEAK_TFLOPS`; on CPU, the measured rate of a
large fp32 matrix multiply (the most these cores do). Prints a table and one
machine-readable line `tokens_per_s=... mfu=... peak_tflops=... device=...`.

    .venv/bin/python bench/train_throughput.py [--batch 4] [--seq 512] [--steps 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator import throughput  # noqa: E402
from orchestrator.catalog import Catalog  # noqa: E402
from orchestrator.prepare import prepare_model  # noqa: E402
from orchestrator.project import Project  # noqa: E402


def cpu_peak_tflops(size: int = 2048, repeats: int = 5) -> float:
    """The best fp32 matrix-multiply rate of this CPU, in TFLOPS."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model_dir = prepare_model(Catalog(Project(ROOT)), "smollm2-135m", log=lambda m: print(m, file=sys.stderr))
    gpu = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if gpu else "cpu"
    dtype = torch.bfloat16 if gpu else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype).to("cuda" if gpu else "cpu")
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocab = model.config.vocab_size
    batch = torch.randint(0, vocab, (args.batch, args.seq), device=model.device)

    def step() -> None:
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()  # warm up: kernels, allocator, optimizer state
    if gpu:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if gpu:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start

    tokens = args.batch * args.seq * args.steps
    rate = tokens / seconds
    params = throughput.non_embedding_params(str(model_dir)) or 0
    peak = throughput.peak_tflops(device) if gpu else cpu_peak_tflops()
    mfu = rate * 6 * params / (peak * 1e12) if peak else float("nan")
    peak_source = "table" if gpu else "measured fp32 matmul"
    print(f"SmolLM2-135M LoRA r8, batch {args.batch} x {args.seq} tokens, {args.steps} steps on {device}\n")
    print("| device | tokens/s | s/step | non-embedding params | FLOPs/token (6N) | peak TFLOPS | MFU |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {device} | {rate:,.0f} | {seconds / args.steps:.2f} | {params / 1e6:.1f}M | {6 * params / 1e6:.0f}M "
        f"| {peak:.2f} ({peak_source}) | {mfu:.1%} |"
    )
    print(f"\ntokens_per_s={rate:.1f} mfu={mfu:.4f} peak_tflops={peak:.3f} device={device.replace(' ', '_')}")


if __name__ == "__main__":
    main()
