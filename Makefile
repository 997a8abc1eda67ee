# bgeq: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bgeq-installed
# `make run` runs these profiles in sequence (the offline model's quality, then bge-large's shape), 09 last
PROFILES ?= default bge-large-random
FULL_PROFILES ?= full bge-large-random-full
# torch is pinned to the CPU build that installs offline here; on a GPU machine use TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
# installed on a CUDA machine only (see setup); keep in step with the gpu extra in pyproject.toml
ORT_GPU_SPEC ?= onnxruntime-gpu>=1.20
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help setup report-check run run-full run-bge-large-random run-bge-large bench lint test test-unit test-notebooks notebooks report reference clean-venv

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[notebooks,test,backends]"
	@# a CUDA machine also gets the gpu extra; onnxruntime-gpu is reinstalled last because it ships the same
	@# onnxruntime package as the CPU build, and the files installed last are the ones imported
	@if nvidia-smi -L >/dev/null 2>&1; then \
		echo "CUDA GPU visible: installing the gpu extra (onnxruntime-gpu, nvidia-ml-py)"; \
		$(PY) -m pip install -q -e ".[gpu]" && \
		$(PY) -m pip install -q --force-reinstall --no-deps "$(ORT_GPU_SPEC)"; \
	fi
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (bgeq)" >/dev/null
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install bgeq with notebook and test extras (offline-capable)

run: $(STAMP) ## the main job: every method's default configuration, quality on lee + bge-large's shape, then the report
	$(PY) -m bgeq_utils.cli.runner --profile $(PROFILES)

run-full: $(STAMP) ## the main job with every variant sweep and longer timing windows (outputs/full, outputs/bge-large-random-full)
	$(PY) -m bgeq_utils.cli.runner --profile $(FULL_PROFILES)

run-bge-large-random: $(STAMP) ## notebooks on bge-large's architecture with random weights (size/memory/speed)
	$(PY) -m bgeq_utils.cli.runner --profile bge-large-random

run-bge-large: $(STAMP) ## the real BAAI/bge-large-en-v1.5 on BEIR scifact (needs internet once)
	$(PY) -m bgeq_utils.cli.runner --profile bge-large

bench: $(STAMP) ## speed suite: every method side by side on the bge-large preset (prints figures)
	$(PY) -m bgeq_utils.cli.benchmark $(BENCH_ARGS)

lint: $(STAMP) ## ruff on the package, scripts and tests, and the layering contract (both set in pyproject.toml)
	$(PY) -m ruff check bgeq_utils scripts tests conftest.py
	$(VENV)/bin/lint-imports --no-cache

NBVAL := -m pytest -q --durations=10 --nbval-lax --sanitize-with tests/notebooks/nbval_sanitize.cfg -p no:cacheprovider notebooks \
	tests/notebooks/check_values.py

test: $(STAMP) ## unit tests, then the notebooks replayed (nbval) and their recorded figures checked
	$(PY) -m pytest -q -m "not slow and not gpu" --durations=10 tests
	$(PY) $(NBVAL)

test-unit: $(STAMP) ## unit tests only
	$(PY) -m pytest -q -m "not gpu" tests

test-notebooks: $(STAMP) ## the notebooks replayed (nbval) and their recorded figures checked, only
	$(PY) $(NBVAL)

notebooks: $(STAMP) ## re-execute the committed notebooks in place (default profile; outputs to a temp folder)
	BGEQ_OUTPUTS=$$(mktemp -d) $(PY) -m bgeq_utils.cli.refresh

RUN ?= default
report-check: $(STAMP) ## open outputs/$(RUN)/report.html in headless Chromium at 1400 and 400 px: fails if it scrolls sideways; screenshots
	$(PY) scripts/report_check.py --run $(RUN)

reference: $(STAMP) ## after make run: copy its Results, report, ledger and comparison into outputs/reference/ (committed)
	$(PY) scripts/ship_reference.py

report: $(STAMP) ## rebuild only the comparison and report.html of the main job (outputs/default/report.html)
	$(PY) -m bgeq_utils.cli.runner --profile $(PROFILES) --notebooks 09

clean-venv: ## remove the virtual environment (outputs are kept)
	rm -rf $(VENV)
