"""Installs alae-tf.

The repository keeps the top-level folders ``training/``, ``export/`` and ``web_demo/`` for
readers, but installs them as ``alae_tf.training``, ``alae_tf.export`` and ``alae_tf.web_demo``
so that site-packages gets no generic top-level names. The demo's TF.js runtime comes from npm
(``web_demo/package-lock.json``; ``make demo`` installs it).
"""

from setuptools import setup

setup(
    name="alae-tf",
    version="0.1.0",
    description="Adversarial Latent Autoencoders (ALAE, StyleALAE) in TensorFlow / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=["alae_tf", "alae_tf.data", "alae_tf.metrics", "alae_tf.models", "alae_tf.models.mlp",
              "alae_tf.models.style", "alae_tf.official", "alae_tf.trainer", "alae_tf.faces",
              "alae_tf.training", "alae_tf.export", "alae_tf.web_demo"],
    package_dir={
        "alae_tf": "alae_tf",
        "alae_tf.training": "training",
        "alae_tf.export": "export",
        "alae_tf.web_demo": "web_demo",
    },
    package_data={
        "alae_tf": ["assets/*.npz", "assets/*.md"],
        "alae_tf.web_demo": ["index.html", "style.css", "js/*.js", "models/*/*.json",
                             "models/*/*/*.json", "models/*/*/*.bin"],
    },
    install_requires=[
        # Ranges here; the exact set that installs together without backtracking is
        # requirements.lock (TF-DF 1.12 pins TF 2.19; tensorflowjs 4.22 imports TF-DF).
        "tensorflow>=2.19,<2.20",
        "keras>=3.8,<4",
        "tensorflow-datasets>=4.9",
        "numpy>=1.26",
        "pillow>=10",
        "scikit-learn>=1.4",
        # alae-eval --all-checkpoints: the learning-curve plot.
        "matplotlib>=3.8",
        # alae-serve: a FastAPI application run by uvicorn.
        "fastapi>=0.110",
        "uvicorn>=0.29",
        # alae-import: the authors' YAML configs, read with the safe loader.
        "pyyaml>=6",
        # alae-photo: face boxes and five landmarks (MTCNN, MIT; its weights ship in the wheel).
        "mtcnn>=1.0,<2",
    ],
    extras_require={
        "export": ["tensorflowjs==4.22.0", "tensorflow-decision-forests==1.12.0", "ydf==0.11.0"],
        # gRPC PredictRequest/PredictResponse protos (TF Serving's client package).
        "serve": ["tensorflow-serving-api>=2.19,<2.20"],
        "dev": ["pytest>=8", "pytest-xdist>=3.6", "ruff>=0.6",
                "tensorflow-serving-api>=2.19,<2.20"],
    },
    entry_points={
        "console_scripts": [
            "alae-train=alae_tf.training.train:main",
            "alae-eval=alae_tf.training.evaluate:main",
            "alae-sample=alae_tf.training.sample:main",
            "alae-export=alae_tf.export.cli:main",
            "alae-serve=alae_tf.export.serve:main",
            "alae-demo=alae_tf.web_demo.server:main",
            "alae-import=alae_tf.training.import_official:main",
            "alae-photo=alae_tf.training.photo:main",
        ]
    },
)
