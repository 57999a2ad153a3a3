"""A whole StyleGAN2 synthesis block for one sample: two folded layers and the ToRGB layer,
with one hand-written backward that shares passes between them.

Forward (StyleGAN2 section 2.2, 'skip' generator): ``a0 = layer0(x)`` (up-sampling),
``a1 = layer1(a0)``, ``rgb = conv1x1(a1, W_rgb * s_rgb) + b_rgb``, each layer folded as in
:mod:`i2s.folded_layer` and its elementwise work done by the compiled kernels of
:mod:`i2s.fused_cpu`. Used by :class:`i2s.stylegan2.SynthesisBlock` only where those kernels
are used (large float32 CPU activations). Against two separate layers and a ToRGB layer, the
backward saves full passes over the activations:

* the ToRGB gradients come out of layer1's backward pass over a1: dL/da1 gets
  ``W_rgb'^T dL/drgb`` per pixel (no [C, H, W] ToRGB input gradient is written and then added
  to dL/da1), and ``dL/dW_rgb' = sum_hw dL/drgb a1^T`` (no second read of a1);
* layer1's style gradient ``sum_hw dL/da0 * a0 / s1`` comes out of layer0's backward pass,
  which reads dL/da0 and a0 anyway;
* layer0's backward pass also applies the adjoint of its FIR filter, so its dL/dt is never
  written out (the forward pass likewise filters in the same pass as the leaky ReLU; see
  :func:`i2s.folded_layer.fold_forward`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from i2s.fir import separable_taps
from i2s.folded_layer import conv_input_grad, fold_forward, input_and_style_grads
from i2s.fused_cpu import clamp_arg


class FoldedSynthesisBlock(torch.autograd.Function):
    """Gradients flow to ``x`` and every style and demodulation input; the layers' weights are
    frozen (the caller checks)."""

    @staticmethod
    def forward(ctx, x, s0, d0, s1, d1, s_rgb, noise0, noise1, conv0, conv1, torgb, kernels,
                gain, slope):
        """x: [1, I, H, W]; s0 [1, I], d0 [1, O], s1 [1, O], d1 [1, O], s_rgb [1, O] (ToRGB
        styles including its weight gain); noise0/noise1: [1, 1, 2H, 2W] (times their
        strengths) or None; conv0, conv1: SynthesisLayer; torgb: ToRGBLayer; kernels: the
        compiled module. Returns a1 [1, O, 2H, 2W] and rgb [1, K, 2H, 2W], channels-last."""
        ctx.set_materialize_grads(False)
        a0, x, wf0, bg0, n0 = fold_forward(x, s0, d0, conv0.weight, conv0.bias, noise0, 2,
                                           conv0.resample_filter, gain, slope, conv0.conv_clamp,
                                           kernels)
        a1, _, wf1, bg1, n1 = fold_forward(a0, s1, d1, conv1.weight, conv1.bias, noise1, 1, None,
                                           gain, slope, conv1.conv_clamp, kernels)
        w_rgb = torgb.weight * s_rgb.reshape(1, -1, 1, 1)  # [K, O, 1, 1]
        rgb = F.conv2d(a1, w_rgb, torgb.bias)
        if torgb.conv_clamp is not None:
            rgb = rgb.clamp(-torgb.conv_clamp, torgb.conv_clamp)
        ctx.save_for_backward(x, s0, d0, wf0, bg0, n0, a0, s1, d1, wf1, bg1, n1, a1, w_rgb, rgb)
        ctx.layers, ctx.kernels, ctx.gain, ctx.slope = (conv0, conv1, torgb), kernels, gain, slope
        return a1, rgb

    @staticmethod
    def backward(ctx, grad_a1, grad_rgb):
        x, s0, d0, wf0, bg0, n0, a0, s1, d1, wf1, bg1, n1, a1, w_rgb, rgb = ctx.saved_tensors
        conv0, conv1, torgb = ctx.layers
        k, gain, slope = ctx.kernels, ctx.gain, ctx.slope
        none = (None,) * 8
        if grad_a1 is None and grad_rgb is None:
            return (None,) * 6 + none
        if grad_a1 is not None:
            grad_a1 = grad_a1.contiguous(memory_format=torch.channels_last)
        grad_s_rgb = w_rgb2d = None
        if grad_rgb is not None:
            if torgb.conv_clamp is not None:
                grad_rgb = grad_rgb.masked_fill(rgb.abs() >= torgb.conv_clamp, 0.0)
            grad_rgb = grad_rgb.contiguous(memory_format=torch.channels_last)
            w_rgb2d = w_rgb.reshape(w_rgb.shape[0], -1).contiguous()  # [K, O]
        # layer1 and ToRGB: one pass over a1
        grad_t1, sums1 = k.noise_lrelu_backward(grad_a1, a1, n1, gain, slope,
                                                clamp_arg(conv1.conv_clamp), grad_rgb, w_rgb2d,
                                                False)
        grad_d1 = ((sums1[0] - bg1 * sums1[1]) / d1[0]).unsqueeze(0)
        if grad_rgb is not None:  # dL/ds_rgb[c] = sum_k W_rgb[k, c] dL/dW_rgb'[k, c]
            grad_s_rgb = (torgb.weight.reshape(w_rgb2d.shape) * sums1[2:]).sum(0, keepdim=True)
        # layer1's input gradient; its style gradient from layer0's pass unless a style is 0
        style1_in_pass = not bool((s1 == 0).any())
        if style1_in_pass:
            grad_a0 = conv_input_grad(grad_t1, a0, wf1, 1, None)
        else:
            grad_a0, grad_s1 = input_and_style_grads(grad_t1, a0, s1, d1, conv1.weight, wf1, 1,
                                                     None, gain)
        taps = separable_taps(conv0.resample_filter, 4.0)
        if taps is not None:  # the FIR's adjoint in the same pass (dL/dt is never written)
            grad_t0, sums0 = k.noise_lrelu_fir_backward(grad_a0, a0, n0, gain, slope,
                                                        clamp_arg(conv0.conv_clamp), *taps,
                                                        style1_in_pass)
        else:
            grad_t0, sums0 = k.noise_lrelu_backward(grad_a0, a0, n0, gain, slope,
                                                    clamp_arg(conv0.conv_clamp), None, None,
                                                    style1_in_pass)
        if style1_in_pass:
            grad_s1 = (sums0[2] / s1[0]).unsqueeze(0)
        grad_d0 = ((sums0[0] - bg0 * sums0[1]) / d0[0]).unsqueeze(0)
        grad_x = grad_s0 = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_x, grad_s0 = input_and_style_grads(grad_t0, x, s0, d0, conv0.weight, wf0, 2,
                                                    conv0.resample_filter, gain,
                                                    fir_done=taps is not None)
        return (grad_x, grad_s0, grad_d0, grad_s1, grad_d1, grad_s_rgb) + none
