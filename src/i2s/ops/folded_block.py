"""A whole StyleGAN2 synthesis block for one sample: two folded layers and the ToRGB layer,
with one hand-written backward that shares passes between them.

Forward (StyleGAN2 section 2.2, 'skip' generator): ``a0 = layer0(x)`` (up-sampling),
``a1 = layer1(a0)``, ``rgb = conv1x1(a1, W_rgb * s_rgb) + b_rgb``, each layer folded as in
:mod:`i2s.ops.folded_layer` and its elementwise work done by the compiled kernels of
:mod:`i2s.ops.cpu_kernels`. Chosen by :func:`i2s.ops.synthesis_path.plan_block` where both
layers take those kernels and ToRGB is frozen. Against two separate layers and a ToRGB layer, the
backward saves full passes over the activations:

* the ToRGB gradients come out of layer1's backward pass over a1: dL/da1 gets
  ``W_rgb'^T dL/drgb`` per pixel (no [C, H, W] ToRGB input gradient is written and then added
  to dL/da1), and ``dL/dW_rgb' = sum_hw dL/drgb a1^T`` (no second read of a1);
* layer1's style gradient ``sum_hw dL/da0 * a0 / s1`` comes out of layer0's backward pass,
  which reads dL/da0 and a0 anyway;
* layer0's backward pass also applies the adjoint of its FIR filter, so its dL/dt is never
  written out (the forward pass likewise filters in the same pass as the leaky ReLU; see
  :func:`i2s.ops.folded_layer.fold_forward`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from i2s.ops.cpu_kernels import clamp_arg
from i2s.ops.fir import separable_taps
from i2s.ops.folded_layer import conv_input_grad, fold_forward, input_and_style_grads
from i2s.ops.layer_spec import ConvLayerSpec, ToRGBSpec


class FoldedSynthesisBlock(torch.autograd.Function):
    """Gradients flow to ``x`` and every style and demodulation input; the layers' weights are
    frozen (the caller checks)."""

    @staticmethod
    def forward(ctx, x, s0, d0, s1, d1, s_rgb, noise0, noise1, spec0: ConvLayerSpec,
                spec1: ConvLayerSpec, rgb: ToRGBSpec, kernels):
        """x: [1, I, H, W]; s0 [1, I], d0 [1, O], s1 [1, O], d1 [1, O], s_rgb [1, O] (ToRGB
        styles including its weight gain); noise0/noise1: [1, 1, 2H, 2W] (times their
        strengths) or None; spec0 (up=2), spec1 (up=1), rgb: the layers' weights and settings;
        kernels: the compiled module. Returns a1 [1, O, 2H, 2W] and rgb [1, K, 2H, 2W],
        channels-last."""
        ctx.set_materialize_grads(False)
        a0, x, wf0, bg0, n0 = fold_forward(x, s0, d0, noise0, spec0, kernels)
        a1, _, wf1, bg1, n1 = fold_forward(a0, s1, d1, noise1, spec1, kernels)
        w_rgb = rgb.weight * s_rgb.reshape(1, -1, 1, 1)  # [K, O, 1, 1]
        out_rgb = F.conv2d(a1, w_rgb, rgb.bias)
        if rgb.clamp is not None:
            out_rgb = out_rgb.clamp(-rgb.clamp, rgb.clamp)
        ctx.save_for_backward(x, s0, d0, wf0, bg0, n0, a0, s1, d1, wf1, bg1, n1, a1, w_rgb,
                              out_rgb)
        ctx.specs, ctx.kernels = (spec0, spec1, rgb), kernels
        return a1, out_rgb

    @staticmethod
    def backward(ctx, grad_a1, grad_rgb):
        x, s0, d0, wf0, bg0, n0, a0, s1, d1, wf1, bg1, n1, a1, w_rgb, out_rgb = ctx.saved_tensors
        spec0, spec1, rgb = ctx.specs
        k = ctx.kernels
        none = (None,) * 6
        if grad_a1 is None and grad_rgb is None:
            return (None,) * 6 + none
        if grad_a1 is not None:
            grad_a1 = grad_a1.contiguous(memory_format=torch.channels_last)
        grad_s_rgb = w_rgb2d = None
        if grad_rgb is not None:
            if rgb.clamp is not None:
                grad_rgb = grad_rgb.masked_fill(out_rgb.abs() >= rgb.clamp, 0.0)
            grad_rgb = grad_rgb.contiguous(memory_format=torch.channels_last)
            w_rgb2d = w_rgb.reshape(w_rgb.shape[0], -1).contiguous()  # [K, O]
        # layer1 and ToRGB: one pass over a1
        grad_t1, sums1 = k.noise_lrelu_backward(grad_a1, a1, n1, spec1.gain, spec1.slope,
                                                clamp_arg(spec1.clamp), grad_rgb, w_rgb2d,
                                                False)
        grad_d1 = ((sums1[0] - bg1 * sums1[1]) / d1[0]).unsqueeze(0)
        if grad_rgb is not None:  # dL/ds_rgb[c] = sum_k W_rgb[k, c] dL/dW_rgb'[k, c]
            grad_s_rgb = (rgb.weight.reshape(w_rgb2d.shape) * sums1[2:]).sum(0, keepdim=True)
        # layer1's input gradient; its style gradient from layer0's pass unless a style is 0
        style1_in_pass = not bool((s1 == 0).any())
        if style1_in_pass:
            grad_a0 = conv_input_grad(grad_t1, a0, wf1, 1, None)
        else:
            grad_a0, grad_s1 = input_and_style_grads(grad_t1, a0, s1, d1, spec1, wf1)
        taps = separable_taps(spec0.fir, 4.0)
        if taps is not None:  # the FIR's adjoint in the same pass (dL/dt is never written)
            grad_t0, sums0 = k.noise_lrelu_fir_backward(grad_a0, a0, n0, spec0.gain,
                                                        spec0.slope, clamp_arg(spec0.clamp),
                                                        *taps, style1_in_pass)
        else:
            grad_t0, sums0 = k.noise_lrelu_backward(grad_a0, a0, n0, spec0.gain, spec0.slope,
                                                    clamp_arg(spec0.clamp), None, None,
                                                    style1_in_pass)
        if style1_in_pass:
            grad_s1 = (sums0[2] / s1[0]).unsqueeze(0)
        grad_d0 = ((sums0[0] - bg0 * sums0[1]) / d0[0]).unsqueeze(0)
        grad_x = grad_s0 = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_x, grad_s0 = input_and_style_grads(grad_t0, x, s0, d0, spec0, wf0,
                                                    fir_done=taps is not None)
        return (grad_x, grad_s0, grad_d0, grad_s1, grad_d1, grad_s_rgb) + none
