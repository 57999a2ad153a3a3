"""A StyleGAN2 synthesis layer and ToRGB layer evaluated on the path chosen by
:mod:`i2s.ops.synthesis_path` (StyleGAN2, Karras et al. 2020, section 2.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from i2s.ops import cpu_kernels
from i2s.ops.bias_act import bias_lrelu
from i2s.ops.folded_layer import FoldedSynthesisLayer
from i2s.ops.layer_spec import ConvLayerSpec, ToRGBSpec
from i2s.ops.modconv import modulated_conv2d, modulated_input_conv2d
from i2s.ops.synthesis_path import LayerPath


def conv_layer(x: torch.Tensor, styles: torch.Tensor, dcoefs: torch.Tensor | None,
               noise: torch.Tensor | None, spec: ConvLayerSpec, path: LayerPath) -> torch.Tensor:
    """``clamp(lrelu(modconv(x) + noise + bias) * gain)``.

    Args:
        x: [N, I, H, W]. styles: [N, I]. dcoefs: demodulation coefficients [N, O] (not used
            by the reference path, which computes its own).
        noise: [1 or N, 1, H*up, W*up], already times its strength, or None.
        spec: the layer's weights and settings. path: from :mod:`i2s.ops.synthesis_path`.
    Returns:
        [N, O, H*up, W*up].
    """
    if path is LayerPath.PER_SAMPLE_WEIGHTS:
        y = modulated_conv2d(x, spec.weight, styles, demodulate=True, up=spec.up, fir=spec.fir,
                             per_sample_weights=True)
        return bias_lrelu(y if noise is None else y + noise, spec.bias, gain=spec.gain,
                          clamp=spec.clamp)
    if path in (LayerPath.FOLDED, LayerPath.KERNELS):
        kernels = cpu_kernels.load_kernels() if path is LayerPath.KERNELS else None
        return FoldedSynthesisLayer.apply(x, styles, dcoefs, noise, spec, kernels)
    # Modulated: lrelu(a) * g = lrelu(a * g) for g > 0, so the gain folds into the affine
    # part: out = lrelu(y * (d * g) + noise * g + bias * g). Noise ([N, 1, H, W]) and bias
    # ([1, C, 1, 1]) are added separately so that no NCHW [N, C, H, W] tensor is built and
    # the result keeps y's channels-last layout (mixed layouts make oneDNN 2-3x slower).
    n = x.shape[0]
    y = modulated_input_conv2d(x, spec.weight, styles, spec.up, spec.fir)
    dg = dcoefs.reshape(n, -1, 1, 1) * spec.gain
    y = y * dg if noise is None else torch.addcmul(noise * spec.gain, y, dg)
    out = F.leaky_relu(y + spec.bias.reshape(1, -1, 1, 1) * spec.gain, spec.slope)
    return out if spec.clamp is None else out.clamp(-spec.clamp, spec.clamp)


def torgb_layer(x: torch.Tensor, styles: torch.Tensor, spec: ToRGBSpec,
                path: LayerPath) -> torch.Tensor:
    """Modulated 1x1 conv without demodulation, plus bias (and clamp).

    x: [N, C, H, W]; styles: [N, C] (including the layer's weight gain) -> [N, K, H, W].
    """
    if path is LayerPath.FOLDED:
        if x.shape[0] != 1:
            raise ValueError(f"the folded ToRGB path takes one sample, got {x.shape[0]}")
        y = F.conv2d(x, spec.weight * styles.reshape(1, -1, 1, 1), spec.bias)
    else:
        y = modulated_conv2d(x, spec.weight, styles, demodulate=False,
                             per_sample_weights=path is LayerPath.PER_SAMPLE_WEIGHTS)
        y = y + spec.bias.reshape(1, -1, 1, 1)
    return y if spec.clamp is None else y.clamp(-spec.clamp, spec.clamp)
