# The two commands of the README: `make demo` and `make test`. Both create .venv and
# install the package (editable, with [dev]) when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test test-tf test-jax test-slow lint demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

# Default test run: lint, the whole suite on TensorFlow, the layers again on JAX.
test: lint test-tf test-jax

test-tf: $(STAMP)
	$(BIN)/python -m pytest

test-jax: $(STAMP)
	KERAS_BACKEND=jax $(BIN)/python -m pytest tests/layers

# Long cases (marked @pytest.mark.slow), not part of CI's default run.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

demo: $(STAMP)
	$(BIN)/coordgate-keras demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
