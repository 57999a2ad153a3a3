"""Which evaluation of a StyleGAN2 synthesis layer runs: the one switch of the fast path.

A synthesis layer (modulated 3x3 conv + noise + bias + leaky ReLU) has four evaluations with
the same values; each is tested against the others (values and float64 gradients):

* ``PER_SAMPLE_WEIGHTS``: per-sample weights and one grouped convolution (NVIDIA's inference
  path). The reference; used only when asked for (``synthesis(ws, reference=True)``).
* ``MODULATED``: modulate the input, convolve with the shared weight, demodulate the output
  (:func:`i2s.ops.modconv.modulated_input_conv2d`). Any batch; weight gradients when the
  weights train.
* ``FOLDED``: one sample, frozen weights: modulation, demodulation, gain and bias become
  constants of one convolution, with a hand-written backward (:mod:`i2s.ops.folded_layer`).
  Taken where the activation is larger than the weight (H W > 9 O; from 128 px at FFHQ widths).
* ``KERNELS``: ``FOLDED`` with its elementwise passes in the compiled CPU kernels
  (:mod:`i2s.ops.cpu_kernels`): float32 CPU activations of at least
  :data:`KERNEL_MIN_ELEMENTS` values, where the kernels could be built. When both layers of a
  block take it and its ToRGB layer is frozen, the whole block is one autograd function
  (:mod:`i2s.ops.folded_block`).

ToRGB (a modulated 1x1 conv) has ``PER_SAMPLE_WEIGHTS``, ``MODULATED``, and ``FOLDED`` for one
sample (the style folded into the 1x1 weight; autograd's weight gradient of a 1x1 conv is one
small GEMM).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch

from i2s.ops import cpu_kernels

# Activations smaller than this (elements) keep the aten path: their passes cost little, and
# small models then never trigger the one-time kernel build (the 64 px demo never does).
KERNEL_MIN_ELEMENTS = 2**21


class LayerPath(enum.Enum):
    PER_SAMPLE_WEIGHTS = "per-sample weights"
    MODULATED = "modulated"
    FOLDED = "folded"
    KERNELS = "folded, compiled kernels"


@dataclass(frozen=True)
class BlockPlan:
    """The paths of one synthesis block's layers."""

    conv0: LayerPath | None     # the up-sampling layer (None in the 4x4 block)
    conv1: LayerPath
    torgb: LayerPath
    whole_block: bool           # conv0 + conv1 + ToRGB as one FoldedSynthesisBlock


def conv_layer_path(*, batch: int, resolution: int, out_channels: int, trains: bool,
                    device: torch.device, dtype: torch.dtype,
                    reference: bool = False) -> LayerPath:
    """The path of one synthesis conv layer.

    Args:
        batch: samples in the batch.
        resolution: the layer's output size (H = W).
        out_channels: O.
        trains: some weight of the layer needs a gradient (then only the paths with
            autograd's weight gradients qualify).
        device, dtype: of the activations.
        reference: ask for the reference path.
    """
    if reference:
        return LayerPath.PER_SAMPLE_WEIGHTS
    if batch != 1 or trains or resolution * resolution <= 9 * out_channels:
        return LayerPath.MODULATED
    elements = out_channels * resolution * resolution
    if (device.type == "cpu" and dtype == torch.float32 and elements >= KERNEL_MIN_ELEMENTS
            and cpu_kernels.load_kernels() is not None):
        return LayerPath.KERNELS
    return LayerPath.FOLDED


def torgb_path(*, batch: int, reference: bool = False) -> LayerPath:
    """The path of a ToRGB layer."""
    if reference:
        return LayerPath.PER_SAMPLE_WEIGHTS
    return LayerPath.FOLDED if batch == 1 else LayerPath.MODULATED


def plan_block(*, batch: int, resolution: int, out_channels: int, has_conv0: bool,
               conv0_trains: bool, conv1_trains: bool, torgb_trains: bool,
               device: torch.device, dtype: torch.dtype, reference: bool = False) -> BlockPlan:
    """The paths of a synthesis block (see the module docstring); the model asks only this."""
    kw = dict(batch=batch, resolution=resolution, out_channels=out_channels, device=device,
              dtype=dtype, reference=reference)
    conv0 = conv_layer_path(trains=conv0_trains, **kw) if has_conv0 else None
    conv1 = conv_layer_path(trains=conv1_trains, **kw)
    whole = conv0 is LayerPath.KERNELS and conv1 is LayerPath.KERNELS and not torgb_trains
    return BlockPlan(conv0, conv1, torgb_path(batch=batch, reference=reference), whole)
