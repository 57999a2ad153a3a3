"""FFHQ-style face alignment (the paper's section 2: embedding needs faces
aligned like the training set).

The recipe (Karras et al. 2019, FFHQ dataset), from the 68 dlib landmarks:

    e_l, e_r = mean of eye landmarks 36-41, 42-47;  m_l, m_r = mouth corners 48, 54
    e = (e_l + e_r) / 2;  m = (m_l + m_r) / 2;  d_ee = e_r - e_l;  d_em = m - e
    x = d_ee - rot90(d_em)             (rot90(a, b) = (-b, a), i.e. d_em turned to the eye line)
    x = x / |x| * max(2 |d_ee|, 1.8 |d_em|);  y = rot90(x)
    c = e + 0.1 d_em;  quad = (c - x - y, c - x + y, c + x + y, c + x - y)   (TL, BL, BR, TR)

The quad (a square of side 2|x| rotated to the eye line) is cut out and resampled to the
output size. Where it leaves the photo, the photo is reflected and the reflection is blurred
and faded towards the median colour. Coordinates are continuous pixels (pixel centres at
+0.5; dlib's integer landmarks get +0.5).

Canonical positions: for a frontal face with ``2|d_ee| >= 1.8|d_em|`` (most faces), the eyes
land at x = (0.5 -+ 0.125) * size, on one horizontal line at y = (0.5 - 0.025 |d_em|/|d_ee|)
* size, see :func:`canonical_eye_positions`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from i2s.errors import I2SError
from i2s.faces.detect import Face, FaceChoice, NoFaceFound, detect_faces
from i2s.media.files import file_problem, write_text_atomic

TRANSFORM_FORMAT = "i2s-align-transform"


@dataclass
class AlignTransform:
    """Where an aligned face came from: enough to paste it back."""

    quad: np.ndarray              # [4, 2] float, TL, BL, BR, TR corners in the original
    original_size: tuple[int, int]  # (width, height) of the original photo
    size: int                     # side of the aligned image
    landmarks: np.ndarray         # [68, 2] in the original (continuous coordinates)
    box: tuple[int, int, int, int]  # detector box (left, top, right, bottom)
    score: float | None = None      # the detector's score for this face

    def to_dict(self) -> dict:
        return {"format": TRANSFORM_FORMAT, "quad": self.quad.tolist(),
                "original_size": list(self.original_size), "size": self.size,
                "landmarks": self.landmarks.tolist(), "box": list(self.box),
                "score": self.score,
                "quad_order": "top-left, bottom-left, bottom-right, top-right"}

    def save(self, path: str | os.PathLike) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> AlignTransform:
        p = Path(path)
        problem = file_problem(p)
        if problem is not None:
            raise I2SError(f"{p}: transform file: {problem}")
        try:
            d = json.loads(p.read_text())
            if d.get("format") != TRANSFORM_FORMAT:
                raise ValueError("not an i2s alignment transform")
            quad = np.asarray(d["quad"], dtype=np.float64)
            lms = np.asarray(d.get("landmarks", np.zeros((68, 2))), dtype=np.float64)
            w, h = (int(v) for v in d["original_size"])
            score = d.get("score")
            t = cls(quad, (w, h), int(d["size"]), lms, tuple(int(v) for v in d["box"]),
                    None if score is None else float(score))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise I2SError(f"{p}: not a valid alignment transform ({e})") from None
        if t.quad.shape != (4, 2) or not np.isfinite(t.quad).all() or min(w, h, t.size) < 1:
            raise I2SError(f"{p}: not a valid alignment transform (bad quad or sizes)")
        return t


def _rot90(v: np.ndarray) -> np.ndarray:
    return np.array([-v[1], v[0]])


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square [4, 2] (TL, BL, BR, TR) from 68 landmarks [68, 2]."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks [68, 2], got {lm.shape}")
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    eye, mouth = (eye_l + eye_r) / 2, (lm[48] + lm[54]) / 2
    d_ee, d_em = eye_r - eye_l, mouth - eye
    x = d_ee - _rot90(d_em)
    x = x / np.hypot(*x) * max(2.0 * np.hypot(*d_ee), 1.8 * np.hypot(*d_em))
    y = _rot90(x)
    c = eye + 0.1 * d_em
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """Left and right eye centres [2, 2] (means of landmarks 36-41 and 42-47)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0)])


