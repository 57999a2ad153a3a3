"""The paper's edits (section 3) on hand-made codes with known answers."""

import pytest
import torch

import i2s
from i2s.edits import parse_layers
from i2s.errors import I2SError


def codes(n=2, num_ws=6, w_dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, num_ws, w_dim, generator=g), torch.randn(n, num_ws, w_dim, generator=g)


def test_morph_endpoints_bit_exact_and_midpoint():
    a, b = codes()
    assert torch.equal(i2s.morph(a, b, 1.0), a)
    assert torch.equal(i2s.morph(a, b, 0.0), b)
    torch.testing.assert_close(i2s.morph(a, b, 0.5), (a + b) / 2)
    seq = i2s.morph(a[0], b[0], [1.0, 0.25, 0.0])
    assert seq.shape == (3, 6, 4)
    assert torch.equal(seq[0], a[0]) and torch.equal(seq[2], b[0])
    torch.testing.assert_close(seq[1], 0.25 * a[0] + 0.75 * b[0])
    # Extrapolation is allowed (t outside [0, 1]).
    torch.testing.assert_close(i2s.morph(a, b, 2.0), 2 * a - b)


def test_morph_rejects_mismatched_codes():
    a, _ = codes(num_ws=6)
    b, _ = codes(num_ws=8)
    with pytest.raises(I2SError, match="same model"):
        i2s.morph(a, b, 0.5)
    with pytest.raises(I2SError, match="scalar or a vector"):
        i2s.morph(a, a, torch.zeros(2, 2))


@pytest.mark.parametrize("num_ws,expected", [(18, list(range(9, 18))), (14, list(range(7, 14))),
                                             (10, [5, 6, 7, 8, 9]), (2, [1]), (7, [3, 4, 5, 6])])
def test_default_crossover_is_second_half(num_ws, expected):
    assert i2s.default_crossover_layers(num_ws) == expected
    c = torch.zeros(num_ws, 3)
    s = torch.ones(num_ws, 3)
    out = i2s.crossover(c, s)
    assert out[:, 0].tolist() == [1.0 if i in expected else 0.0 for i in range(num_ws)]


def test_crossover_layers_and_batches():
    a, b = codes(num_ws=10)
    out = i2s.crossover(a, b, [0, 3, 9])
    for i in range(10):
        src = b if i in (0, 3, 9) else a
        assert torch.equal(out[:, i], src[:, i])
    assert torch.equal(i2s.crossover(a, b, []), a)
    assert torch.equal(i2s.crossover(a, b, range(10)), b)
    with pytest.raises(I2SError, match="out of range"):
        i2s.crossover(a, b, [10])
    with pytest.raises(I2SError, match="out of range"):
        i2s.crossover(a, b, [-1])


def test_parse_layers():
    assert parse_layers("5-9", 18) == [5, 6, 7, 8, 9]
    assert parse_layers("3,5,7-8", 10) == [3, 5, 7, 8]
    assert parse_layers("9-", 12) == [9, 10, 11]
    assert parse_layers("0", 4) == [0]
    for bad in ("5-20", "x", "4-2", "1-2-3", "", "-3"):
        with pytest.raises(I2SError):
            parse_layers(bad, 18)


def test_expression_threshold_and_normalisation_known_answer():
    # 3 layers of width 2. Difference rows: norm 5 (3,4), norm 0.5, norm 2 (0,2).
    neutral = torch.zeros(3, 2)
    expressive = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 2.0]])
    target = torch.full((3, 2), 10.0)
    r = i2s.transfer_expression(target, neutral, expressive, strength=1.0, threshold=1.0,
                                normalise="source")
    assert r.kept_layers == [0, 2]
    assert r.layer_norms == pytest.approx([5.0, 0.5, 2.0])
    # Raw Frobenius norm sqrt(25 + 0.25 + 4); cleaned sqrt(29).
    scale = (29.25 / 29.0) ** 0.5
    assert r.scale == pytest.approx(scale)
    expected = target + scale * torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(r.latent, expected)
    # Strength is linear; the dropped layer never moves.
    r2 = i2s.transfer_expression(target, neutral, expressive, strength=-0.5, threshold=1.0,
                                 normalise="source")
    torch.testing.assert_close(r2.latent - target, -0.5 * (expected - target))
    assert torch.equal(r2.latent[1], target[1])
    # Threshold 0 keeps everything: scale 1, the plain w1 + lambda (w3 - w2).
    r3 = i2s.transfer_expression(target, neutral, expressive, strength=2.0, threshold=0.0,
                                 normalise="source")
    assert r3.scale == pytest.approx(1.0) and r3.kept_layers == [0, 1, 2]
    torch.testing.assert_close(r3.latent, target + 2 * expressive)


def test_expression_unit_normalisation_is_the_default_and_strength_is_the_step():
    neutral = torch.zeros(3, 2)
    expressive = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 2.0]])
    target = torch.full((3, 2), 10.0)
    r = i2s.transfer_expression(target, neutral, expressive, strength=1.5, threshold=1.0)
    assert r.normalise == "unit" and r.cleaned_norm == pytest.approx(29.0 ** 0.5)
    expected = target + 1.5 / 29.0 ** 0.5 * torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(r.latent, expected)
    assert float((r.latent - target).norm()) == pytest.approx(1.5)
    # strength = cleaned_norm reproduces the source's own (cleaned) step.
    full = i2s.transfer_expression(target, neutral, expressive, r.cleaned_norm, threshold=1.0)
    torch.testing.assert_close(full.latent[[0, 2]], (target + expressive)[[0, 2]])


def test_expression_tripled_difference_same_unit_result_bigger_source_step():
    t, n = codes(n=1)
    _, e = codes(n=1, seed=1)
    e3 = n + 3 * (e - n)  # the same expression, three times as strong
    for lam in (0.5, 1.5):
        # threshold 0: tripling must not change which layers are kept
        one = i2s.transfer_expression(t, n, e, lam, threshold=0.0)
        three = i2s.transfer_expression(t, n, e3, lam, threshold=0.0)
        torch.testing.assert_close(one.latent, three.latent)
        src1 = i2s.transfer_expression(t, n, e, lam, threshold=0.0, normalise="source")
        src3 = i2s.transfer_expression(t, n, e3, lam, threshold=0.0, normalise="source")
        torch.testing.assert_close(src3.latent - t, 3 * (src1.latent - t))
    with pytest.raises(I2SError, match="normalise"):
        i2s.transfer_expression(t, n, e, 1.0, normalise="frobenius")


def test_expression_zero_difference_or_nothing_kept_leaves_target():
    a, b = codes(n=1)
    r = i2s.transfer_expression(a, b, b, strength=3.0)
    assert torch.equal(r.latent, a) and r.kept_layers == [] and r.scale == 0.0
    r = i2s.transfer_expression(a, b, b + 0.01, strength=3.0, threshold=1.0)
    assert torch.equal(r.latent, a) and r.kept_layers == []


def test_expression_batch_target_single_source():
    t, _ = codes(n=3)
    n, e = codes(n=1, seed=1)
    r = i2s.transfer_expression(t, n, e, 1.0, threshold=0.0, normalise="source")
    torch.testing.assert_close(r.latent, t + (e - n))
    with pytest.raises(I2SError, match="single codes"):
        i2s.transfer_expression(t, t, t)
