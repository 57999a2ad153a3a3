import pytest
import torch
import torch.nn.functional as F

from i2s.ops.fir import make_fir_filter
from i2s.ops.modconv import modulated_conv2d, transposed_conv_up2


def reference_up_conv(x, weight, fir):
    """StyleGAN2's generic path for up=2: zero insertion, pad (3, 2), FIR x4, then true
    convolution (correlation with the spatially flipped weight), no padding."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    up = F.pad(up, (3, 2, 3, 2))
    up = F.conv2d(up, (fir * 4).to(x.dtype).expand(c, 1, 4, 4), groups=c)
    return F.conv2d(up, weight.flip([2, 3]))


def manual_modconv(x, weight, styles, demodulate):
    outs = []
    for i in range(x.shape[0]):
        w = weight * styles[i].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        outs.append(F.conv2d(x[i:i + 1], w, padding=weight.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("k", [1, 3])
def test_matches_per_sample_definition(demodulate, k):
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 4, 6, 6), torch.randn(5, 4, k, k), torch.randn(3, 4)
    ref = manual_modconv(x, w, s, demodulate)
    for fused in (False, True):
        out = modulated_conv2d(x, w, s, demodulate=demodulate, per_sample_weights=fused)
        assert torch.allclose(out, ref, atol=1e-5)


def test_up_conv_matches_reference_path():
    torch.manual_seed(1)
    x, w = torch.randn(2, 4, 5, 5, dtype=torch.float64), torch.randn(6, 4, 3, 3).double()
    s = torch.ones(2, 4, dtype=torch.float64)
    fir = make_fir_filter().double()
    ref = reference_up_conv(x, w, fir)
    for fused in (False, True):
        out = modulated_conv2d(x, w, s, demodulate=False, up=2, fir=fir, per_sample_weights=fused)
        assert out.shape == (2, 6, 10, 10)
        assert torch.allclose(out, ref, atol=1e-10)


def test_demodulated_filters_have_unit_norm():
    torch.manual_seed(2)
    w, s = torch.randn(5, 4, 3, 3), torch.rand(2, 4) + 0.5
    # An impulse in input channel c reads out the (modulated, demodulated) filters of c;
    # summing their energy over c gives each output filter's squared norm.
    energy = torch.zeros(2, 5)
    for c in range(4):
        xi = torch.zeros(2, 4, 5, 5)
        xi[:, c, 2, 2] = 1.0
        energy += modulated_conv2d(xi, w, s).square().sum(dim=(2, 3))
    assert torch.allclose(energy, torch.ones(2, 5), atol=1e-5)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("fused", [False, True])
def test_gradcheck_float64(up, fused):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    s = (torch.rand(2, 3, dtype=torch.float64) + 0.5).requires_grad_(True)
    fir = make_fir_filter().double()

    def fn(x, w, s):
        return modulated_conv2d(x, w, s, demodulate=True, up=up, fir=fir, per_sample_weights=fused)

    assert torch.autograd.gradcheck(fn, (x, w, s), eps=1e-6, atol=1e-5)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        modulated_conv2d(torch.randn(2, 3, 4, 4), torch.randn(4, 3, 3, 3), torch.randn(2, 5))


@pytest.mark.parametrize("k", [1, 3])
def test_even_sized_transposed_conv_is_the_same_convolution(k):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 16, 9, 9, generator=g, dtype=torch.float64)
    w = torch.randn(8, 16, k, k, generator=g, dtype=torch.float64)
    want = transposed_conv_up2(x, w)
    got = transposed_conv_up2(x, w, even=True)
    assert got.shape[-1] == want.shape[-1] + 1 and got.shape[-1] % 2 == 0
    torch.testing.assert_close(got[:, :, :-1, :-1], want, rtol=0, atol=1e-12)
    assert got[:, :, -1].abs().max() == 0 and got[:, :, :, -1].abs().max() == 0
