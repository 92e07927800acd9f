#!/usr/bin/env bash
# Create .venv with orch, the pinned LLaMA-Factory and CPU-only torch.
# Idempotent; `make setup` runs it when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# This machine kind has a CPU build of torch 2.13.0 on local disk. It must be
# pinned in the same pip command as llamafactory, or torchvision drags in a
# CUDA torch and ~4 GB of wheels. On a GPU cluster set TORCH_SPEC to the
# CUDA build you want (see README, "Install on a GPU cluster").
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
echo "installing orch, llamafactory==0.9.5 and $TORCH_SPEC into .venv (about 2 minutes the first time) ..."
.venv/bin/python -m pip install -q --progress-bar off "$TORCH_SPEC" -e ".[dev]"

# PyPI's torchvision/torchaudio are CUDA builds that do not load beside a CPU
# torch; text-only training needs neither. transformers breaks on a broken
# torchvision, and LLaMA-Factory imports torchaudio at top level, so: drop
# torchvision, and let torchaudio import as pure Python.
if ! .venv/bin/python -c "import torchvision" >/dev/null 2>&1; then
  echo "removing torchvision (a CUDA build that cannot load beside CPU torch)"
  .venv/bin/python -m pip uninstall -q -y torchvision
fi
if ! .venv/bin/python -c "import torchaudio" >/dev/null 2>&1; then
  echo "disabling torchaudio's compiled extensions (CUDA build)"
  rm -f .venv/lib/python3*/site-packages/torchaudio/lib/*.so
fi
.venv/bin/python -c "import llamafactory.hparams, orchestrator" 2>/dev/null
echo "setup done: $(.venv/bin/python -c 'import llamafactory, torch, transformers; print(f"llamafactory {llamafactory.__version__}, torch {torch.__version__}, transformers {transformers.__version__}")')"
