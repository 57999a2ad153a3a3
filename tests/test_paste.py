"""Paste-back blending: the landmark mask, Laplacian-pyramid blending, and the seam it leaves
on the astronaut photo, against the old square paste."""

import numpy as np
import pytest
import torch

from i2s.faces import paste as P
from i2s.faces.alignment import AlignTransform, ffhq_quad
from tests.test_align import needs_faces, synthetic_landmarks


def test_convex_hull_known_answer():
    pts = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [1, 0.5]], float)
    hull = P._convex_hull(pts)
    assert {tuple(p) for p in hull} == {(0, 0), (2, 0), (2, 2), (0, 2)}


def test_multiband_blend_extremes_and_support():
    rng = np.random.default_rng(0)
    a, b = rng.random((64, 48, 3), np.float32), rng.random((64, 48, 3), np.float32)
    out, support = P.multiband_blend(a, b, np.ones((64, 48), np.float32))
    np.testing.assert_allclose(out, a, atol=1e-5)
    out, support = P.multiband_blend(a, b, np.zeros((64, 48), np.float32))
    assert np.array_equal(out, b) and not support.any()
    m = np.zeros((64, 48), np.float32)
    m[20:40, 10:30] = 1
    out, support = P.multiband_blend(a, b, m, levels=3)
    assert np.array_equal(out[support == 0], b[support == 0]) and support[0, 0] == 0
    assert np.abs(out[28:32, 18:22] - a[28:32, 18:22]).max() < 0.05


def face_landmarks():
    """68 points of a plausible frontal face (dlib's order) around synthetic_landmarks'
    eyes and mouth: the jaw a U from ear to ear through the chin, brows above the eyes."""
    lm = synthetic_landmarks()
    t = np.linspace(np.pi, 0, 17)
    lm[0:17] = np.stack([50 + 27 * np.cos(t), 50 + 35 * np.sin(t)], 1)
    lm[17:27] = np.stack([np.linspace(33, 67, 10), np.full(10, 42)], 1)
    lm[27:36] = [50, 60]
    lm[49:54] = [50, 68]
    lm[55:68] = [50, 72]
    return lm


def test_face_mask_covers_face_not_corners():
    lm = face_landmarks() * 2 + 40
    t = AlignTransform(ffhq_quad(lm), (300, 300), 128, lm, (0, 0, 1, 1))
    m = P.face_mask(t, 128, 0.05)
    assert m.shape == (128, 128) and m[70, 64] > 0.99        # the face's centre
    assert m[2, 2] == 0 and m[125, 2] == 0 and m[2, 125] == 0  # the square's corners
    assert m[0].max() < 0.05                                   # fades before the top edge
    # without landmarks: an ellipse in the FFHQ place
    t0 = AlignTransform(ffhq_quad(lm), (300, 300), 128, np.zeros((68, 2)), (0, 0, 1, 1))
    m0 = P.face_mask(t0, 128, 0.05)
    assert m0[64, 64] > 0.99 and m0[2, 2] == 0


@needs_faces
def test_astronaut_seam_is_smaller_than_the_square_paste():
    skimage_data = pytest.importorskip("skimage.data")
    import i2s
    from i2s.faces.alignment import align
    from i2s.models import render
    photo = skimage_data.astronaut()
    a = align(photo, size=64)
    G = i2s.load_generator("demo")
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(7)))
    edited = render(G, ws)[0]  # another face with another background: a hard case
    square, sq_mask = P.paste_back(edited, photo, a.transform, region="square", blend="alpha")
    face, face_mask = P.paste_back(edited, photo, a.transform)  # face + multiband
    band = P.transition_band(sq_mask) | P.transition_band(face_mask)
    before, after = P.seam_energy(square, photo, band), P.seam_energy(face, photo, band)
    assert after < before / 3, (before, after)   # measured 0.41 -> 0.09
    assert np.array_equal(face[face_mask == 0], photo[face_mask == 0])
    with pytest.raises(Exception, match="band is empty"):
        P.seam_energy(face, photo, np.zeros(photo.shape[:2], bool))
