"""The images a study runs on: one folder per class.

Layout of ``--images DIR``::

    DIR/faces/*.png        aligned faces (the face class: used by every study)
    DIR/<class>/*          any other class (cats, dogs, paintings, cars...), for ``classes``
                           and the cross-class edits
    DIR/expression/neutral.*, DIR/expression/expressive.*
                           optional: one person without and with an expression, for the
                           expression-transfer study

A folder with images and no sub-folders is one class, ``faces``. Faces should be aligned like
the model's training set (``i2s align``). Without ``--images`` the examples that ship with i2s
are used: 16 held-out faces of the ``demo`` model's teacher, a cat and two objects (64 px).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from i2s.errors import I2SError
from i2s.media.images import load_image
from i2s.resources import example_path

FACE_CLASS = "faces"
EXPRESSION_FOLDER = "expression"
QUICK_LIMITS = {FACE_CLASS: 4, "other": 1}


def packaged_examples() -> Path:
    """The example images that ship inside the package (``i2s/data/examples``)."""
    return example_path()


@dataclass
class ImageSet:
    """uint8 images [n, R, R, 3] per class, with their file names."""

    source: str
    images: dict[str, np.ndarray] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    expression: tuple[np.ndarray, np.ndarray] | None = None   # neutral, expressive [R, R, 3]

    @property
    def faces(self) -> np.ndarray:
        if FACE_CLASS not in self.images:
            raise I2SError(f"{self.source}: no '{FACE_CLASS}' folder; this study needs aligned "
                           "faces (see i2s experiment --help)")
        return self.images[FACE_CLASS]

    @property
    def other_classes(self) -> list[str]:
        return [c for c in self.images if c != FACE_CLASS]


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def load_image_set(folder: str | Path | None, resolution: int, quick: bool = False,
                   max_images: int | None = None) -> ImageSet:
    """Read a class folder (see the module docstring) at the model's resolution.

    ``quick`` keeps the first 4 faces and 1 image of every other class; ``max_images`` keeps
    at most that many of every class (files in name order). Any file that is not a readable
    image is an :class:`I2SError` naming it.
    """
    root = packaged_examples() if folder is None else Path(folder)
    if not root.is_dir():
        raise I2SError(f"--images {root}: not a folder")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = {p.name: _image_files(p) for p in subdirs if p.name != EXPRESSION_FOLDER}
    if not subdirs:
        classes = {FACE_CLASS: _image_files(root)}
    out = ImageSet(source="i2s packaged examples (i2s/data/examples)" if folder is None
                   else str(root))
    for name, files in classes.items():
        if quick:
            files = files[:QUICK_LIMITS.get(name, QUICK_LIMITS["other"])]
        if max_images is not None:
            files = files[:max_images]
        if not files:
            continue
        out.images[name] = np.stack([load_image(f, resolution) for f in files])
        out.names[name] = [f.name for f in files]
    if not out.images:
        raise I2SError(f"--images {root}: no images found")
    expr = root / EXPRESSION_FOLDER
    if expr.is_dir():
        found = {p.stem: p for p in _image_files(expr)}
        if not {"neutral", "expressive"} <= found.keys():
            raise I2SError(f"{expr}: needs neutral.<ext> and expressive.<ext> (one person "
                           "without and with the expression)")
        out.expression = (load_image(found["neutral"], resolution),
                          load_image(found["expressive"], resolution))
    return out
