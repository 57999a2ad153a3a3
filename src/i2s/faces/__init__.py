"""Faces: detection and landmarks with dlib (:mod:`.detect`), FFHQ alignment (:mod:`.alignment`),
paste-back into the original photo (:mod:`.paste`) and the identity distance
(:mod:`.identity`). dlib and its model files are optional (``pip install -e ".[faces]"``);
:class:`FaceModelsMissing` says what to install."""

from i2s.faces.alignment import AlignedFace, AlignTransform, align
from i2s.faces.detect import (
    INSTALL_HINT,
    SAME_PERSON_THRESHOLD,
    Face,
    FaceChoice,
    FaceModelsMissing,
    NoFaceFound,
    available,
    detect_faces,
    identity_available,
)
from i2s.faces.identity import identity_distance, identity_distances, identity_metrics
from i2s.faces.paste import paste_back

__all__ = ["INSTALL_HINT", "SAME_PERSON_THRESHOLD", "AlignTransform", "AlignedFace", "Face",
           "FaceChoice", "FaceModelsMissing", "NoFaceFound", "align", "available", "detect_faces",
           "identity_available", "identity_distance", "identity_distances", "identity_metrics",
           "paste_back"]
