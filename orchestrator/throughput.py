"""Training throughput: tokens per second and model-FLOPs utilisation (MFU) of a run.

Tokens are what the trainer counted (`include_num_input_tokens_seen`, which the
shipped configs turn on; LLaMA-Factory logs `throughput` and `total_tokens`).
FLOPs per token are the usual 6·N estimate (forward and backward over the N
non-embedding parameters of the base model, built on the meta device from its
config; LoRA still runs the whole model both ways). The peak is the device's
dense bf16 tensor-core rate from a small table, or `peak_tflops` in
`templates/project.yaml` / `$ORCH_PEAK_TFLOPS` for anything else; with no peak
known, MFU is not shown rather than guessed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from orchestrator import outputs

# Dense bf16/fp16 tensor-core TFLOPS per GPU, by a substring of the device name (most specific first).
PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "H200": 989.0,
    "GH200": 989.0,
    "B200": 2250.0,
    "A100": 312.0,
    "A800": 312.0,
    "H800": 989.0,
    "L40S": 362.0,
    "L40": 181.0,
    "A40": 149.7,
    "A6000": 154.8,
    "A10": 125.0,
    "L4": 121.0,
    "V100": 125.0,
    "T4": 65.0,
    "RTX 4090": 165.2,
    "RTX 3090": 71.0,
}
PEAK_ENV = "ORCH_PEAK_TFLOPS"


def device_name() -> tuple[str, int]:
    """(the accelerator's name, how many this job sees): from nvidia-smi, else ('cpu', 1).

    Asked of nvidia-smi, not torch, so the supervising process never creates a CUDA context.
    """
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            result = subprocess.run(
                [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            result = None
        names = [n.strip() for n in (result.stdout if result and result.returncode == 0 else "").splitlines()]
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        count = len([d for d in visible.split(",") if d.strip()]) if visible else len(names)
        if names and count:
            return names[0], count
    return "cpu", 1


def peak_tflops(device: str | None, configured: Any = None) -> float | None:
    """The per-device peak: the configured value, else the table's entry for the device, else None."""
    for value in (os.environ.get(PEAK_ENV), configured):
        if value not in (None, ""):
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
    if not device:
        return None
    for name, tflops in PEAK_TFLOPS.items():
        if name.lower() in device.lower():
            return tflops
    return None


@cache
def non_embedding_params(model_dir: str) -> int | None:
    """Parameters of the model outside its embeddings, counted on the meta device (no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(model_dir)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception:  # noqa: BLE001 - an architecture this transformers cannot build: no estimate
        return None
    embeddings = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    head = model.get_output_embeddings()
    if head is not None:
        embeddings |= {id(p) for p in head.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


@dataclass(frozen=True)
class Throughput:
    """A training run's measured speed and what share of the hardware's peak it used."""

    tokens_per_s: float | None = None
    tokens: int | None = None
    mfu: float | None = None
    device: str | None = None
    devices: int = 1


def measure(
    output_dir: Path, model_dir: Path | None, device: str | None, devices: int, peak: float | None
) -> Throughput:
    """Throughput of a run from its trainer log; MFU when the model and the peak are known."""
    entries = [e for e in outputs.trainer_log(output_dir) if isinstance(e.get("throughput"), (int, float))]
    if not entries:
        return Throughput(device=device, devices=devices)
    last = entries[-1]
    rate = float(last["throughput"])
    tokens = last.get("total_tokens") if isinstance(last.get("total_tokens"), int) else None
    params = non_embedding_params(str(model_dir)) if model_dir is not None else None
    mfu = None
    if params and peak:
        mfu = rate * 6 * params / (peak * 1e12 * max(1, devices))
    return Throughput(rate, tokens, mfu, device, devices)


def run_throughput(project: Any, run: Any, output_dir: Path) -> Throughput:
    """A training run's throughput, with the device its last start recorded and the model from its config."""
    from orchestrator import inputs, ledger
    from orchestrator.models import resolve_model
    from orchestrator.runs import ORCH_CONFIG
    from orchestrator.stages import Event

    starts = [r for r in ledger.for_run(project.ledger, run.name) if r.get("event") in Event.STARTS]
    device = starts[-1].get("device") if starts else None
    devices = starts[-1].get("devices") if starts and isinstance(starts[-1].get("devices"), int) else 1
    model_dir = None
    config_path = output_dir / ORCH_CONFIG
    if config_path.is_file():
        try:
            config = inputs.read_yaml_mapping(config_path)
            model_dir = resolve_model(project, str(config.get("model_name_or_path", ""))).path
        except Exception:  # noqa: BLE001 - no model here: tokens/s without MFU
            model_dir = None
    peak = peak_tflops(device, project.settings.get("peak_tflops"))
    return measure(output_dir, model_dir, device, devices, peak)
