# wqkit: the two commands a newcomer needs are `make demo` and `make test`.
# Both set up whatever is missing first (idempotent: a second run costs seconds).

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

# Modules by the seed's target names (wq-insert-exec, ...: modules/Makefile
# lists them), built against the lab kernel (its Kbuild tree, provisioned in
# the cache) by default.
KDIR ?= $(shell $(BIN)/python -c 'from wqkit.lab import LabKernel; print(LabKernel.stock().build_dir)')
.PHONY: setup demo test test-unit test-debug-kernel test-debug test-7x report lab-notebook modules

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

# Everything but the debug kernel's checks (their kernel takes 30 min to build on 2 cores: CI runs
# them next, with `make test-debug-kernel`).
DEBUG_KERNEL_TESTS := tests/test_debug_kernel.py
test: setup
	$(BIN)/pytest --ignore=$(DEBUG_KERNEL_TESTS) $(PYTEST_ARGS)

# The debug kernel (KASAN, UBSAN, lockdep, kmemleak...) built once, a module, the kserver fuzzer and
# each kind of bug the checks are there for on it.
test-debug-kernel: setup
	$(BIN)/pytest $(DEBUG_KERNEL_TESTS) $(PYTEST_ARGS)

# The fast tests only: no lab boot.
test-unit: setup
	$(BIN)/pytest -m "not lab" $(PYTEST_ARGS)

# The modules' lab tests on the debug kernel (KASAN, UBSAN, lockdep, debug objects, kmemleak,
# watchdogs), then on the KCSAN kernel: any kernel report fails a test. Each kernel is built once
# (about 15 min on 2 cores, cached).
MODULE_LAB_TESTS := tests/test_kmod_lab.py tests/test_recorder_lab.py tests/test_kserver_lab.py \
	tests/test_experiments_lab.py tests/test_trace.py tests/test_module_params_lab.py
test-debug: setup
	$(BIN)/pytest -m lab --lab-kernel debug $(MODULE_LAB_TESTS) tests/test_debug_kernel.py $(PYTEST_ARGS)
	$(BIN)/pytest -m lab --lab-kernel kcsan $(MODULE_LAB_TESTS) $(PYTEST_ARGS)

# The lab tests of today's kernels on wqkit's Linux 7.3 builds (vanilla and patched, each built
# once from Debian's linux-source-7.3, about 7 min on 2 cores, cached): inspection (in the guest,
# over QMP, on a vmcore), modules, experiments, kserver, machine shapes and the monitor's affinity
# scopes against wq_dump.py, strict scopes (cache_shard too), BH workqueues, every module
# parameter, the kernel's own test_workqueue, the patch series' 7.3 port, both tracer engines and
# the notebooks. `make test` runs them on 6.12 only: CI does not build 7.3.
LINUX7_LAB_TESTS := tests/test_inspect_lab.py tests/test_experiments_lab.py tests/test_kmod_lab.py \
	tests/test_recorder_lab.py tests/test_kserver_lab.py tests/test_upstream_lab.py \
	tests/test_topology_lab.py tests/test_module_params_lab.py tests/test_patched_lab.py \
	tests/test_trace.py tests/test_notebooks.py
test-7x: setup
	$(BIN)/wqkit lab provision --kernel 7.3
	$(BIN)/pytest -m lab --lab-kernel 7.3 $(LINUX7_LAB_TESTS) $(PYTEST_ARGS)

modules:
	$(MAKE) -C modules KDIR=$(KDIR)

wq-%:
	$(MAKE) -C modules $@ KDIR=$(KDIR)
