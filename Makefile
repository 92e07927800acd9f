# The two commands: `make demo` (set up, then run the main job) and `make test`.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.orch-setup
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup test lint demo demo-long bench render clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-venv.sh
	bash scripts/setup-venv.sh
	touch $@

lint: setup
	$(BIN)/ruff check orchestrator tests bench

test: setup lint
	$(BIN)/python -m pytest

render: setup
	$(BIN)/orch render --all

demo: setup
	bash scripts/demo.sh

# The longer run of the demo configuration and its learning curve (README: the learning curve).
demo-long: setup
	DEMO_STEPS=150 bash scripts/demo.sh

bench: setup
	$(BIN)/python bench/validate_all.py

clean-venv:
	rm -rf $(VENV)
