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

# llama.cpp, for the gguf stage and for scoring GGUF models: PyPI's
# llama-cpp-python source distribution, pinned. Built once (about 5 minutes on
# 2 cores; pip caches the wheel, so a later setup takes seconds); its
# converter script (vendor/llama.cpp/convert_hf_to_gguf.py, with gguf-py) is
# used from the unpacked source at run time (orchestrator/llamacpp.py finds it
# by the installed version). No llama.cpp code is committed here.
LLAMA_CPP_PYTHON=0.3.36
SDIST=llama_cpp_python-$LLAMA_CPP_PYTHON
mkdir -p .venv/src
if [ ! -f ".venv/src/$SDIST.tar.gz" ]; then
  echo "downloading llama-cpp-python $LLAMA_CPP_PYTHON (source) ..."
  .venv/bin/python -m pip download -q --no-deps --no-binary :all: --progress-bar off \
    "llama-cpp-python==$LLAMA_CPP_PYTHON" -d .venv/src.partial
  mv ".venv/src.partial/$SDIST.tar.gz" ".venv/src/$SDIST.tar.gz" && rm -rf .venv/src.partial
fi
if [ "$(.venv/bin/python -c 'import llama_cpp; print(llama_cpp.__version__)' 2>/dev/null)" != "$LLAMA_CPP_PYTHON" ]; then
  echo "building llama-cpp-python $LLAMA_CPP_PYTHON (llama.cpp; about 5 minutes the first time, cached after) ..."
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" .venv/bin/python -m pip install -q --progress-bar off --no-deps \
    ".venv/src/$SDIST.tar.gz"
fi
# Only the converter's Python parts are unpacked: the script, its `conversion` package and `gguf-py`.
if [ ! -f ".venv/src/$SDIST/vendor/llama.cpp/conversion/__init__.py" ]; then
  rm -rf ".venv/src/$SDIST.partial" && mkdir -p ".venv/src/$SDIST.partial"
  tar -xzf ".venv/src/$SDIST.tar.gz" -C ".venv/src/$SDIST.partial" \
    "$SDIST/vendor/llama.cpp/convert_hf_to_gguf.py" "$SDIST/vendor/llama.cpp/conversion" "$SDIST/vendor/llama.cpp/gguf-py" \
    "$SDIST/vendor/llama.cpp/LICENSE"
  rm -rf ".venv/src/$SDIST" && mv ".venv/src/$SDIST.partial/$SDIST" ".venv/src/$SDIST" && rm -rf ".venv/src/$SDIST.partial"
fi
.venv/bin/python -c "import llama_cpp" 2>/dev/null
echo "setup done: $(.venv/bin/python -c 'import llamafactory, torch, transformers; print(f"llamafactory {llamafactory.__version__}, torch {torch.__version__}, transformers {transformers.__version__}")'), llama-cpp-python $(.venv/bin/python -c 'import llama_cpp; print(llama_cpp.__version__)')"
