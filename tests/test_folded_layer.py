"""The single-sample synthesis layer with modulation, demodulation, gain and bias folded
into the convolution (i2s.ops.folded_layer) against the textbook per-sample-weight path."""

import pytest
import torch

from i2s.embedding.losses import mean_squared_difference
from i2s.ops.bias_act import LRELU_GAIN, LRELU_SLOPE, bias_lrelu
from i2s.ops.fir import make_fir_filter
from i2s.ops.folded_layer import FoldedSynthesisLayer, channel_dots
from i2s.ops.layer_spec import ConvLayerSpec
from i2s.ops.modconv import demodulation_coefficients, modulated_conv2d

F64 = torch.float64


def layer_inputs(up, zero_style=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    i, o, h = 3, 4, 5
    x = torch.randn(1, i, h, h, generator=g, dtype=F64)
    weight = torch.randn(o, i, 3, 3, generator=g, dtype=F64)
    bias = torch.randn(o, generator=g, dtype=F64)
    noise = 0.3 * torch.randn(1, 1, h * up, h * up, generator=g, dtype=F64)
    styles = torch.rand(1, i, generator=g, dtype=F64) + 0.5
    if zero_style:
        styles[0, 1] = 0.0
    return x, styles, weight, bias, noise


def folded(x, styles, weight, bias, noise, up, clamp):
    fir = make_fir_filter().double()
    dcoefs = demodulation_coefficients(weight, styles)
    spec = ConvLayerSpec(weight, bias, up, fir, clamp, LRELU_GAIN, LRELU_SLOPE)
    return FoldedSynthesisLayer.apply(x, styles, dcoefs, noise, spec, None)


def textbook(x, styles, weight, bias, noise, up, clamp):
    fir = make_fir_filter().double()
    y = modulated_conv2d(x, weight, styles, demodulate=True, up=up, fir=fir,
                         per_sample_weights=True)
    return bias_lrelu(y + noise, bias, clamp=clamp)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("clamp", [None, 0.5])
@pytest.mark.parametrize("zero_style", [False, True])
def test_values_and_float64_gradients(up, clamp, zero_style):
    x, s, w, b, n = layer_inputs(up, zero_style)
    out = folded(x, s, w, b, n, up, clamp)
    ref = textbook(x, s, w, b, n, up, clamp)
    assert out.shape == (1, 4, 5 * up, 5 * up)
    assert (out - ref).abs().max().item() < 1e-12
    if clamp is not None:
        assert (ref.abs() >= clamp).any()  # the clamp is exercised
    x.requires_grad_(True)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, s: folded(x, s, w, b, n, up, clamp), (x, s),
                                    eps=1e-6, atol=1e-6)
    # and the gradients equal autograd's through the textbook path
    g = torch.randn_like(ref)
    got = torch.autograd.grad(folded(x, s, w, b, n, up, clamp), (x, s), g)
    want = torch.autograd.grad(textbook(x, s, w, b, n, up, clamp), (x, s), g)
    for a, e in zip(got, want, strict=True):
        assert (a - e).abs().max().item() < 1e-10


def test_without_noise():
    x, s, w, b, _ = layer_inputs(1)
    assert torch.allclose(folded(x, s, w, b, None, 1, None), textbook(x, s, w, b, 0.0, 1, None),
                          atol=1e-12)


def test_channel_dots_known_values():
    a = torch.arange(12.0).reshape(1, 3, 2, 2)
    b = torch.ones(1, 3, 2, 2) * torch.tensor([1.0, -1.0, 2.0]).reshape(1, 3, 1, 1)
    for fmt in (torch.contiguous_format, torch.channels_last):
        dots, sums = channel_dots(a.contiguous(memory_format=fmt),
                                  b.contiguous(memory_format=fmt), with_sum=True)
        assert dots.tolist() == [6.0, -22.0, 76.0]
        assert sums.tolist() == [6.0, 22.0, 38.0]


def test_generator_single_sample_path_matches_reference(monkeypatch):
    """The generator uses the folded layer for batches of one where the activation is larger
    than the weight: same image and latent gradient as the per-sample-weight reference."""
    import i2s

    calls = []
    apply = FoldedSynthesisLayer.apply
    monkeypatch.setattr(FoldedSynthesisLayer, "apply", lambda *a: calls.append(a[0].shape[-1])
                        or apply(*a))

    torch.manual_seed(0)
    G = i2s.StyleGAN2Generator(i2s.StyleGAN2Config(resolution=32, z_dim=32, w_dim=32,
                                                   channel_base=256, channel_max=32,
                                                   mapping_layers=2, conv_clamp=0.6))
    for p in G.synthesis.parameters():  # non-zero noise strengths and biases
        if p.ndim <= 1:
            p.data.normal_(0, 0.3)
    G = G.double().requires_grad_(False)
    ws = G.mapping(torch.randn(1, 32, dtype=F64)).requires_grad_(True)
    img = G.synthesis(ws)
    # input sizes: b16 (16 channels, 16^2 > 9 * 16) and b32 folded; b4, b8 (32 channels) not
    assert calls == [8, 16, 16, 32]
    ref = G.synthesis(ws, reference=True)
    assert (img - ref).abs().max().item() < 1e-12
    g = torch.randn_like(img)
    got = torch.autograd.grad(img, ws, g)[0]
    want = torch.autograd.grad(ref, ws, g)[0]
    assert (got - want).abs().max().item() < 1e-10 * want.abs().max().item()


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_mean_squared_difference_values_and_gradient_layout(layout):
    x = torch.randn(2, 4, 3, 3, dtype=F64).contiguous(memory_format=layout)
    y = torch.randn(2, 4, 3, 3, dtype=F64)
    x.requires_grad_(True)
    y.requires_grad_(True)
    out = mean_squared_difference(x, y)
    assert torch.allclose(out, (x - y).detach().square().flatten(1).mean(1))
    (gx,) = torch.autograd.grad(out.sum(), x, retain_graph=True)
    assert gx.is_contiguous(memory_format=layout)
    assert torch.allclose(gx, 2 * (x - y).detach() / x[0].numel())
    assert torch.autograd.gradcheck(mean_squared_difference, (x, y))


def test_trainable_weights_take_the_path_with_weight_gradients():
    """With weights that require gradients (training) a batch of one must not take the folded
    layer, whose backward gives no weight gradients."""
    import i2s

    torch.manual_seed(1)
    G = i2s.StyleGAN2Generator(i2s.StyleGAN2Config(resolution=32, z_dim=16, w_dim=16,
                                                   channel_base=256, channel_max=16,
                                                   mapping_layers=1)).double()
    ws = G.mapping(torch.randn(1, 16, dtype=F64))
    G.synthesis(ws).square().sum().backward()
    grads = {k: p.grad.clone() for k, p in G.synthesis.named_parameters()}
    G.zero_grad()
    G.synthesis(ws.detach(), reference=True).square().sum().backward()
    for k, p in G.synthesis.named_parameters():
        if p.grad is None:
            continue
        assert torch.allclose(grads[k], p.grad, rtol=1e-9, atol=1e-9), k
    assert grads["b32.conv1.weight"].abs().sum() > 0
