# `make run` and `make test` work on a fresh machine with Python 3.11: they create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: setup run test bench index serve clean

setup: $(STAMP)

# torch 2.13.0 (CPU build) goes in first: a bare `torch` requirement would pull GBs of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/assistant index
	$(BIN)/streamlit run streamlit_app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: $(STAMP)
	-bash tests/install_browser.sh
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

index: $(STAMP)
	$(BIN)/assistant index

serve: $(STAMP)
	$(BIN)/assistant serve

clean:
	rm -rf $(VENV) index/chroma index/bm25-g* index/manifest.json .pytest_cache
