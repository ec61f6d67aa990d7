# Two commands set everything up on a fresh clone: `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
EVENT ?= events/chat_completion.json

.PHONY: dev test test-unit lint format invoke bench bench-peers load batch build clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Run the gateway locally: embedded AWS emulation, echo model, demo project.
## The local commands and the config/keys CLI are `gatewayctl` (tools/gatewayctl, never deployed).
dev: $(STAMP)
	PORT=$(PORT) $(PY) -m gatewayctl dev

## Run every test (lint included, so CI checks it too).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## Only the fast unit layer (`@pytest.mark.unit`: no HTTP server, no subprocess).
test-unit: $(STAMP)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check src tools tests benchmarks
	$(PY) -m ruff format --check src tools tests benchmarks
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(PY) -m ruff format src tools tests benchmarks
	$(PY) -m ruff check --fix src tools tests benchmarks

## Run the Lambda handler in-process on an event file: make invoke EVENT=events/chat_completion.json
invoke: $(STAMP)
	$(PY) -m gatewayctl invoke $(EVENT)

## Run a JSONL batch file (OpenAI batch format) through the batch pipeline, locally:
## make batch FILE=events/batch_example.jsonl [OUT=results.jsonl]
batch: $(STAMP)
	@test -n "$(FILE)" || { echo "usage: make batch FILE=requests.jsonl [OUT=path]"; exit 2; }
	$(PY) -m gatewayctl batch $(FILE) $(if $(OUT),--out $(OUT))

## Build what deploys (.aws-sam/build), CPython 3.13 bytecode included (layers/deps/Makefile,
## src/Makefile): `sam build` with a Python 3.13 of this machine (python3.13 on PATH, or
## PYTHON313=/path/to/python3.13), else `sam build --use-container` (SAM's python3.13 build image).
build:
	@if [ -n "$(PYTHON313)" ]; then \
	  PYTHON313="$(PYTHON313)" sam build $(SAM_ARGS); \
	elif python3.13 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then \
	  sam build $(SAM_ARGS); \
	elif docker info >/dev/null 2>&1; then \
	  sam build --use-container $(SAM_ARGS); \
	else \
	  echo "make build: no Python 3.13 here (python3.13 on PATH, or PYTHON313=/path/to/python3.13) and no" >&2; \
	  echo "  Docker for \`sam build --use-container\`: nothing can produce the CPython 3.13 bytecode that ships." >&2; \
	  exit 2; \
	fi

bench: $(STAMP)
	$(PY) -m benchmarks.run $(BENCH_ARGS)

## Load on loopback only: 5,000 requests at concurrency 50 and 500 streams at concurrency 100 against
## `gatewayctl dev` on a free port; 0 errors and every answered completion in the table, or exit 1.
load: $(STAMP)
	$(PY) -m benchmarks.load $(LOAD_ARGS)

## LiteLLM's proxy for the peer rows of `make bench`, in a venv of its own (never the project's)
PEERS ?= .venv-peers
bench-peers:
	test -x $(PEERS)/bin/litellm || ($(PYTHON) -m venv $(PEERS) && $(PEERS)/bin/pip install --quiet 'litellm[proxy]')
	BENCH_LITELLM=$(abspath $(PEERS))/bin/litellm $(MAKE) bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
