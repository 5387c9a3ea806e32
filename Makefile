# synpref: the whole set-up is `make demo` or `make test` (each creates or reuses .venv).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synpref-installed
DEMO ?= outputs/demo
export SYNPREF_CACHE ?= $(HOME)/.cache/synpref
# vLLM on CPU: fp32 KV cache of 1 GiB, threads bound to every core, caches kept between runs
export VLLM_CPU_KVCACHE_SPACE ?= 1
export VLLM_CACHE_ROOT ?= $(SYNPREF_CACHE)/vllm
export TORCHINDUCTOR_CACHE_DIR ?= $(SYNPREF_CACHE)/inductor
export WANDB_MODE ?= offline
export RAY_USAGE_STATS_ENABLED ?= 0

.PHONY: install demo test test-e2e test-loop bench clean

install: $(STAMP)

$(STAMP): requirements/cpu.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q --no-deps -r requirements/cpu.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -c "import torch, ray, deepspeed, vllm, transformers, synpref" 2>/dev/null
	touch $(STAMP)

demo: install
	$(PY) jobs/pipeline.py output=$(DEMO) $(DEMO_ARGS)

test: install
	$(PY) -m pytest -m "not e2e and not gpu" -q

test-e2e: install
	$(PY) -m pytest -m "e2e and not loop" -q --durations=30

test-loop: install
	$(PY) -m pytest -m "loop" -q --durations=30

bench: install
	$(PY) bench/preprocess_scale.py

clean:
	rm -rf outputs .pytest_cache
