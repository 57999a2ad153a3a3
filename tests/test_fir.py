import torch
import torch.nn.functional as F

from i2s.ops.fir import fir_filter2d, make_fir_filter, separable_taps, upsample2d


def zero_insert(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return up


def test_filter_is_normalised_binomial():
    f = make_fir_filter()
    assert f.shape == (4, 4)
    assert torch.isclose(f.sum(), torch.tensor(1.0))
    assert torch.allclose(f[0], torch.tensor([1.0, 3.0, 3.0, 1.0]) / 64)


def test_upsample_equals_zero_insertion_then_padded_filter():
    # StyleGAN2's upsample2d: zero insertion, pad (2 before, 1 after), 4x4 filter with gain 4.
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    f = make_fir_filter().double()
    ref = F.conv2d(F.pad(zero_insert(x), (2, 1, 2, 1)), (f * 4).expand(3, 1, 4, 4), groups=3)
    out = upsample2d(x, f)
    assert out.shape == (2, 3, 10, 14)
    assert torch.allclose(out, ref, atol=1e-12)


def test_upsample_keeps_constant_interior():
    out = upsample2d(torch.ones(1, 1, 6, 6), make_fir_filter())
    assert torch.allclose(out[..., 2:-2, 2:-2], torch.ones(1, 1, 8, 8))


def test_fir_filter2d_shape_and_gain():
    x = torch.ones(1, 2, 8, 8)
    y = fir_filter2d(x, make_fir_filter(), pad=1, gain=2.0)
    assert y.shape == (1, 2, 7, 7)
    assert torch.allclose(y[..., 1:-1, 1:-1], torch.full((1, 2, 5, 5), 2.0))


def test_separable_taps():
    f = make_fir_filter()
    kv, kh = separable_taps(f, 4.0)
    assert torch.equal(torch.outer(kv, kh), f * 4.0)
    g = f.clone()
    g[1, 1] += 0.01
    assert separable_taps(g, 4.0) is None
