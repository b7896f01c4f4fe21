# Set-up, main job and tests. Every target creates .venv and installs the pinned set first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/mnist_mlp

.PHONY: setup train test lint benchmark clean

$(VENV)/.installed: requirements.lock setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
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
