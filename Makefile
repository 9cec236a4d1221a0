# `make test` works on a fresh machine with nothing but Python 3.10+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: test lint venv demo docs clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest

# Fetch MNIST, train every model of the article for one epoch, write runs/demo/report.md.
demo: $(STAMP)
	$(BIN)/npae demo --out runs/demo

# Regenerate the operation guide in docs/ from `npae explain` (tests/test_docs.py checks it).
docs: $(STAMP)
	$(BIN)/python -m npae.docs

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
