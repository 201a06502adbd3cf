# The two commands of the README: `make demo` and `make test`. Both create .venv and
# install the package (editable, with [dev]) when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export TF_CPP_MIN_LOG_LEVEL ?= 2
# pytest-xdist workers per pytest start: the machine's cores, at most 4 (each
# worker imports TensorFlow or JAX; on 2 cores, 2 workers took the TensorFlow
# run from 524 s to 391 s). Files stay whole on one worker (--dist loadfile), so
# a module's fixtures (exports, trained models) are built once. WORKERS=0 runs
# in this process, e.g. to debug.
WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile

.PHONY: install test test-tf test-jax test-jax-zoo test-slow lint demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

# Default test run: lint, then one pytest start on TensorFlow for the whole suite
# and the docstring examples (`testpaths` and `addopts` in pyproject.toml), then
# one small start on JAX: the layers' contract tests (testing.run_layer_test:
# config, build, calls, a jit-compiled fit step, mixed precision), a fast subset
# of the zoo (every family at depth 1, the 1D models and MultiWienerNet: forward
# pass and .keras round trip) and the examples of layers/utils. Cases marked
# `slow`, and the rest of the layer tests on JAX, run in `make test-slow`.
test: lint test-tf test-jax

test-tf: $(STAMP)
	$(PYTEST)

JAX_PATHS = tests/layers tests/zoo/test_models.py coordgate_keras/layers coordgate_keras/utils
# Doctest items match `coordgate_keras` (their folder's name).
JAX_FAST = (contract or test_models or coordgate_keras) \
	and not train_step and not _d2 and not _d3 and not _d4 and not _d5

test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PYTEST) $(JAX_PATHS) -k "$(JAX_FAST)"

# All zoo tests on JAX (deeper U-Nets, training steps, parameter counts, model
# table): 2 min 57 s of CPU measured for tests/zoo alone, so not in the default run.
test-jax-zoo: $(STAMP)
	KERAS_BACKEND=jax $(PYTEST) tests/zoo

# What leaves the default run for time: the cases marked @pytest.mark.slow
# (subprocess trainings, 256x256 exports, benchmark smoke runs, deep round trips),
# and the layer tests on JAX beyond the contracts. CI runs it after `make test`.
test-slow: $(STAMP)
	$(PYTEST) -m slow
	KERAS_BACKEND=jax $(PYTEST) tests/layers -k "not ($(JAX_FAST))"

demo: $(STAMP)
	$(BIN)/coordgate-keras demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
