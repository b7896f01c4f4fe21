"""Puts the tensors of an official ALAE checkpoint into this project's StyleALAE.

The reference (podgorskiy/ALAE, ``lreq.py`` with ``use_implicit_lreq`` on, as every published
model was trained) stores the effective weights: a layer computes with its tensor as stored,
and the equalized learning rate lives in its optimizer. This project stores weights in unit
scale and multiplies them at run time (``alae_tf.models.layers``). So each weight is divided by its
layer's run-time scale (``gain * lr_mul / sqrt(fan_in)``), and each bias of a layer with an
``lr_mul`` by that multiplier. Layouts change from PyTorch's [C_out, C_in, k, k] (transposed
convolutions: [C_in, C_out, k, k]) and [out, in] to channels-last [k, k, C_in, C_out] and
[in, out].

The generator's fused upsampling convolution (128 px and up) is the one kernel that is
mirrored: the reference applies its stored 3x3 kernel through a transposed convolution,
``FusedUpsampleConv2D`` stores the kernel of the equivalent correlation (an upsample and a
3x3 convolution), which is the reference's kernel flipped in both spatial axes.

Reference: podgorskiy/ALAE net.py (``DecodeBlock``, ``EncodeBlock``, ``MappingF``,
``MappingD``, ``ToRGB``, ``FromRGB``), model.py (``DLatent``), train_alae.py (the names of the
saved networks).
"""

import dataclasses
import math

import numpy as np

from alae_tf.errors import CheckpointError

# Our network -> the reference's name for it in ``checkpoint["models"]``: the trained copies
# and the EMA copies ("_s", what the reference's inference scripts load). This project keeps
# no EMA copy of D, so ``mapping_tl_s`` is not read.
TRAINED_NAMES = {"mapping_f": "mapping_fl", "generator": "generator", "encoder": "discriminator",
                 "mapping_d": "mapping_tl"}
EMA_NAMES = {"mapping_f": "mapping_fl_s", "generator": "generator_s",
             "encoder": "discriminator_s"}


@dataclasses.dataclass
class ImportReport:
    """What an import read: where each network came from, and how much.

    Args:
        sources: {our network name (``generator``, ``generator_ema``...): the reference's
            network it was read from}.
        tensors: tensors read.
        parameters: numbers read.
        notes: lines for the user (a network missing from the file...).
    """

    sources: dict = dataclasses.field(default_factory=dict)
    tensors: int = 0
    parameters: int = 0
    notes: list = dataclasses.field(default_factory=list)


def _dense(prefix, layer):
    fan_in, units = (int(d) for d in layer.kernel.shape)
    yield (f"{prefix}.weight", (units, fan_in),
           lambda a: layer.kernel.assign(a.T / layer.weight_scale))
    yield (f"{prefix}.bias", (units,), lambda a: layer.bias.assign(a / layer.bias_scale))


def _conv(name, layer, transposed=False):
    k, _, c_in, c_out = (int(d) for d in layer.kernel.shape)
    if transposed:  # [C_in, C_out, k, k], mirrored (module docstring)
        def assign(a):
            kernel = np.transpose(a, (2, 3, 0, 1))[::-1, ::-1]
            layer.kernel.assign(kernel / layer.weight_scale)

        return name, (c_in, c_out, k, k), assign
    return (name, (c_out, c_in, k, k),
            lambda a: layer.kernel.assign(np.transpose(a, (2, 3, 1, 0)) / layer.weight_scale))


def _channels(name, variable):
    # [1, C, 1, 1] per-channel tensors (biases, noise weights) -> [C]
    size = int(variable.shape[0])
    return name, (1, size, 1, 1), lambda a: variable.assign(a.reshape(size))


def _conv_bias(prefix, layer):
    size = int(layer.bias.shape[0])
    return f"{prefix}.bias", (size,), lambda a: layer.bias.assign(a / layer.bias_scale)


def _generator_entries(generator):
    for i, block in enumerate(generator.blocks):
        p = f"decode_block.{i}"
        if block.is_first:
            constant = block.constant.constant  # [1, 4, 4, C]
            size = int(constant.shape[-1])
            yield ("const", (1, size, 4, 4),
                   lambda a, v=constant: v.assign(np.transpose(a, (0, 2, 3, 1))))
        else:
            yield _conv(f"{p}.conv_1.weight", block.conv0, transposed=block.fused)
        yield _conv(f"{p}.conv_2.weight", block.conv1)
        for h in (0, 1):
            yield _channels(f"{p}.noise_weight_{h + 1}", getattr(block, f"noise{h}").noise_scale)
            yield _channels(f"{p}.bias_{h + 1}", getattr(block, f"bias{h}").bias)
            yield from _dense(f"{p}.style_{h + 1}", getattr(block, f"style{h}").style_dense)
        yield _conv(f"to_rgb.{i}.to_rgb.weight", block.to_rgb)
        yield _conv_bias(f"to_rgb.{i}.to_rgb", block.to_rgb)


