# Set-up, main job and tests. Every target creates .venv and installs the pinned set first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/mnist_mlp

.PHONY: setup train test lint benchmark clean

# Exactly the README's set-up sentence. pip stays the one the venv bundles (no upgrade) so CI
# takes the path a reader takes; pyproject.toml is what makes that pip's `-e .` work.
$(VENV)/.installed: requirements.lock setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# The main job: train the paper's MNIST MLP-ALAE on the embedded digits, then score it and
# draw its sample, reconstruction and interpolation grids.
train: setup
	$(BIN)/alae-train --preset mnist_mlp --run-dir $(RUN_DIR)
	$(BIN)/alae-eval $(RUN_DIR)
	$(BIN)/alae-sample $(RUN_DIR)

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .

benchmark: setup
	$(BIN)/python benchmarks/train_throughput.py --preset mnist_mlp

clean:
	rm -rf $(VENV) build *.egg-info
