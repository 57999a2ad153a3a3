"""Identity distance between two face images (dlib's 128-d descriptors): the one helper for
``metrics.json`` and the experiments."""

from __future__ import annotations

import numpy as np

from i2s.faces.detect import (
    INSTALL_HINT,
    SAME_PERSON_THRESHOLD,
    NoFaceFound,
    face_descriptor,
    identity_available,
    largest_face,
    upscale_for_detection,
)


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between the identity descriptors of the largest face in ``a`` and
    the face at the same place in ``b`` (uint8 [H, W, 3] of equal size; small images are
    upscaled first). Below :data:`SAME_PERSON_THRESHOLD` (0.6) dlib calls them the same
    person. Raises :class:`NoFaceFound` when ``a`` has no detectable face."""
    if a.shape != b.shape:
        raise ValueError("identity_distance needs two images of the same size")
    big_a, big_b = upscale_for_detection(a), upscale_for_detection(b)
    box = largest_face(big_a).box
    return float(np.linalg.norm(face_descriptor(big_a, box) - face_descriptor(big_b, box)))


def identity_distances(a: np.ndarray, b: np.ndarray) -> list[float | None]:
    """:func:`identity_distance` per pair of uint8 images [N, H, W, 3]; None for every pair
    without the face models, and for a pair whose ``a`` has no detectable face."""
    if not identity_available():
        return [None] * len(a)
    out: list[float | None] = []
    for x, y in zip(a, b, strict=True):
        try:
            out.append(identity_distance(x, y))
        except NoFaceFound:
            out.append(None)
    return out


def identity_metrics(target: np.ndarray, recon: np.ndarray) -> dict:
    """``identity_distance`` (and ``same_person``) of a reconstruction, or None with an
    ``identity_note`` saying why not: the entries of ``metrics.json``."""
    if not identity_available():
        return {"identity_distance": None,
                "identity_note": f"face models not installed ({INSTALL_HINT})"}
    try:
        d = identity_distance(target, recon)
    except NoFaceFound:
        return {"identity_distance": None, "identity_note": "no face detected in the target"}
    return {"identity_distance": d, "same_person": d < SAME_PERSON_THRESHOLD}
