"""Image files in and out. Files are uint8 RGB; tensors are float NCHW in [-1, 1].

Input preprocessing (documented in the README): EXIF orientation applied; grayscale, palette,
16-bit and float images converted to 8-bit RGB; transparency composited over white; non-square
images centre-cropped to a square; then resized with Lanczos to the model's resolution.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from i2s.errors import I2SError
from i2s.media.files import atomic_path, file_problem

if TYPE_CHECKING:
    import torch

ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float grey images -> 8-bit "L"; other modes unchanged."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        if img.mode == "F" and a.max() <= 1.0:
            top = 1.0
        img = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB (transparent pixels over white)."""
    img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ALPHA_MODES:
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def center_crop_square(img: Image.Image) -> Image.Image:
    """Largest centred square crop."""
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def _read_image(path: str | os.PathLike, convert):
    """Open an image file (EXIF orientation applied) and return ``convert(image)``; every
    problem with the file is a one-line I2SError."""
    p = Path(path)
    problem = file_problem(p)
    if problem is not None:
        raise I2SError(f"{p}: {problem}")
    if p.stat().st_size == 0:
        raise I2SError(f"{p}: empty file")
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            out = convert(im)
    except UnidentifiedImageError:
        raise I2SError(f"{p}: not an image Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise I2SError(f"{p}: image too large ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise I2SError(f"{p}: cannot read image ({e})") from None
    if min(out[0].shape[:2] if isinstance(out, tuple) else out.size) < 1:
        raise I2SError(f"{p}: image has no pixels")
    return out


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file at full size as uint8 RGB [H, W, 3] (EXIF orientation applied;
    transparent pixels over white).

    Raises:
        I2SError: missing, empty, unreadable or non-image file, with a one-line reason.
    """
    return np.asarray(_read_image(path, _to_rgb), dtype=np.uint8)


def _rgb_and_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    has_alpha = img.mode in ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)
    rgba = np.asarray(_to_8bit(img).convert("RGBA"), dtype=np.uint8)
    return rgba[..., :3].copy(), (rgba[..., 3].copy() if has_alpha else None)


def read_rgba(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """An image file as uint8 RGB [H, W, 3] and its alpha [H, W] (None without one); EXIF
    orientation applied. One-line I2SError as :func:`read_rgb`."""
    return _read_image(path, _rgb_and_alpha)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask file as float32 [H, W] in [0, 1] (its alpha if it has one, else its grey
    level). One-line I2SError as :func:`read_rgb`."""
    rgb, alpha = read_rgba(path)
    if alpha is not None and alpha.min() < 255:
        return alpha.astype(np.float32) / 255
    return rgb.astype(np.float32).mean(axis=-1) / 255


def load_mask(path: str | os.PathLike, resolution: int) -> np.ndarray:
    """A mask file cropped and resized as :func:`load_image` does an image: float32
    [resolution, resolution] in [0, 1]."""
    m = np.round(read_mask(path) * 255).astype(np.uint8)
    grey = square_resized(np.repeat(m[..., None], 3, axis=2), resolution)[..., 0]
    return grey.astype(np.float32) / 255


def square_resized(image: np.ndarray, resolution: int) -> np.ndarray:
    """Centre-crop uint8 [H, W, 3] to a square and resize it (Lanczos) to ``resolution``."""
    rgb = center_crop_square(Image.fromarray(image))
    if rgb.size != (resolution, resolution):
        rgb = rgb.resize((resolution, resolution), Image.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def load_image(path: str | os.PathLike, resolution: int) -> np.ndarray:
    """Read an image file as uint8 RGB [resolution, resolution, 3] (see module docstring)."""
    return square_resized(read_rgb(path), resolution)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] or [N, H, W, 3] -> float32 [N, 3, H, W] in [-1, 1]."""
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ValueError(f"expected uint8 [N, H, W, 3], got {a.dtype} {a.shape}")
    import torch  # noqa: PLC0415 (commands that only read and write images start faster)

    t = torch.from_numpy(np.require(a, requirements=["C", "W"])).permute(0, 3, 1, 2).float()
    return t / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [N, 3, H, W] or [3, H, W] in [-1, 1] -> uint8 [N, H, W, 3] (or [H, W, 3]).

    Raises:
        I2SError: for NaN or infinite pixels (a model or latent out of its range), which
            would otherwise become black pixels silently.
    """
    import torch  # noqa: PLC0415 (start-up time, as above)

    x = images.detach().float().cpu()
    if not torch.isfinite(x).all():
        raise I2SError("the generator gave NaN or infinite pixel values (a latent or model "
                       "outside its range)")
    squeeze = x.ndim == 3
    if squeeze:
        x = x[None]
    a = ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return a[0] if squeeze else a


IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def image_format(path: str | os.PathLike) -> str:
    """The format an output image is written in, from its suffix: PNG or JPEG only."""
    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise I2SError(f"{path}: output images are .png or .jpg")
    return fmt


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write uint8 [H, W, 3] atomically as PNG or JPEG (from the suffix)."""
    fmt = image_format(path)
    img = Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB")
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt)
