# The two commands: `make demo` (set up, then run the main job) and `make test`.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.orch-setup
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup test lint demo bench render clean-venv

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
	$(BIN)/orch models prepare smollm2-135m
	$(BIN)/orch render --all --check
	$(BIN)/orch validate smollm2-135m --method lora -q
	@echo
	@echo "make demo: training, evaluation and the report are not yet available (issue #6)."
	@echo "What ran: setup, the SmolLM2 demo model prepared, configs rendered and validated."

bench: setup
	$(BIN)/python bench/validate_all.py

clean-venv:
	rm -rf $(VENV)
