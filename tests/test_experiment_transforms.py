"""Known answers for the studies' transforms, masks and metrics."""

import numpy as np
import pytest
import torch

from i2s.experiments.report import summary
from i2s.experiments.transforms import (
    FIXED_REGIONS,
    Affine,
    affine_matrix,
    apply_affine,
    box_mask,
    default_affines,
    landmark_box,
    paint_region,
)
from i2s.media import metrics


def _image(n=2, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64)


def test_identity_is_exact():
    x = _image()
    assert torch.allclose(apply_affine(x, Affine("none")), x, atol=1e-12)


@pytest.mark.parametrize("k,angle", [(1, 90), (2, 180), (3, 270), (3, -90)])
def test_right_angle_rotation_equals_rot90(k, angle):
    # Positive angles turn the content counter-clockwise on screen, like np.rot90.
    x = _image()
    out = apply_affine(x, Affine("r", angle=angle))
    assert torch.allclose(out, torch.rot90(x, k, dims=(2, 3)), atol=1e-12)


def test_whole_pixel_translation_moves_pixels_exactly():
    x = _image(size=20)
    right = apply_affine(x, Affine("t", dx=3 / 20))
    assert torch.allclose(right[..., :, 3:], x[..., :, :-3], atol=1e-12)
    up = apply_affine(x, Affine("t", dy=-2 / 20))
    assert torch.allclose(up[..., :-2, :], x[..., 2:, :], atol=1e-12)
    # The uncovered border is filled by reflection of the image, not zeros.
    assert torch.allclose(right[..., :, 2], x[..., :, 0], atol=1e-12)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_scaling_about_the_centre_on_a_linear_ramp(scale):
    size = 32
    xc = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2   # pixel centres, centred
    ramp = (0.01 * xc).reshape(1, 1, 1, size).expand(1, 3, size, size).clone()
    out = apply_affine(ramp, Affine("s", scale=scale))
    inner = slice(size // 2 - 6, size // 2 + 6)   # sampled inside the image for both scales
    expect = (0.01 * xc / scale)[inner]
    assert torch.allclose(out[0, 0, 10, inner], expect, atol=1e-12)


def test_affine_matrix_composes_to_identity_with_its_inverse():
    t = Affine("x", dx=0.1, dy=-0.05, scale=1.5, angle=30)
    m = torch.cat([affine_matrix(t, 64, 64), torch.tensor([[0.0, 0.0, 1.0]],
                                                          dtype=torch.float64)])
    a = np.deg2rad(30)
    fwd = torch.tensor([[1.5 * np.cos(a), 1.5 * np.sin(a), 0.2],
                        [-1.5 * np.sin(a), 1.5 * np.cos(a), -0.1],
                        [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(m @ fwd, torch.eye(3, dtype=torch.float64), atol=1e-12)


def test_default_affines_cover_the_paper():
    full = default_affines(quick=False)
    names = [t.name for t in full]
    assert names[0] == "none" and len(set(names)) == len(names)
    assert {0.5, 2.0} <= {t.scale for t in full}
    assert 0.15 in {abs(t.dx) for t in full} and {0.15, -0.15} <= {t.dx for t in full}
    assert any(t.angle > 0 for t in full) and any(t.angle < 0 for t in full)
    assert len(default_affines(quick=True)) < len(full)


def test_box_mask_counts_pixel_centres():
    m = box_mask((0.25, 0.5, 0.75, 1.0), 8)
    # x centres 2.5..5.5 of 8 (0.3125..0.6875) -> columns 2..5; y columns 4..7.
    assert m.sum() == 4 * 4 and m[4:, 2:6].all()
    assert box_mask((0, 0, 1, 1), 5).all()


def test_landmark_box_from_synthetic_landmarks():
    lms = np.zeros((68, 2))
    lms[36:48] = [[20, 30], [40, 30], [40, 34], [20, 34]] * 3   # eyes span 20..40 x 30..34
    box = landmark_box(lms, "eyes", 100)
    pad = 0.35 * 0.20
    assert box == pytest.approx((0.20 - pad, 0.30 - pad, 0.40 + pad, 0.34 + pad))
    assert set(FIXED_REGIONS) == {"eyes", "nose", "mouth"}


def test_paint_region_touches_only_the_mask():
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    mask = box_mask((0.0, 0.0, 0.5, 0.5), 8)
    out = paint_region(img, mask)
    assert (out[mask] == 128).all() and (out[~mask] == img[~mask]).all()
    assert not np.shares_memory(out, img)


def test_metrics_known_values():
    a = np.zeros((1, 16, 16, 3), np.uint8)
    b = np.full((1, 16, 16, 3), 255, np.uint8)
    assert metrics.mse(a, b)[0] == pytest.approx(1.0)
    assert metrics.psnr(metrics.mse(a, a), max_db=100.0)[0] == pytest.approx(100.0)   # capped
    mask = np.zeros((16, 16), bool)
    mask[:4] = True
    c = a.copy()
    c[0, :4] = 51                                                     # 0.2 on [0, 1]
    assert metrics.masked_mse(c, a, mask)[0] == pytest.approx(0.04)
    assert metrics.masked_mse(c, a, ~mask)[0] == 0
    assert metrics.ssim(b, b)[0] == pytest.approx(1.0)
    assert summary([1.0, None, 3.0]) == 2.0 and summary([None]) is None


def test_ssim_matches_scikit_image():
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    ours = metrics.ssim(a, b)
    for i in range(2):
        ref = structural_similarity(a[i] / 255.0, b[i] / 255.0, channel_axis=2,
                                    gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0)
        assert ours[i] == pytest.approx(ref, abs=1e-9)
