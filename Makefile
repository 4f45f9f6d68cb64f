# Set-up and the two Quickstart jobs. Everything lives in .venv; nothing is installed
# system-wide. torch 2.13.0 (CPU build) is installed first unless the venv already has a
# torch, so GPU users can bring their own CUDA build:  make setup TORCH="torch==2.13.0".
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,cjk,models,ray,onnx,peft
DEMO_OUT ?= demo-out

.PHONY: setup demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/xlre demo --out $(DEMO_OUT)

test: setup
	$(BIN)/python -m pytest -q

# ruff, then the import contracts of pyproject.toml (layered stages, no cycles).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python scripts/bench_all.py --out benchmarks.json

clean:
	rm -rf $(VENV) out demo-out .pytest_cache .ruff_cache
