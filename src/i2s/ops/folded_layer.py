"""One StyleGAN2 synthesis layer for a single sample, with everything folded into the conv.

For one sample the modulation ``s`` [I], the demodulation ``d`` [O], the leaky-ReLU gain ``g``
and the bias ``b`` are constants of the convolution (StyleGAN2 section 2.2; ``lrelu(v) * g =
lrelu(v * g)`` for ``g > 0``):

    yb = conv(x, W * s[None, :] * (d * g)[:, None]) + b * g      (one oneDNN call, bias fused)
    a  = clamp(lrelu(yb + n * g, 0.2))                           (noise n [H, W])

so the forward pass touches a full activation only twice (add the noise, leaky ReLU in place)
instead of five times (modulate, demodulate, noise, bias, leaky ReLU). Where the compiled
kernels of :mod:`i2s.ops.cpu_kernels` are used (large float32 CPU activations) it is once, and for
an up-sampling layer that pass also applies the FIR filter (with the bias) to an even-sized
transposed convolution, which oneDNN computes faster than the odd-sized one.

The backward pass is written by hand because the weight now depends on the latent, and
autograd would compute the full weight gradient of the 3x3 convolution (as many FLOPs as the
forward pass). The latent only needs the per-channel sums

    dL/ds[i] = sum_hw dL/dx[i] * x[i] / s[i]
    dL/dd[o] = sum_hw dL/dt[o] * (yb[o] - b[o] g) / d[o]          (t = yb + n g)

which are computed as the weight gradient of a depthwise 1x1 convolution: one oneDNN pass
that reads both tensors once (twice as fast as ``(a * b).sum((2, 3))``). The compiled kernels
compute the leaky-ReLU gradient and both sums over dL/dt in a single pass instead, recovering
``yb`` from ``a`` (leaky ReLU is invertible), so ``yb`` is not kept. Where some
``s[i] == 0`` exactly, ``dL/ds`` is taken from the gradient of the unscaled input instead.

Chosen by :mod:`i2s.ops.synthesis_path` for one sample with frozen weights; checked against
the per-sample-weight reference in the tests (values and float64 gradients).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from i2s.ops.cpu_kernels import clamp_arg
from i2s.ops.fir import depthwise_fir_weight, separable_taps
from i2s.ops.layer_spec import ConvLayerSpec
from i2s.ops.modconv import resample_conv2d, transposed_conv_up2

_conv_backward = torch.ops.aten.convolution_backward


def channel_dots(a: torch.Tensor, b: torch.Tensor, with_sum: bool = False):
    """Per-channel ``sum_hw a * b`` [C] (and ``sum_hw a`` [C] if ``with_sum``).

    a, b: [1, C, H, W]. Computed as the weight (and bias) gradient of a depthwise 1x1
    convolution with output gradient ``a`` and input ``b``.
    """
    c = a.shape[1]
    ones = a.new_ones(c, 1, 1, 1)
    _, dw, db = _conv_backward(a, b, ones, [c] if with_sum else None, [1, 1], [0, 0], [1, 1],
                               False, [0, 0], c, [False, True, with_sum])
    return (dw.reshape(c), db) if with_sum else dw.reshape(c)


def fir_adjoint(grad: torch.Tensor, fir: torch.Tensor) -> torch.Tensor:
    """Adjoint of the up-sampling layer's FIR (padding 1, gain 4): [1, O, 2H, 2W] ->
    [1, O, 2H+1, 2W+1]."""
    n, o, h2, w2 = grad.shape
    y_like = torch.empty((n, o, h2 + 1, w2 + 1), dtype=grad.dtype, device=grad.device,
                         memory_format=torch.channels_last)  # only its shape is read
    fir_w = depthwise_fir_weight(fir, o, 4.0, grad.dtype).contiguous()
    return _conv_backward(grad, y_like, fir_w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], o,
                          [True, False, False])[0]


def conv_input_grad(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, up: int,
                    fir: torch.Tensor | None, fir_done: bool = False) -> torch.Tensor:
    """Adjoint of :func:`i2s.ops.modconv.resample_conv2d` (3x3 kernel) applied to ``grad``:
    dL/dx [1, I, H, W] from dL/dy [1, O, H*up, W*up]. ``fir_done``: for up=2, ``grad`` is
    already the FIR's adjoint output [1, O, 2H+1, 2W+1] (from the compiled kernels)."""
    mask = [True, False, False]
    if up == 1:
        return _conv_backward(grad, x, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                              mask)[0]
    g = grad if fir_done else fir_adjoint(grad, fir)
    return _conv_backward(g.contiguous(memory_format=torch.channels_last), x,
                          weight.transpose(0, 1).contiguous(), None, [2, 2], [0, 0], [1, 1],
                          True, [0, 0], 1, mask)[0]


