"""Paste an edited aligned face back into the photo it was aligned from: the inverse of the
FFHQ alignment's quad map, blended so that no seam shows.

Two choices, each with the simpler one kept for comparison:

* region ``face`` (default): only the face and hair, a mask built from the 68 landmarks
  (the convex hull of the jaw line and the brows raised to cover forehead and hair, widened a
  little), so the edit's own background never enters the photo; ``square``: the whole aligned
  square with a feathered edge (what i2s did before: its background shows as a square);
* blend ``multiband`` (default): Laplacian-pyramid blending (Burt & Adelson 1983): each
  frequency band is mixed with a mask blurred to that band's scale, so colours meet smoothly
  and detail meets sharply; ``alpha``: one feathered alpha mask.

:func:`seam_energy` measures the result: the gradient energy the paste adds along the
transition zones, over the original photo's there (0: the paste adds no edges).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from i2s.errors import I2SError
from i2s.faces.alignment import AlignTransform, affine_to_aligned

REGIONS = ("face", "square")
BLENDS = ("multiband", "alpha")
_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0


def paste_back(edited: np.ndarray, original: np.ndarray, transform: AlignTransform,
               feather: float = 0.1, region: str = "face",
               blend: str = "multiband") -> tuple[np.ndarray, np.ndarray]:
    """Warp an edited aligned face back into the original photo.

    Args:
        edited: uint8 [n, n, 3], any n (the model's resolution).
        original: uint8 [H, W, 3], the photo the transform was made from.
        feather: width of the soft edge as a fraction of the aligned square's side.
        region: ``face`` (landmark mask: face and hair) or ``square`` (the aligned square).
        blend: ``multiband`` (Laplacian pyramid) or ``alpha`` (one feathered mask).
    Returns:
        (uint8 [H, W, 3] composite, float32 [H, W] mask in [0, 1]: the blend mask at full
        resolution, above 0 wherever the photo changed). Pixels where the mask is 0 are the
        original's, bit for bit.
    """
    h, w = original.shape[:2]
    if edited.ndim != 3 or edited.shape[0] != edited.shape[1]:
        raise I2SError(f"the edited face must be a square image, got {edited.shape[1]}x"
                       f"{edited.shape[0]}")
    if (w, h) != tuple(transform.original_size):
        raise I2SError(f"the original is {w}x{h} but the transform was made on "
                       f"{transform.original_size[0]}x{transform.original_size[1]}")
    if not 0 <= feather <= 0.5:
        raise I2SError(f"feather must be in [0, 0.5], got {feather}")
    if region not in REGIONS or blend not in BLENDS:
        raise I2SError(f"region must be one of {REGIONS} and blend one of {BLENDS}")
    quad = transform.quad
    qsize = float(np.hypot(*(quad[3] - quad[0])))
    face = Image.fromarray(np.asarray(edited))
    n = face.size[0]
    if n > 1.5 * qsize:   # much larger than its footprint: pre-filter against aliasing
        n = max(8, math.ceil(qsize))
        face = face.resize((n, n), Image.LANCZOS)
    if region == "face":
        mask_a = face_mask(transform, n, feather if blend == "alpha" else feather / 4)
    else:
        mask_a = square_mask(n, feather)
    # Work only on the quad's bounding box in the original.
    # Multi-band: as many bands as fit the soft edge (about feather * side pixels wide), and
    # room around the quad for the widest band to fade out inside the region worked on.
    levels = int(np.clip(round(math.log2(max(2.0, feather * qsize))), 1, 6))
    margin = 1 if blend == "alpha" else 2 ** (levels + 2)
    x0, y0 = np.maximum(np.floor(quad.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(quad.max(0)).astype(int) + margin, [w, h])
    if x1 <= x0 or y1 <= y0:
        return original.copy(), np.zeros((h, w), np.float32)
    m = affine_to_aligned(quad, n)
    # PIL's affine maps output (x, y) to input (a x + b y + c, d x + e y + f).
    shift = m @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]])
    coeffs = shift[:2].flatten().tolist()
    box = (int(x1 - x0), int(y1 - y0))

    def warp(im: Image.Image, resample: int) -> np.ndarray:
        return np.asarray(im.transform(box, Image.AFFINE, coeffs, resample), dtype=np.float32)

    warped = warp(face, Image.BICUBIC)
    mask = warp(Image.fromarray(mask_a, "F"), Image.BILINEAR).clip(0, 1)
    region_px = original[y0:y1, x0:x1].astype(np.float32)
    if blend == "alpha":
        blended, support = region_px + (warped - region_px) * mask[..., None], mask
    else:
        # The edit only near its mask (outside the square it is undefined, and its own
        # background must not bleed into the photo's through the coarse bands): the photo
        # stands in for it elsewhere.
        near = np.clip(mask * 4.0, 0.0, 1.0)
        filled = region_px + (warped - region_px) * near[..., None]
        blended, reach = multiband_blend(filled, region_px, mask, levels)
        # the returned mask is the blend's own (fine) mask, kept above 0 wherever the
        # coarser bands reached: 0 still means "the photo, untouched"
        support = np.where(reach > 0, np.maximum(mask, 1e-3), 0.0).astype(np.float32)
    out = original.copy()
    changed = support > 0
    patch = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1][changed] = patch[changed]
    full_mask = np.zeros((h, w), np.float32)
    full_mask[y0:y1, x0:x1] = support
    return out, full_mask


def square_mask(n: int, feather: float) -> np.ndarray:
    """float32 [n, n]: 1 inside the aligned square, a smooth ramp to 0 over ``feather``."""
    t = (np.arange(n) + 0.5) / n
    edge = np.minimum(t, 1 - t)
    ramp = np.clip(edge / feather, 0, 1) if feather > 0 else np.ones_like(edge)
    ramp = ramp * ramp * (3 - 2 * ramp)
    return (ramp[:, None] * ramp[None, :]).astype(np.float32)


def face_polygon(landmarks: np.ndarray) -> np.ndarray:
    """[K, 2] convex polygon around face and hair from 68 landmarks (any coordinates): the
    jaw line, the brows raised by 0.6 and 1.1 times the brow-to-chin height, and the jaw's
    ends widened by a fifth of the face's width."""
    jaw, brows = landmarks[0:17], landmarks[17:27]
    up = np.array([0.0, 1.0]) * (landmarks[8, 1] - brows[:, 1].mean())
    centre = jaw.mean(0)
    wide = centre + (jaw[[0, 1, 15, 16]] - centre) * 1.2
    hair = [brows - up * k for k in (0.6, 1.1)]
    crown = [(b - centre) * 1.15 + centre - up * 1.1 for b in brows[[0, 9]]]
    return _convex_hull(np.concatenate([jaw, brows, wide, *hair, np.stack(crown)]))


def face_mask(transform: AlignTransform, n: int, feather: float) -> np.ndarray:
    """float32 [n, n] in aligned space: 1 on the face and hair (:func:`face_polygon` of the
    transform's landmarks; an ellipse where a transform has none), widened by 3% of the side
    and softened over ``feather`` of it."""
    lms = np.asarray(transform.landmarks, np.float64)
    poly = None
    if lms.shape == (68, 2) and np.isfinite(lms).all():
        m = affine_to_aligned(transform.quad, n)
        poly = face_polygon(lms @ m[:2, :2].T + m[:2, 2])
        x, y = poly[:, 0], poly[:, 1]
        area = 0.5 * abs(float(x @ np.roll(y, 1) - y @ np.roll(x, 1)))
        if area < 0.1 * n * n:  # not a face's landmarks (none stored, or degenerate)
            poly = None
    if poly is None:  # FFHQ alignment puts face and hair about here
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        poly = np.stack([0.5 + 0.36 * np.cos(t), 0.47 + 0.45 * np.sin(t)], 1) * n
    im = Image.new("L", (n, n), 0)
    ImageDraw.Draw(im).polygon([tuple(p) for p in poly], fill=255)
    grow = 2 * max(1, round(0.015 * n)) + 1
    im = im.filter(ImageFilter.MaxFilter(grow))
    if feather > 0:
        im = im.filter(ImageFilter.GaussianBlur(feather * n / 3))
    # hair reaching the square's edge fades out inside it: no straight edge ever shows
    return np.asarray(im, np.float32) / 255.0 * square_mask(n, 0.08)


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull [K, 2] of points [N, 2] (Andrew's monotone chain)."""
    pts = sorted(map(tuple, np.asarray(points, np.float64)))

    def half(seq):
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) -
                                     (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(reversed(pts))
    return np.array(lower[:-1] + upper[:-1])


def _blur(a: np.ndarray) -> np.ndarray:
    """Separable 5-tap binomial blur over the first two axes (edges reflected)."""
    for axis in (0, 1):
        if a.shape[axis] < 3:
            continue
        pad = [(0, 0)] * a.ndim
        pad[axis] = (2, 2)
        p = np.pad(a, pad, mode="reflect")
        n = a.shape[axis]
        a = sum(k * np.take(p, np.arange(i, i + n), axis=axis) for i, k in enumerate(_BINOMIAL))
    return a


def _down(a: np.ndarray) -> np.ndarray:
    return _blur(a)[::2, ::2]


def _up(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    z = np.zeros(shape[:2] + a.shape[2:], np.float32)
    z[::2, ::2] = a
    return _blur(z) * 4.0


def multiband_blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray,
                    levels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Laplacian-pyramid blend of float images [H, W, C]: ``a`` where ``mask`` [H, W] is 1,
    ``b`` where it is 0, each band mixed with the mask's Gaussian level of that band.

    Returns (blend [H, W, C], support [H, W] in [0, 1]: 0 where the blend is exactly ``b``,
    i.e. beyond the reach of the widest mask level)."""
    h, w = mask.shape
    if levels is None:
        levels = max(1, min(6, int(math.log2(max(1, min(h, w)))) - 3))
    ga, gb, gm = [a.astype(np.float32)], [b.astype(np.float32)], [mask.astype(np.float32)]
    for _ in range(levels):
        ga.append(_down(ga[-1]))
        gb.append(_down(gb[-1]))
        gm.append(_down(gm[-1]))
    out = ga[-1] * gm[-1][..., None] + gb[-1] * (1 - gm[-1][..., None])
    reach = gm[-1]
    for k in range(levels - 1, -1, -1):
        shape = ga[k].shape
        la = ga[k] - _up(ga[k + 1], shape)
        lb = gb[k] - _up(gb[k + 1], shape)
        out = _up(out, shape) + la * gm[k][..., None] + lb * (1 - gm[k][..., None])
        reach = np.maximum(_up(reach, shape), gm[k])
    support = np.where(reach > 1e-3, np.maximum(reach, 1e-3), 0.0).clip(0, 1)
    return np.where(support[..., None] > 0, out, b), support.astype(np.float32)


def seam_energy(composite: np.ndarray, original: np.ndarray, band: np.ndarray,
                sigma: float = 2.0) -> float:
    """How much a paste's edge shows: the gradient energy the paste adds on ``band`` (bool
    [H, W]: where a seam could be, e.g. the transition zones of the masks compared), over the
    original photo's gradient energy there: ``mean(max(0, |grad C|^2 - |grad O|^2)) /
    mean(|grad O|^2)``, on greys blurred by ``sigma`` pixels (so that a soft colour step
    counts as well as a sharp one). 0: the paste adds no edges there. Only added energy
    counts: a low-resolution edit that is smoother than the photo hides no seam."""
    if not band.any():
        raise I2SError("seam_energy: the band is empty")
    ec, eo = _gradient_energy(composite, sigma), _gradient_energy(original, sigma)
    return float(np.maximum(ec - eo, 0)[band].mean() / max(eo[band].mean(), 1e-12))


def _gradient_energy(img: np.ndarray, sigma: float) -> np.ndarray:
    """|grad|^2 [H, W] of an RGB image's grey level after a Gaussian blur of ``sigma`` px."""
    f = np.asarray(img, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    for _ in range(max(0, round(sigma * sigma))):  # the binomial kernel's variance is 1
        f = _blur(f)
    gy, gx = np.gradient(f.astype(np.float64))
    return gx ** 2 + gy ** 2


def transition_band(mask: np.ndarray) -> np.ndarray:
    """bool [H, W]: where a paste mask [H, W] passes from the photo to the edit (0.02 < mask <
    0.98), or its 1-pixel edge where the mask is hard."""
    band = (mask > 0.02) & (mask < 0.98)
    on = mask >= 0.98
    inner = on & np.roll(on, 1, 0) & np.roll(on, -1, 0) & np.roll(on, 1, 1) & np.roll(on, -1, 1)
    return band | (on & ~inner)
