# wqkit: the two commands a newcomer needs are `make demo` and `make test`.
# Both set up whatever is missing first (idempotent: a second run costs seconds).

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

# Modules by the seed's target names (wq-insert-exec, ...: modules/Makefile
# lists them), built against the lab kernel (its Kbuild tree, provisioned in
# the cache) by default.
KDIR ?= $(shell $(BIN)/python -c 'from wqkit.lab import LabKernel; print(LabKernel.stock().build_dir)')
.PHONY: setup demo test test-unit report lab-notebook modules

setup:
	bash scripts/setup.sh
	$(BIN)/wqkit lab provision
	$(BIN)/wqkit lab provision --kernel 6.1

# The smoke run, then the insert_exec report from a fresh lab run.
demo: setup
	$(BIN)/wqkit lab smoke
	$(MAKE) report

# An HTML report (reports/) of a notebook: make report NOTEBOOK=exec_time_pred NR=5000
NOTEBOOK ?= insert_exec
NR ?= 1000
report: setup
	$(BIN)/wqkit report notebooks/$(NOTEBOOK).ipynb -p nr $(NR)

# JupyterLab on notebooks/ from the venv (its kernel has wqkit): open the URL it prints.
lab-notebook: setup
	$(BIN)/wqkit notebook

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

# The fast tests only: no lab boot.
test-unit: setup
	$(BIN)/pytest -m "not lab" $(PYTEST_ARGS)

modules:
	$(MAKE) -C modules KDIR=$(KDIR)

wq-%:
	$(MAKE) -C modules $@ KDIR=$(KDIR)
