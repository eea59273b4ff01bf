# wqkit: the two commands a newcomer needs are `make demo` and `make test`.
# Both set up whatever is missing first (idempotent: a second run costs seconds).

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test test-unit

setup:
	bash scripts/setup.sh
	$(BIN)/wqkit lab provision

demo: setup
	$(BIN)/wqkit lab smoke

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

# The fast tests only: no lab boot.
test-unit: setup
	$(BIN)/pytest -m "not lab" $(PYTEST_ARGS)
