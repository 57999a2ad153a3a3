"""Face detection, 68 landmarks and 128-d identity descriptors with dlib.

Uses ``dlib-bin`` (a prebuilt dlib) with the model files of ``face-recognition-models``:
``shape_predictor_68_face_landmarks.dat`` (landmarks, iBUG 300-W layout) and
``dlib_face_recognition_resnet_model_v1.dat`` (identity; Euclidean distance below 0.6 is dlib's
"same person" threshold). Detection uses dlib's HOG frontal face detector (no file needed) or its
MMOD CNN detector (``mmod_human_face_detector.dat``).
Both packages are optional: :class:`FaceModelsMissing` says what to install.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from i2s.errors import I2SError

INSTALL_HINT = "pip install dlib-bin face-recognition-models"
SAME_PERSON_THRESHOLD = 0.6
DETECTORS = ("hog", "cnn")
DETECT_SIDE = 1600      # larger photos are searched for faces at this size (HOG) ...
CNN_DETECT_SIDE = 1024  # ... and at this size by the CNN; landmarks at full resolution


class FaceModelsMissing(I2SError):
    """dlib or the model files are not installed."""


class NoFaceFound(I2SError):
    """The detector found no face in an image."""


@dataclass(frozen=True)
class FaceChoice:
    """Which face alignment uses: found by ``detector`` (``hog`` or ``cnn``), scoring at least
    ``min_score`` (None: every detection), the ``index``-th largest (0: the largest)."""

    detector: str = "hog"
    min_score: float | None = None
    index: int = 0

    def to_dict(self) -> dict:
        return {"detector": self.detector, "min_score": self.min_score, "index": self.index}


@dataclass
class Face:
    box: tuple[int, int, int, int]   # left, top, right, bottom (pixels)
    score: float                     # detector confidence
    landmarks: np.ndarray            # [68, 2] float64 (x, y) pixel coordinates


def _dlib():
    try:
        import dlib
    except ImportError:
        raise FaceModelsMissing(f"face alignment needs dlib: {INSTALL_HINT}") from None
    return dlib


def model_file(name: str) -> Path:
    """Path of a ``face-recognition-models`` file ($I2S_FACE_MODELS overrides the folder)."""
    folder = os.environ.get("I2S_FACE_MODELS")
    if folder:
        p = Path(folder) / name
    else:
        # `import face_recognition_models` itself fails without pkg_resources: only locate it.
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise FaceModelsMissing(f"face models not installed: {INSTALL_HINT}")
        p = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not p.is_file():
        raise FaceModelsMissing(f"face model file missing: {p} ({INSTALL_HINT})")
    return p


@lru_cache(maxsize=1)
def _detector():
    return _dlib().get_frontal_face_detector()


@lru_cache(maxsize=1)
def _cnn_detector():
    return _dlib().cnn_face_detection_model_v1(str(model_file("mmod_human_face_detector.dat")))


@lru_cache(maxsize=1)
def _predictor():
    return _dlib().shape_predictor(str(model_file("shape_predictor_68_face_landmarks.dat")))


@lru_cache(maxsize=1)
def _recogniser():
    return _dlib().face_recognition_model_v1(
        str(model_file("dlib_face_recognition_resnet_model_v1.dat")))


def available() -> bool:
    """True when dlib and the landmark model can be used."""
    try:
        _dlib()
        model_file("shape_predictor_68_face_landmarks.dat")
    except FaceModelsMissing:
        return False
    return True


def identity_available() -> bool:
    """True when the identity descriptor (dlib + its ResNet model file) can be used."""
    if not available():
        return False
    try:
        model_file("dlib_face_recognition_resnet_model_v1.dat")
    except FaceModelsMissing:
        return False
    return True


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected uint8 [H, W, 3], got {a.dtype} {a.shape}")
    return a


def detect_faces(image: np.ndarray, upsample: int | None = None, detector: str = "hog",
                 min_score: float | None = None) -> list[Face]:
    """All faces in a uint8 [H, W, 3] image, largest first (ties: higher score first).

    ``detector``: ``hog`` (dlib's HOG + linear SVM: fast; scores about 0.5-2.5 for clear
    frontal faces, below 0.3 for most false alarms) or ``cnn`` (dlib's MMOD CNN,
    ``mmod_human_face_detector.dat`` of face-recognition-models: finds turned, small and
    badly lit faces HOG misses, slower; confidence about 1 for clear faces). Photos larger
    than :data:`DETECT_SIDE` (the CNN: :data:`CNN_DETECT_SIDE`) are searched at that size;
    landmarks are always found at full resolution. ``upsample``: times the image is doubled
    before the search (default 1 for HOG, which misses faces under about 80 px otherwise; 0
    for the CNN, which finds faces down to about 40 px and takes 4x as long per doubling).
    ``min_score``: drop detections scoring below it."""
    img = _to_rgb8(image)
    if detector not in DETECTORS:
        raise I2SError(f"unknown face detector {detector!r}: use one of {DETECTORS}")
    if upsample is None:
        upsample = 1 if detector == "hog" else 0
    side = DETECT_SIDE if detector == "hog" else CNN_DETECT_SIDE
    scale = min(1.0, side / max(img.shape[:2]))
    small = img
    if scale < 1.0:
        from PIL import Image

        size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
        small = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
    if detector == "hog":
        rects, scores, _ = _detector().run(small, upsample)
    else:
        found = _cnn_detector()(small, upsample)
        rects, scores = [d.rect for d in found], [d.confidence for d in found]
    predictor = _predictor()
    dlib = _dlib()
    faces = []
    for r, s in zip(rects, scores, strict=True):
        if min_score is not None and s < min_score:
            continue
        box = tuple(int(round(v / scale)) for v in (r.left(), r.top(), r.right(), r.bottom()))
        shape = predictor(img, dlib.rectangle(*box))
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        faces.append(Face(box, float(s), pts))
    faces.sort(key=lambda f: (-(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), -f.score))
    return faces


def largest_face(image: np.ndarray, source: str = "image") -> Face:
    faces = detect_faces(image)
    if not faces:
        raise NoFaceFound(f"{source}: no face found")
    return faces[0]


def upscale_for_detection(image: np.ndarray, min_size: int = 256) -> np.ndarray:
    """Lanczos-upscale small images by an integer factor to at least ``min_size`` px: dlib's
    detector and descriptor expect faces of 80+ px (the demo model makes 64 px images)."""
    img = _to_rgb8(image)
    k = max(1, -(-min_size // min(img.shape[:2])))
    if k == 1:
        return img
    from PIL import Image

    size = (img.shape[1] * k, img.shape[0] * k)
    return np.asarray(Image.fromarray(img).resize(size, Image.LANCZOS))


def face_descriptor(image: np.ndarray, box: tuple[int, int, int, int] | None = None
                    ) -> np.ndarray:
    """dlib's 128-d identity descriptor [128] of the face in ``box`` (default: the largest)."""
    img = _to_rgb8(image)
    if box is None:
        box = largest_face(img).box
    shape = _predictor()(img, _dlib().rectangle(*box))
    return np.array(_recogniser().compute_face_descriptor(img, shape), dtype=np.float64)
