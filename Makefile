# Set-up, main job and tests. Every target creates .venv and installs the pinned set first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PRESET ?= mnist_mlp_fast
FAST_NOTE := , this project's recipe: it scores above the paper's mnist_mlp in the same time on every alae-eval score (docs/recipes.md)
RUN_DIR ?= runs/$(PRESET)

NPM_STAMP := web_demo/node_modules/.package-lock.json

.PHONY: setup chromium train test test-fast test-system demo lint benchmark clean

# Exactly the README's set-up sentence. pip stays the one the venv bundles (no upgrade) so CI
# takes the path a reader takes; pyproject.toml is what makes that pip's `-e .` work.
$(VENV)/.installed: requirements.lock setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	touch $@

# The web demo's pinned npm packages: the TF.js runtime (served to the page, and run by Node in
# the tests) and playwright-core, which drives Chromium in the browser tests.
$(NPM_STAMP): web_demo/package.json web_demo/package-lock.json
	npm ci --prefix web_demo --no-audit --no-fund

setup: $(VENV)/.installed $(NPM_STAMP)

# Debian's chromium for the browser tests (apt-get; skipped when CHROMIUM is set or one is there).
chromium:
	scripts/install_chromium.sh

# The main job: train MLP-ALAE on the embedded digits with this project's recipe, then score it
# and draw its sample, reconstruction and interpolation grids. mnist_mlp_fast beat the paper's
# mnist_mlp in the same time on every alae-eval score (docs/recipes.md); PRESET=mnist_mlp
# trains the paper's setting instead.
train: setup
	@echo "make train: preset $(PRESET)$(if $(filter mnist_mlp_fast,$(PRESET)),$(FAST_NOTE))"
	$(BIN)/alae-train --preset $(PRESET) --run-dir $(RUN_DIR)
	$(BIN)/alae-eval $(RUN_DIR)
	$(BIN)/alae-sample $(RUN_DIR)

# The whole suite, what CI runs, in LANES parallel lanes (pytest-xdist; tests/conftest.py says
# which tests share a lane); it lists the 25 slowest tests at the end. LANES=0 runs it in this
# process alone.
LANES ?= 2
test: setup chromium
	$(BIN)/pytest -q -n $(LANES) --dist loadgroup --durations=25

# The edit-test tier: everything but the tests marked slow (end-to-end runs, browsers,
# several processes).
test-fast: setup chromium
	$(BIN)/pytest -q -n $(LANES) --dist loadgroup -m "not slow" --durations=10

# The system tier alone: the tests that start what they test as a process of its own (console
# scripts, worker processes, Node, Chromium, a fresh venv); pytest.ini's `system` mark.
test-system: setup chromium
	$(BIN)/pytest -q -n $(LANES) --dist loadgroup -m system --durations=10

# The in-browser demo on http://127.0.0.1:8080/ (the encoder and generator run in the browser).
demo: setup
	$(BIN)/alae-demo

lint: setup
	$(BIN)/ruff check .

benchmark: setup
	$(BIN)/python benchmarks/train_throughput.py --preset mnist_mlp

clean:
	rm -rf $(VENV) build *.egg-info web_demo/node_modules test-output
