# `make test` works on a fresh machine with nothing but Python 3.10+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: test test-cuda-sim lint venv demo docs clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint test-cuda-sim
	$(BIN)/pytest

# The GPU kernels under Numba's CUDA simulator, in a process of its own (the variable must be set
# before numba.cuda is imported): their tests (tests/cuda) and the op tests (tests/ops) with
# every op routed to the GPU twins, on small shapes with few hypothesis examples.
test-cuda-sim: $(STAMP)
	NUMBA_ENABLE_CUDASIM=1 NPAE_TEST_KERNELS=cuda HYPOTHESIS_PROFILE=cudasim \
		$(BIN)/pytest tests/cuda tests/ops

# Fetch MNIST, train every model of the article for one epoch, write runs/demo/report.md.
demo: $(STAMP)
	$(BIN)/npae demo --out runs/demo

# Regenerate the operation guide in docs/ from `npae explain` (tests/test_docs.py checks it).
docs: $(STAMP)
	$(BIN)/python -m npae.tools.docs docs

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
