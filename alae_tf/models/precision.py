"""Mixed precision: the Keras dtype policy the networks are built under.

``float32`` computes and stores everything in float32. ``mixed_bfloat16`` and
``mixed_float16`` compute every layer in the 16-bit type and keep the variables in float32
(Keras's mixed policies). Whatever the policy, the ALAE model keeps these in float32: D's
logits, the losses, R1's input gradient and penalty, the running average w and the EMA
weights (``alae_tf.models.alae``).

``mixed_float16`` also needs loss scaling, and all of it is here: each optimizer is wrapped in
its own ``keras.optimizers.LossScaleOptimizer`` (``with_loss_scaling``), whose scale the model
also applies to R1's inner gradient (``loss_scale``) and converts between the two optimizers
in the latent update (``rescale_gradients``). bfloat16 has float32's exponent range and needs
no loss scaling.
"""

import contextlib

import keras

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: AVX-512 BF16, AMX.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpuinfo_field(name, cpuinfo):
    """The first ``name : value`` of ``cpuinfo``'s text (None where it cannot be read)."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags from ``cpuinfo`` (an empty set where it cannot be read)."""
    return set((_cpuinfo_field("flags", cpuinfo) or "").split())


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name, printed with every benchmark figure ("unknown CPU" if unread)."""
    return _cpuinfo_field("model name", cpuinfo) or "unknown CPU"


def default_precision(has_gpu, family="mlp", flags=None):
    """The precision ``alae-train`` picks when none is given (``--precision auto``).

    ``mixed_bfloat16`` for a family that asks for it (``Family.bfloat16_on_cpu``: MLP-ALAE)
    trained on a CPU with native bfloat16 arithmetic, where it trains much faster than float32
    with scores that hold; ``float32`` otherwise: StyleALAE gains too little from bfloat16 to
    trade for unmeasured scores, and GPUs were not measured (the figures:
    docs/performance.md).

    Args:
        has_gpu: whether training runs on a GPU.
        family: the preset's family name.
        flags: the CPU's feature flags (default: this machine's, ``cpu_flags``).
    """
    # Imported here: the families import the models, which import this module.
    from alae_tf.models.families import get_family

    flags = cpu_flags() if flags is None else flags
    if (get_family(family).bfloat16_on_cpu and not has_gpu
            and any(flag in flags for flag in BF16_CPU_FLAGS)):
        return "mixed_bfloat16"
    return "float32"


@contextlib.contextmanager
def policy_scope(precision):
    """Builds networks under ``precision`` (one of PRECISIONS) inside the block, then puts
    the previous global dtype policy back."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def with_loss_scaling(optimizer, compute_dtype):
    """``optimizer`` as networks computing in ``compute_dtype`` need it: float16's narrow
    exponent range needs a ``LossScaleOptimizer`` (a dynamic scale of its own per optimizer,
    unless ``optimizer`` is one already); other dtypes need none."""
    if compute_dtype != "float16" or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scale")


def loss_scale(optimizer):
    """The dynamic loss scale (a variable) of a ``LossScaleOptimizer``, else None."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.dynamic_scale
    return None


def inner_optimizer(optimizer):
    """The optimizer that holds the moments: a ``LossScaleOptimizer``'s inner one."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer


def reset_loss_scale(optimizer):
    """Puts a ``LossScaleOptimizer``'s scale and its count of finite steps back to their
    start (nothing to do for other optimizers)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer.dynamic_scale.assign(optimizer.initial_scale)
        optimizer.step_counter.assign(0)


def rescale_gradients(gradients, source, target):
    """Gradients of a loss scaled by ``source``'s loss scale, brought to ``target``'s (which
    ``target.apply`` divides by); unchanged without loss scaling. None stays None."""
    source_scale, target_scale = loss_scale(source), loss_scale(target)
    if source_scale is None:
        return gradients
    return [None if g is None else g * (target_scale / source_scale) for g in gradients]
