"""The metrics room: every score of a trained model, asked for by name.

``compute(names, model, preset, MetricOptions(...))`` runs the metrics ``metric_names()`` lists
(the MNIST protocol, FID, PPL, FLOPs; ``alae_tf.metrics.registry``) and returns a JSON-able dict;
``alae_tf.metrics.curves.learning_curves`` scores every checkpoint of a run. The modules under
them: ``representation`` (1-NN, SVM and classifier scores on arrays), ``digits`` (the MNIST
protocol on a model), ``fid``, ``ppl``, ``lpips``, ``generative`` (FID and PPL of a model) and
``flops``. Importing this package loads no TensorFlow.
"""

from alae_tf.metrics.registry import (
    MNIST_PROTOCOL,
    MetricOptions,
    OptionError,
    compute,
    metric_names,
)

__all__ = ["MNIST_PROTOCOL", "MetricOptions", "OptionError", "compute", "metric_names"]
