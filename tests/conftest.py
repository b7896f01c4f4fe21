"""Test session set-up: quiet TF logs, graphs run as traced (no grappler pass), two logical CPU
devices for tf.distribute tests, and the lanes of a parallel run.

Logical devices and thread counts must be configured before TensorFlow initialises its
runtime, so this runs at import time, before any test module touches TensorFlow.

``make test`` runs the suite in two lanes (pytest-xdist, ``-n 2 --dist loadgroup``). Each lane
is one process with one TensorFlow thread (and so are the processes its tests start): two
lanes of two spinning threads each on two cores slow each other down many times over. The
tests that share a session fixture run in one lane (``LANE_GROUPS``), so it is built once; the
tests of one file stay together, so module fixtures are built once too; and the groups start
longest first, so that neither lane is left with a long tail.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _threads in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")
# Folder image checks and the digit classifier are cached (alae_tf.cache); tests and the CLIs
# they start keep theirs out of the user's ~/.cache, in one folder per session that the lanes
# share (pytest-xdist's lanes inherit it from the process that starts them), so the
# classifier of alae-eval's settings is trained once per session.
if not os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["ALAE_TF_CACHE_DIR"] = tempfile.mkdtemp(prefix="alae_tf_cache_")
    atexit.register(shutil.rmtree, os.environ["ALAE_TF_CACHE_DIR"], ignore_errors=True)

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from helpers.models import tiny_model  # noqa: E402

# Session-scoped runs and exports shared across test files.
pytest_plugins = ["helpers.fixtures"]

# Grappler's graph rewriting (constant folding, layout, remapping, ...) takes about 4 s of one
# core per traced StyleALAE training step, for the tiny models of this process's tests more
# than running them; the in-process tests trace about 20 of them. This process runs its
# graphs as traced; every process a test starts (alae-train, workers, exports served, the
# fresh-process export check) keeps TensorFlow's default optimisation, as users get it.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture
def make_tiny_model():
    return tiny_model


@pytest.fixture(scope="session")
def two_replica_strategy():
    """One MirroredStrategy over the two logical CPUs, shared by the whole session.

    A second MirroredStrategy in the same process reuses collective instance keys and aborts
    with a shape mismatch, so every test shares this one.
    """
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy


# Session fixtures whose users share a lane: {fixture: lane group}. The TF.js exports feed the
# Node and browser tests; the SavedModel runs feed the export, serving and TF.js tests.
LANE_GROUPS = {"exported": "exports", "exports": "exports"}
# Groups (a LANE_GROUPS value or a test file's name) that take longest, started first.
LONGEST_FIRST = ("exports", "test_cli.py", "test_multi_worker.py", "test_faults.py",
                 "test_recipe.py", "test_paper_metrics.py", "test_fid.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Gives every test its lane group (``LANE_GROUPS``, else its file) and orders the groups
    longest first; pytest-xdist's loadgroup keeps a group in one lane."""
    def group(item):
        shared = [LANE_GROUPS[name] for name in item.fixturenames if name in LANE_GROUPS]
        return shared[0] if shared else item.path.name

    for item in items:
        item.add_marker(pytest.mark.xdist_group(group(item)))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(group(item), len(rank)))  # stable within a group
