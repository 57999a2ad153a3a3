"""The images of a dataset: a folder (recursive), a glob pattern or a list file, each image
with the output folder name it gets and the hash of its bytes."""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from i2s.embedding.files import IMAGE_SUFFIXES, stream_id
from i2s.errors import I2SError

LIST_SUFFIXES = (".txt", ".lst", ".list")
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One image of a dataset."""

    path: str          # as found (relative paths stay relative to the working directory)
    name: str          # its folder under the output, e.g. "people/alice" for people/alice.png
    sha256: str = ""   # of the file's bytes ("" when it could not be read)

    @property
    def image_id(self) -> int:
        """The image's random stream (noise on w), from its content: the same image gets the
        same result on any rank, in any batch."""
        return stream_id(self.sha256)


def find_sources(src: str | os.PathLike) -> list[Source]:
    """The images named by ``src``, sorted by output name (without their hashes):

    * a folder: every image file below it (recursively; hidden files and folders skipped),
      named by its path relative to the folder without the suffix;
    * a glob pattern (``*``, ``?``, ``[``; ``**`` recursive): the image files it matches,
      named relative to the deepest folder common to them;
    * a list file (``.txt``, ``.lst``, ``.list``): one path per line (relative to the list
      file's folder; blank lines and ``#`` comments skipped), named like a pattern's.

    Two images that would share a folder name (``a.png``, ``a.jpg``) keep their suffix in
    it (``a_png``, ``a_jpg``). I2SError when ``src`` names no image.
    """
    spec = str(src)
    p = Path(spec)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and _is_image(f)
                       and not any(part.startswith(".") for part in f.relative_to(p).parts))
        root, what = p, f"folder {spec}"
    elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
        files = _read_list(p)
        root, what = None, f"list {spec}"
    elif any(c in spec for c in "*?[") and not p.exists():
        files = sorted(Path(f) for f in glob.glob(spec, recursive=True)
                       if Path(f).is_file() and _is_image(Path(f)))
        root, what = None, f"pattern {spec!r}"
    elif p.is_file():
        if not _is_image(p):
            raise I2SError(f"{spec}: neither an image ({', '.join(IMAGE_SUFFIXES)}), a folder, "
                           f"a pattern nor a list file ({', '.join(LIST_SUFFIXES)})")
        files, root, what = [p], None, spec
    else:
        raise I2SError(f"{spec}: no such file, folder or pattern")
    if not files:
        raise I2SError(f"{what}: no images ({', '.join(IMAGE_SUFFIXES)})")
    if root is None:
        root = Path(os.path.commonpath([str(f.absolute().parent) for f in files]))
    names = [f.absolute().relative_to(root.absolute()).with_suffix("").as_posix()
             for f in files]
    clash = {n for n in names if names.count(n) > 1}
    names = [f"{n}_{f.suffix.lstrip('.').lower()}" if n in clash else n
             for n, f in zip(names, files, strict=True)]
    if len(set(names)) != len(names):
        raise I2SError(f"{what}: the same image is listed twice")
    return sorted((Source(str(f), n) for f, n in zip(files, names, strict=True)),
                  key=lambda s: s.name)


def with_hash(source: Source) -> Source:
    """``source`` with the SHA-256 of its bytes (unchanged, hash "", if unreadable: the
    embedding then records why)."""
    h = hashlib.sha256()
    try:
        with open(source.path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                h.update(chunk)
    except OSError:
        return source
    return Source(source.path, source.name, h.hexdigest())


def _is_image(f: Path) -> bool:
    return f.suffix.lower() in IMAGE_SUFFIXES


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise I2SError(f"list {path}: cannot read it ({e.__class__.__name__})") from None
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            f = Path(line)
            out.append(f if f.is_absolute() else path.parent / f)
    return out