def _encoder_entries(encoder):
    for i, block in enumerate(encoder.blocks):
        p = f"encode_block.{i}"
        yield _conv(f"from_rgb.{i}.from_rgb.weight", block.from_rgb_conv)
        yield _conv_bias(f"from_rgb.{i}.from_rgb", block.from_rgb_conv)
        yield _conv(f"{p}.conv_1.weight", block.conv0)
        yield _conv(f"{p}.conv_2.weight", block.conv1)
        yield _channels(f"{p}.bias_1", block.bias0.bias)
        yield _channels(f"{p}.bias_2", block.bias1.bias)
        yield from _dense(f"{p}.style_1", block.style0)
        yield from _dense(f"{p}.style_2", block.style1)


def _mapping_entries(mapping, inner):
    for i, layer in enumerate(mapping.dense_layers):
        yield from _dense(f"map_blocks.{i}{inner}", layer)


def entries(name, network):
    """(tensor name, shape in the file, assign function) of each tensor of ``network``, our
    network ``name`` (one of ``TRAINED_NAMES``), named as the reference's state_dict names it."""
    if name == "generator":
        return list(_generator_entries(network))
    if name == "encoder":
        return list(_encoder_entries(network))
    return list(_mapping_entries(network, ".fc" if name == "mapping_f" else ""))


def _is_buffer(tensor_name):
    # The blur filters are fixed buffers of the reference, constants here.
    return tensor_name.endswith("blur.weight")


def _check_and_plan(file_label, ref_name, state, planned):
    """The (array, assign) pairs for one network; CheckpointError naming the first problem."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{file_label}: models.{ref_name} is not a state dict")
    if state and all(str(k).startswith("module.") for k in state):  # saved from a DataParallel
        state = {str(k)[len("module."):]: v for k, v in state.items()}
    expected = {name: (shape, assign) for name, shape, assign in planned}
    for name in state:
        if name not in expected and not _is_buffer(str(name)):
            raise CheckpointError(
                f"{file_label}: {ref_name}.{name} is not part of the network the config "
                "describes (a config for another model, or a network variant this project does "
                "not import)")
    steps = []
    for name, (shape, assign) in expected.items():
        if name not in state:
            raise CheckpointError(f"{file_label}: {ref_name}.{name} is missing; the config "
                                  f"describes a network with it (shape {shape}): a config for "
                                  "another model?")
        array = state[name]
        if not isinstance(array, np.ndarray):
            raise CheckpointError(f"{file_label}: {ref_name}.{name} is not a tensor")
        if tuple(array.shape) != tuple(shape):
            raise CheckpointError(f"{file_label}: {ref_name}.{name} has shape "
                                  f"{tuple(array.shape)} in the file, {tuple(shape)} in the "
                                  "network the config describes")
        if not np.issubdtype(array.dtype, np.floating):
            raise CheckpointError(f"{file_label}: {ref_name}.{name} holds {array.dtype} values, "
                                  "not floating point; not an ALAE checkpoint")
        if not np.isfinite(array).all():
            raise CheckpointError(f"{file_label}: {ref_name}.{name} holds NaN or infinite values; "
                                  "the file is damaged")
        steps.append((array.astype(np.float32), assign))
    return steps


def _average_w(file_label, models, latent_dim, num_styles):
    holder = models.get("dlatent_avg")
    buff = holder.get("buff") if isinstance(holder, dict) else None
    if not isinstance(buff, np.ndarray):
        raise CheckpointError(f"{file_label}: models.dlatent_avg.buff (the average w) is missing")
    if buff.shape != (num_styles, latent_dim):
        raise CheckpointError(f"{file_label}: dlatent_avg.buff has shape {buff.shape} in the file, "
                              f"{(num_styles, latent_dim)} for the config")
    buff = buff.astype(np.float32)
    if not np.isfinite(buff).all():
        raise CheckpointError(f"{file_label}: dlatent_avg.buff holds non-finite values")
    # The reference updates every slot's row with the same batch mean, so the rows agree;
    # this project keeps one average w.
    if not np.allclose(buff, buff[:1], rtol=1e-6, atol=1e-6):
        raise CheckpointError(f"{file_label}: the rows of dlatent_avg.buff differ; this project "
                              "keeps one average w for all style slots")
    return buff[0]


def checked_models(checkpoint, file_label):
    """``checkpoint["models"]``, the networks' state dicts of a podgorskiy/ALAE ``Checkpointer``
    file.

    Raises:
        CheckpointError: the object has no such dict.
    """
    models = checkpoint.get("models") if isinstance(checkpoint, dict) else None
    if not isinstance(models, dict):
        raise CheckpointError(f"{file_label}: a PyTorch file, but not an ALAE checkpoint (no "
                              "'models' entry, as podgorskiy/ALAE's Checkpointer writes)")
    return models


def estimated_parameters(preset):
    """About how many numbers one copy of a StyleALAE with ``preset``'s sizes holds (its convs,
    style and mapping layers; biases and small tensors left out), from the sizes alone: a
    config's numbers are checked against a file with it before anything is built."""
    levels = max(1, round(math.log2(max(preset.resolution, 4) / 4)) + 1)
    widths = [min(preset.maxf, preset.startf * 2 ** (levels - 1 - i)) for i in range(levels)]
    latent = preset.latent_dim
    total = (preset.mapping_layers + 3) * latent * latent  # F and D
    previous = widths[0]
    for width in widths:
        block = 2 * 9 * previous * width + 2 * latent * 2 * width + width * preset.channels
        total += 2 * block  # G's block and E's mirror of it
        previous = width
    return total


