# Two commands set everything up on a fresh clone: `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
EVENT ?= events/chat_completion.json

.PHONY: dev test test-unit lint format invoke bench batch clean venv

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

bench: $(STAMP)
	$(PY) -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
