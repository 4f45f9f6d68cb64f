# Set-up and the two Quickstart jobs. Everything lives in .venv; nothing is installed
# system-wide. torch 2.13.0 (CPU build) is installed first unless the venv already has a
# torch, so GPU users can bring their own CUDA build:  make setup TORCH="torch==2.13.0".
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,cjk,models
DEMO_OUT ?= out/demo

.PHONY: setup demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	@mkdir -p $(DEMO_OUT)
	$(BIN)/xlre align --corpus corpora/demo-en-fr/parallel.tsv --src-lang en --tgt-lang fr \
		--out $(DEMO_OUT)/demo.links --scores-out $(DEMO_OUT)/demo.scores
	@echo "links: $(DEMO_OUT)/demo.links (one line per pair of corpora/demo-en-fr/parallel.tsv)"
	@head -n 3 $(DEMO_OUT)/demo.links
	rm -rf $(DEMO_OUT)/run
	$(BIN)/xlre annotate --corpus corpora/demo-en-fr/parallel.tsv --src-lang en --tgt-lang fr \
		--kb corpora/demo-en-fr/kb --out $(DEMO_OUT)/run --shard-size 1000
	$(BIN)/xlre runs show $(DEMO_OUT)/run
	rm -rf $(DEMO_OUT)/tiny-encoder $(DEMO_OUT)/model
	$(BIN)/xlre init-model --tiny --run $(DEMO_OUT)/run --out $(DEMO_OUT)/tiny-encoder
	$(BIN)/xlre train --run $(DEMO_OUT)/run --model $(DEMO_OUT)/tiny-encoder \
		--out $(DEMO_OUT)/model --config corpora/demo-en-fr/train-tiny.toml
	@echo "model, metrics.json and PR curves: $(DEMO_OUT)/model"

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python scripts/bench_align.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
