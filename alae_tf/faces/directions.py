"""Attribute directions in W and the authors' edit formula.

A direction is a unit-length normal of a hyperplane in W that separates faces with an
attribute from faces without it. The authors publish nine for their FFHQ model
(``principal_directions/direction_N.npy`` of podgorskiy/ALAE: float64 ``(512,)``, LinearSVC
normals); ``read_author_directions`` reads them, ``fit_direction`` makes one for any model from
two labelled sets of codes, the same recipe. A run directory keeps its directions in
``RUN/directions/`` (``save_directions``, ``load_directions``).

The edit (the authors' ``interactive_demo.py``): with ``w_avg`` the mapping's average w and ``n``
the directions, each direction's start value ``a_n = (w - w_avg) . n`` is taken out of
``w - w_avg`` and ``value_n * n`` put in (``value_n = a_n`` when not asked: no change), then
``w_avg`` is added back. The edited w drives the first ``EDIT_SLOTS`` style slots; E(x) keeps the
rest. Their sliders run over ``SLIDER_RANGE``.
"""

import json
import os

import numpy as np

from alae_tf.errors import FaceError

# The authors' files: direction_N.npy -> name (interactive_demo.py's indices and labels).
AUTHOR_DIRECTIONS = {0: "gender", 1: "smile", 2: "attractive", 3: "wavy_hair", 4: "young",
                     10: "big_lips", 11: "big_nose", 17: "chubby", 19: "glasses"}
SLIDER_RANGE = (-40.0, 40.0)
EDIT_SLOTS = 16  # interactive_demo.py's mixing cutoff, (7 + 1) * 2
FOLDER = "directions"
INDEX = "directions.json"


def _check(name, vector, latent_dim, where):
    v = np.asarray(vector, np.float64)
    if v.shape != (latent_dim,):
        raise FaceError(f"{where}: direction {name!r} has shape {list(v.shape)}; this model's "
                        f"w has {latent_dim} values")
    if not np.all(np.isfinite(v)) or not np.linalg.norm(v) > 0:
        raise FaceError(f"{where}: direction {name!r} is not a finite non-zero vector")
    return v


def read_author_directions(folder, latent_dim):
    """{name: vector} of the authors' ``direction_N.npy`` files in ``folder`` (the ones
    ``AUTHOR_DIRECTIONS`` names that are there; at least one)."""
    if not os.path.isdir(folder):
        raise FaceError(f"{folder!r} is not a folder (expected the authors' "
                        "principal_directions folder with direction_N.npy files)")
    found = {}
    for index, name in AUTHOR_DIRECTIONS.items():
        path = os.path.join(folder, f"direction_{index}.npy")
        if not os.path.exists(path):
            continue
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise FaceError(f"{path}: not a NumPy array file ({e})") from None
        found[name] = _check(name, vector, latent_dim, path)
    if not found:
        raise FaceError(f"{folder}: no direction_N.npy file of the authors' nine (N in "
                        f"{', '.join(str(i) for i in AUTHOR_DIRECTIONS)})")
    return found


def fit_direction(codes_with, codes_without, c=1.0, seed=0):
    """The unit normal of a linear SVM separating two sets of w (``[N, latent]`` each),
    pointing toward ``codes_with``: the authors' recipe (LinearSVC on W) for any model.

    Returns (direction, training accuracy).
    """
    from sklearn.svm import LinearSVC

    a, b = np.asarray(codes_with, np.float64), np.asarray(codes_without, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise FaceError(f"a direction needs two sets of at least 2 codes of one size, got "
                        f"{list(a.shape)} and {list(b.shape)}")
    x = np.concatenate([a, b])
    y = np.concatenate([np.ones(len(a)), np.zeros(len(b))])
    svm = LinearSVC(C=c, dual="auto", max_iter=20_000, random_state=seed).fit(x, y)
    normal = svm.coef_[0]
    return normal / np.linalg.norm(normal), float(svm.score(x, y))


def save_directions(run_dir, directions, source):
    """Writes ``directions`` ({name: vector}) into ``RUN/directions/`` (NAME.npy each and an
    index naming their source), replacing directions of the same names."""
    folder = os.path.join(run_dir, FOLDER)
    os.makedirs(folder, exist_ok=True)
    index = _read_index(folder)
    for name, vector in directions.items():
        if not name.replace("_", "").isalnum():
            raise FaceError(f"direction name {name!r}: use letters, digits and _")
        tmp = os.path.join(folder, f".{name}.npy.tmp")
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(vector, np.float64))
        os.replace(tmp, os.path.join(folder, f"{name}.npy"))
        index[name] = {"source": source}
    tmp = os.path.join(folder, f".{INDEX}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(index, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(folder, INDEX))


def _read_index(folder):
    path = os.path.join(folder, INDEX)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        raise FaceError(f"{path}: cannot be read ({e}); delete it and import the directions "
                        "again") from None
    if not isinstance(index, dict):
        raise FaceError(f"{path}: expected an object of direction names")
    return index


def load_directions(run_dir, latent_dim):
    """{name: vector} of the run's directions, in name order ({} when it has none)."""
    folder = os.path.join(run_dir, FOLDER)
    found = {}
    for name in sorted(_read_index(folder)):
        path = os.path.join(folder, f"{name}.npy")
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise FaceError(f"{path}: cannot be read ({e}); import the directions again") from None
        found[name] = _check(name, vector, latent_dim, path)
    return found


def start_values(w, w_avg, directions):
    """{name: a_n = (w - w_avg) . n}: where ``w`` (``[latent]``) sits along each direction."""
    centred = np.asarray(w, np.float64) - np.asarray(w_avg, np.float64)
    return {name: float(centred @ n) for name, n in directions.items()}


def edit(w, w_avg, directions, values):
    """The authors' edit of one w (``[latent]``): each direction's coordinate set to
    ``values[name]`` (the others keep their start values). Returns float64 ``[latent]``."""
    unknown = set(values) - set(directions)
    if unknown:
        raise FaceError(f"unknown direction {sorted(unknown)[0]!r}; this model has: "
                        f"{', '.join(directions) or 'none (import some)'}")
    w_avg = np.asarray(w_avg, np.float64)
    start = start_values(w, w_avg, directions)
    centred = np.asarray(w, np.float64) - w_avg
    for name, n in directions.items():
        centred = centred - start[name] * n
    for name, n in directions.items():
        centred = centred + values.get(name, start[name]) * n
    return centred + w_avg


def edited_styles(w_edited, original_styles):
    """``[slots, latent]``: the edited w (``[latent]``) in the first ``EDIT_SLOTS`` slots, the
    original per-slot styles (``[slots, latent]``, E(x) in every slot for an encoded photo)
    in the rest; every slot is edited when the model has no more than ``EDIT_SLOTS``."""
    original_styles = np.asarray(original_styles)
    slots = np.arange(len(original_styles))[:, None]
    return np.where(slots < EDIT_SLOTS, np.asarray(w_edited)[None], original_styles)
