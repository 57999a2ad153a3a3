"""``i2s align``: FFHQ-style alignment of the faces in photos."""

from __future__ import annotations

from pathlib import Path

import click

from i2s.cli.common import ensure_writable_dir, face_choice, face_options
from i2s.cli.messages import report_error
from i2s.errors import I2SError
from i2s.faces import FaceModelsMissing, align
from i2s.media.files import output_lock, unique_stems
from i2s.media.images import read_rgb, save_image


@click.command("align")
@click.argument("photos", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--size", type=click.IntRange(min=8, max=4096), default=1024, show_default=True,
              help="Side of the aligned images (use the model's resolution, or larger).")
@click.option("--all-faces", is_flag=True,
              help="Every face, not only the largest: OUT/<stem>_<i>.png, largest first.")
@face_options
def align_command(photos, out, size, all_faces, **face) -> int:
    """Detect faces (dlib), find 68 landmarks and crop each photo the way FFHQ was made.

    Writes OUT/<stem>.png and OUT/<stem>.json (the quad, the original size, the landmarks
    and the detector's score: what paste-back needs). Each face's score is printed. A photo
    without a face is reported on one line and skipped; the exit code is then 1.
    """
    choice = face_choice(face)
    if all_faces and choice.index:
        raise click.UsageError("--face-index picks one face; --all-faces takes them all")
    out_dir = ensure_writable_dir(out)
    paths = [Path(p) for p in photos]
    failed = 0
    with output_lock(out_dir):
        for path, stem in zip(paths, unique_stems(paths), strict=True):
            try:
                image = read_rgb(path)
                result = align(image, size=size, all_faces=all_faces, source=str(path),
                               choice=choice)
            except FaceModelsMissing:
                raise
            except I2SError as e:
                report_error(str(e))
                failed += 1
                continue
            faces = result if all_faces else [result]
            for i, face in enumerate(faces):
                name = f"{stem}_{i}" if all_faces else stem
                save_image(out_dir / f"{name}.png", face.image)
                face.transform.save(out_dir / f"{name}.json")
                click.echo(f"{path} -> {out_dir / name}.png  (face score "
                           f"{face.transform.score:.2f}, {choice.detector})")
    return 1 if failed else 0