def check_sizes(preset, models, file_label):
    """Raises ``CheckpointError`` when the network ``preset`` describes is far larger than what
    ``models`` (``checked_models``) holds: a config that is not the file's, or one crafted so
    that building the network alone would exhaust memory."""
    held = sum(int(np.size(v)) for state in models.values() if isinstance(state, dict)
               for v in state.values() if isinstance(v, np.ndarray))
    needed = estimated_parameters(preset)
    if needed > 4 * held + 1_000_000:
        raise CheckpointError(
            f"{file_label}: the config describes a network of about {needed:,} numbers, but the "
            f"file holds {held:,}: the config is not this file's (latent size "
            f"{preset.latent_dim}, channels {preset.startf}..{preset.maxf}, "
            f"{preset.resolution} px)")


def load_official_weights(model, checkpoint, file_label):
    """Assigns an official checkpoint's networks to ``model`` (a ``StyleALAE`` built from the
    checkpoint's config, ``preset_from_config``).

    The trained networks take the reference's trained copies, the EMA networks its ``_s``
    copies; a file with only one of the two gives it to both. Everything is checked before
    anything is assigned.

    Args:
        model: the ``StyleALAE``.
        checkpoint: what ``read_torch_file`` returned for the file.
        file_label: the file's name, for messages.

    Returns:
        an ``ImportReport``.

    Raises:
        CheckpointError: the file is not an ALAE checkpoint, or does not match the config; the
            message names the tensor and both shapes.
    """
    models = checked_models(checkpoint, file_label)
    present = {k for k, v in models.items() if v is not None}
    report, plan = ImportReport(), []
    for ours, trained in TRAINED_NAMES.items():
        ema = EMA_NAMES.get(ours)
        for target, order in ((ours, (trained, ema)), (f"{ours}_ema", (ema, trained))):
            if target.endswith("_ema") and ema is None:
                continue
            source = next((n for n in order if n in present), None)
            if source is None and ours == "mapping_d" and "mapping_tl_s" in present:
                source = "mapping_tl_s"
            if source is None:
                if ours == "mapping_d":
                    report.notes.append("the file has no D (mapping_tl): D keeps fresh random "
                                        "weights; fine-tuning trains it from there")
                    continue
                raise CheckpointError(f"{file_label}: no {' or '.join(n for n in order if n)} in "
                                      "models: not an ALAE checkpoint, or one without this network")
            steps = _check_and_plan(file_label, source, models[source],
                                    entries(ours, model.network(target)))
            plan += steps
            report.sources[target] = source
            report.tensors += len(steps)
            report.parameters += sum(a.size for a, _ in steps)
    w_avg = _average_w(file_label, models, model.latent_dim, model.num_styles)
    for array, assign in plan:
        assign(array)
    for name in ("mapping_f", "mapping_f_ema"):
        model.network(name).w_avg.assign(w_avg)
    return report
