"""MP4/GIF writing with imageio-ffmpeg (bundled static ffmpeg, libx264), atomically."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from i2s.errors import I2SError
from i2s.media.files import atomic_path
from i2s.media.grid import labelled_grid


def upscale_nearest(frame: np.ndarray, min_height: int = 256) -> np.ndarray:
    """Integer nearest-neighbour upscaling of uint8 [H, W, 3] so small models stay visible."""
    k = max(1, min_height // frame.shape[0])
    return frame.repeat(k, axis=0).repeat(k, axis=1) if k > 1 else frame


class VideoWriter:
    """Collects uint8 [H, W, 3] frames into an MP4 (libx264, yuv420p) or GIF.

    Frames stream to a temporary file beside ``path``; :meth:`close` renames it into place,
    :meth:`abort` removes it. Use as a context manager (aborts on exceptions).
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0) -> None:
        import imageio.v2 as imageio

        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self.frames = 0
        try:
            if self.path.suffix.lower() == ".gif":
                self._writer = imageio.get_writer(self._tmp, mode="I", duration=1.0 / fps,
                                                  loop=0)
            else:
                self._writer = imageio.get_writer(self._tmp, format="FFMPEG", fps=fps,
                                                  codec="libx264", quality=8,
                                                  pixelformat="yuv420p", macro_block_size=2)
        except Exception as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise I2SError(f"{self.path}: cannot start video writer ({e})") from None

    def add(self, frame: np.ndarray) -> None:
        """Append one uint8 [H, W, 3] frame (H and W even for MP4)."""
        self._writer.append_data(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        self._writer.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            err = RuntimeError("video aborted")
            with contextlib.suppress(RuntimeError):
                self._ctx.__exit__(RuntimeError, err, None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad uint8 [H, W, 3] with white to even H and W (libx264's yuv420p needs them)."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)


def write_animation(path: str | os.PathLike, images: np.ndarray | list[np.ndarray],
                    labels: list[str] | None = None, fps: float = 4.0) -> None:
    """An MP4 or GIF (by ``path``'s suffix) of uint8 frames [N, R, R, 3], written atomically.
    With ``labels`` every frame carries its label above the image (small models upscaled to
    about 128 px, as in the strips); without, frames are upscaled to at least 256 px."""
    images = list(images)
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(images)} frames but {len(labels)} labels")
    with VideoWriter(path, fps=fps) as video:
        for i, im in enumerate(images):
            frame = (labelled_grid([[im]], col_labels=[labels[i]]) if labels is not None
                     else upscale_nearest(im))
            video.add(_even(frame))