def fold_forward(x: torch.Tensor, styles: torch.Tensor, dcoefs: torch.Tensor,
                 noise: torch.Tensor | None, spec: ConvLayerSpec, kernels):
    """The folded forward pass of one layer (module docstring). ``kernels``: the compiled
    module of :mod:`i2s.ops.cpu_kernels` or None. Returns ``(a, x, wf, bg, saved)``: the
    activation [1, O, H*up, W*up] (channels-last), x in channels-last, the folded weight and
    bias, and what the backward needs besides them (the noise with kernels, else yb)."""
    gain, slope, clamp, up, fir = spec.gain, spec.slope, spec.clamp, spec.up, spec.fir
    x = x.contiguous(memory_format=torch.channels_last)
    scale = dcoefs[0] * gain
    wf = spec.weight * styles[0].reshape(1, -1, 1, 1) * scale.reshape(-1, 1, 1, 1)
    bg = spec.bias * gain
    if kernels is not None:  # one pass after the convolution; the backward recovers yb from a
        noise = None if noise is None else noise.reshape(-1).contiguous()
        taps = separable_taps(fir, 4.0) if up == 2 else None
        if taps is not None:  # the FIR, too, in that pass
            t = transposed_conv_up2(x, wf, even=True).contiguous(
                memory_format=torch.channels_last)
            a = kernels.fir_noise_lrelu(t, *taps, bg, noise, gain, slope, clamp_arg(clamp))
            return a, x, wf, bg, noise
        a = resample_conv2d(x, wf, up, fir, bias=bg).contiguous(memory_format=torch.channels_last)
        kernels.noise_lrelu_(a, noise, gain, slope, clamp_arg(clamp))
        return a, x, wf, bg, noise
    yb = resample_conv2d(x, wf, up, fir, bias=bg).contiguous(memory_format=torch.channels_last)
    # yb is kept for the backward: leaky ReLU of a new tensor
    a = F.leaky_relu(yb, slope) if noise is None else F.leaky_relu_(yb + noise * gain, slope)
    if clamp is not None:
        a.clamp_(-clamp, clamp)
    return a, x, wf, bg, yb


def input_and_style_grads(grad_t: torch.Tensor, x: torch.Tensor, styles: torch.Tensor,
                          dcoefs: torch.Tensor, spec: ConvLayerSpec, wf: torch.Tensor,
                          fir_done: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """dL/dx [1, I, H, W] and the convolution's part of dL/ds [1, I] from dL/dt (or, with
    ``fir_done``, from the FIR adjoint of dL/dt; see :func:`conv_input_grad`)."""
    s = styles[0]
    if bool((s == 0).any()):  # dL/ds from the gradient of the unscaled input
        w_unmod = spec.weight * (dcoefs[0] * spec.gain).reshape(-1, 1, 1, 1)
        grad_u = conv_input_grad(grad_t, x, w_unmod, spec.up, spec.fir, fir_done)
        return grad_u * s.reshape(1, -1, 1, 1), channel_dots(grad_u, x).unsqueeze(0)
    grad_x = conv_input_grad(grad_t, x, wf, spec.up, spec.fir, fir_done)
    return grad_x, (channel_dots(grad_x, x) / s).unsqueeze(0)


class FoldedSynthesisLayer(torch.autograd.Function):
    """Forward: see the module docstring. Gradients flow to ``x``, ``styles`` and ``dcoefs``
    only (the layer's weights are frozen while embedding)."""

    @staticmethod
    def forward(ctx, x, styles, dcoefs, noise, spec: ConvLayerSpec, kernels):
        """x: [1, I, H, W]; styles: [1, I]; dcoefs: [1, O] demodulation; noise: [1, 1, H*up,
        W*up] (already times its strength) or None; spec: the layer's weights and settings;
        kernels: the compiled module of :mod:`i2s.ops.cpu_kernels` or None (aten ops).
        Returns a: [1, O, H*up, W*up], channels-last."""
        ctx.kernels, ctx.spec = kernels, spec
        a, x, wf, bg, saved = fold_forward(x, styles, dcoefs, noise, spec, kernels)
        ctx.save_for_backward(x, styles, dcoefs, wf, bg, saved, a)
        return a

    @staticmethod
    def backward(ctx, grad_a):
        x, styles, dcoefs, wf, bg, saved, a = ctx.saved_tensors
        spec = ctx.spec
        grad_a = grad_a.contiguous(memory_format=torch.channels_last)
        if ctx.kernels is not None:  # saved: the noise (times its strength) or None
            grad_t, (dot, total) = ctx.kernels.noise_lrelu_backward(
                grad_a, a, saved, spec.gain, spec.slope, clamp_arg(spec.clamp))
        else:  # saved: yb
            if spec.clamp is not None:
                grad_a = grad_a.masked_fill(a.abs() >= spec.clamp, 0.0)
            grad_t = torch.ops.aten.leaky_relu_backward(grad_a, a, spec.slope, True)
            dot, total = channel_dots(grad_t, saved, with_sum=True)
        grad_dcoefs = ((dot - bg * total) / dcoefs[0]).unsqueeze(0)
        if not ctx.needs_input_grad[0] and not ctx.needs_input_grad[1]:
            return None, None, grad_dcoefs, None, None, None
        grad_x, grad_styles = input_and_style_grads(grad_t, x, styles, dcoefs, spec, wf)
        return grad_x, grad_styles, grad_dcoefs, None, None, None