def canonical_eye_positions(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Where the recipe puts the eye centres in the aligned image [2, 2], in closed form
    from the face's eye distance and eye-to-mouth distance (exact for a frontal face whose
    eye-to-mouth line is perpendicular to the eye line)."""
    (el, er), lm = eye_centres(landmarks), np.asarray(landmarks, dtype=np.float64)
    ee = float(np.hypot(*(er - el)))
    em = float(np.hypot(*((lm[48] + lm[54]) / 2 - (el + er) / 2)))
    half = max(2.0 * ee, 1.8 * em)              # |x|: half the side of the crop square
    y = 0.5 - 0.1 * em / (2 * half)
    dx = ee / 2 / (2 * half)
    return np.array([[0.5 - dx, y], [0.5 + dx, y]]) * size


def affine_to_aligned(quad: np.ndarray, n: float) -> np.ndarray:
    """3x3 matrix mapping original coordinates to aligned ones (quad -> [0, n]^2)."""
    tl, bl, _, tr = quad
    # Columns: the aligned x and y axes of the quad, with TL at the origin.
    basis = np.column_stack([(tr - tl) / n, (bl - tl) / n])   # aligned -> original (linear)
    inv = np.linalg.inv(basis)
    m = np.eye(3)
    m[:2, :2] = inv
    m[:2, 2] = -inv @ tl
    return m


def _pad_reflect_faded(img: np.ndarray, pads: tuple[int, int, int, int],
                       qsize: float) -> np.ndarray:
    """Reflect-pad uint8 [H, W, 3] by (left, top, right, bottom), then blur the padding and
    fade it to the median colour with distance from the photo (the FFHQ recipe's border)."""
    pl, pt, pr, pb = pads
    h, w = img.shape[:2]
    a = np.pad(img.astype(np.float32), ((pt, pb), (pl, pr), (0, 0)), mode="reflect")
    yy, xx = np.ogrid[:a.shape[0], :a.shape[1]]
    fx = np.maximum(np.maximum((pl - xx) / max(pl, 1), (xx - (pl + w - 1)) / max(pr, 1)), 0)
    fy = np.maximum(np.maximum((pt - yy) / max(pt, 1), (yy - (pt + h - 1)) / max(pb, 1)), 0)
    mask = np.maximum(fx, fy).astype(np.float32)[..., None]      # 0 in the photo, 1 at edge
    radius = max(qsize * 0.02, 1.0)
    blurred = np.asarray(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(radius)), dtype=np.float32)
    a += (blurred - a) * np.clip(mask * 3.0, 0.0, 1.0)
    a += (np.median(a, axis=(0, 1)) - a) * np.clip(mask, 0.0, 1.0)
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def warp_quad(image: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Cut the square ``quad`` out of uint8 [H, W, 3] and resample it to [size, size, 3]."""
    img = np.asarray(image)
    quad = np.asarray(quad, dtype=np.float64).copy()
    qsize = float(np.hypot(*(quad[3] - quad[0])))
    # Shrink first (integer box filter) when the crop is much larger than the output.
    shrink = int(math.floor(qsize / size * 0.5))
    if shrink > 1:
        h, w = img.shape[:2]
        small = (max(1, round(w / shrink)), max(1, round(h / shrink)))
        img = np.asarray(Image.fromarray(img).resize(small, Image.BOX))
        quad *= np.array([small[0] / w, small[1] / h])
        qsize /= shrink
    # Crop to the quad plus a border (as the FFHQ recipe does): the padding and its blur then
    # work on the face's surroundings only, not on the whole photo.
    h, w = img.shape[:2]
    border = max(int(round(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    c0 = np.maximum(lo - border, 0)
    c1 = np.minimum(hi + border, [w, h])
    if c1[0] - c0[0] >= 2 and c1[1] - c0[1] >= 2:
        img = img[c0[1]:c1[1], c0[0]:c1[0]]
        quad -= c0
        lo, hi = lo - c0, hi - c0
    # Pad wherever the quad (plus a margin for the resampling kernel) leaves the photo.
    h, w = img.shape[:2]
    pads = (max(-lo[0] + border, 0), max(-lo[1] + border, 0),
            max(hi[0] - w + border, 0), max(hi[1] - h + border, 0))
    if any(pads):
        img = _pad_reflect_faded(img, pads, qsize)
        quad += np.array([pads[0], pads[1]])
    work = int(min(4096, max(size, math.ceil(qsize))))
    out = Image.fromarray(img).transform((work, work), Image.QUAD, quad.flatten().tolist(),
                                         Image.BICUBIC)
    if work != size:
        out = out.resize((size, size), Image.LANCZOS)
    return np.asarray(out)


@dataclass
class AlignedFace:
    image: np.ndarray          # uint8 [size, size, 3]
    transform: AlignTransform


def align_face(image: np.ndarray, face: Face, size: int) -> AlignedFace:
    """Align one detected face of uint8 [H, W, 3] to [size, size, 3]."""
    lms = face.landmarks + 0.5            # dlib pixel indices -> continuous coordinates
    quad = ffhq_quad(lms)
    h, w = image.shape[:2]
    return AlignedFace(warp_quad(image, quad, size),
                       AlignTransform(quad, (w, h), size, lms, face.box, face.score))


def align(image: np.ndarray, size: int = 1024, all_faces: bool = False,
          source: str = "image", choice: FaceChoice | None = None
          ) -> AlignedFace | list[AlignedFace]:
    """FFHQ-align one face of uint8 [H, W, 3] (``choice``: detector, minimum score and which
    face, by size; default the largest HOG detection), or every face, largest first.

    Raises :class:`i2s.faces.NoFaceFound` when there is none (or not that many).
    """
    if size < 8:
        raise I2SError(f"alignment size must be at least 8, got {size}")
    choice = choice or FaceChoice()
    faces = detect_faces(np.asarray(image), detector=choice.detector,
                         min_score=choice.min_score)
    if not faces:
        floor = "" if choice.min_score is None else f" scoring at least {choice.min_score:g}"
        hint = ("; dlib's CNN detector finds turned, small and dim faces HOG misses: "
                "--detector cnn") if choice.detector == "hog" else ""
        raise NoFaceFound(f"{source}: no face found{floor}{hint}")
    if all_faces:
        return [align_face(image, f, size) for f in faces]
    if choice.index >= len(faces):
        raise NoFaceFound(f"{source}: face index {choice.index} asked for, but only "
                          f"{len(faces)} face(s) found (scores "
                          f"{', '.join(f'{f.score:.2f}' for f in faces)})")
    return align_face(image, faces[choice.index], size)
