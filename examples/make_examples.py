"""Regenerate the example images (see README.md here). They live in the package,
``src/i2s/data/examples/<class>/``, because ``i2s experiment`` uses them by default;
``examples/images`` links there.

    python examples/make_examples.py [--teacher PATH]

Needs scikit-image (the non-face photos), dlib (aligning the astronaut) and the DigiFace DCGAN
weights (found as ``i2s train-demo`` finds them).
"""

from __future__ import annotations

import argparse
import shutil

from i2s.demo import teacher as dcgan
from i2s.experiments.image_set import packaged_examples
from i2s.faces import align
from i2s.media.images import save_image, square_resized, to_uint8

FACE_SEEDS = list(range(100, 116))   # held out: training uses seeds >= 1e9 (i2s.demo.train)
SIZE = dcgan.RESOLUTION


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--teacher", default=None)
    args = ap.parse_args()
    import skimage.data

    root = packaged_examples()
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("faces", "cats", "objects", "real_faces"):
        (root / sub).mkdir(parents=True)
    T = dcgan.load_teacher(dcgan.find_teacher_weights(args.teacher))
    for seed, face in zip(FACE_SEEDS, to_uint8(T(dcgan.teacher_z(FACE_SEEDS))), strict=True):
        save_image(root / "faces" / f"face_seed{seed}.png", face)
    photos = {"cats/chelsea.png": skimage.data.chelsea(),
              "objects/coffee.png": skimage.data.coffee(),
              "objects/rocket.png": skimage.data.rocket()}
    for name, array in photos.items():
        save_image(root / name, square_resized(array, SIZE))
    astronaut = align(skimage.data.astronaut(), size=SIZE, source="astronaut")
    save_image(root / "real_faces" / "astronaut.png", astronaut.image)
    print(f"wrote {len(FACE_SEEDS)} faces and {len(photos) + 1} photos to {root}")


if __name__ == "__main__":
    main()
