"""The in-browser demo, installed as ``alae_tf.web_demo``: the static page (``index.html``,
``js/``), the shipped TF.js exports (``models/``) and ``alae-demo`` (``server.py``), which serves
them on 127.0.0.1."""
