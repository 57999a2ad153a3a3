"""Compiled CPU kernels: the folded synthesis layers' (``csrc/noise_lrelu.cpp``) and the 3D
renderer's z-buffer (``csrc/raster.cpp``, :func:`load_raster_kernel`).

They do a folded layer's elementwise work in one pass over its activation each way (see
:mod:`i2s.ops.folded_layer` and :mod:`i2s.ops.folded_block`):

* ``noise_lrelu_``: noise + leaky ReLU (+ clamp), in place;
* ``fir_noise_lrelu``: the same for an up-sampling layer, with its [1,3,3,1] FIR as a
  separable stencil on the transposed convolution's output;
* ``noise_lrelu_backward``: the leaky-ReLU gradient and the per-channel sums the latent needs
  (optionally the next layer's style sum and a ToRGB layer's gradients);
* ``noise_lrelu_fir_backward``: the same, followed by the FIR's adjoint, for an up-sampling
  layer.

Without them that work takes several passes over each activation (128 MB at 1024 px); with
them a 1024 px embedding step is about 15% faster and needs 0.7 GiB less.

``raster.cpp`` finds the visible face of every pixel of a view with the same float32
arithmetic as the PyTorch path of :mod:`i2s.get3d.raster` (the same faces, tested), one face's
bounding box at a time instead of batches of (face, pixel) pairs.

Each source is built with ``torch.utils.cpp_extension`` (needs a C++ compiler with OpenMP and the
Python headers; ninja comes with i2s) into torch's extension cache, once per machine, torch
version and source (~20 s), and loaded from there afterwards (~0.01 s). ``-march=native``, so
the build is keyed by the CPU. A build is announced with one log line before it starts
(logger ``i2s``, level WARNING, so it shows without any logging set-up). Where they cannot be
built the layers use plain aten ops (same results up to float rounding) and one warning says
why; ``I2S_CPU_KERNELS=0`` turns them all off. Which layers use them is decided in
:mod:`i2s.ops.synthesis_path`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

from i2s.provenance import cpu_identity
from i2s.resources import package_path

SOURCE = package_path("ops", "csrc", "noise_lrelu.cpp")
RASTER_SOURCE = package_path("ops", "csrc", "raster.cpp")
SWITCH = "I2S_CPU_KERNELS"
STALE_LOCK_SECONDS = 600
# what runs instead where a source cannot be built (the end of its one warning)
_INSTEAD = {"noise_lrelu": "using the aten path, about 15% slower per step at 1024 px",
            "raster": "the 3D renderer uses its PyTorch path (slower)"}

log = logging.getLogger(__name__)
_modules: dict[str, ModuleType] = {}
_failures: dict[str, str] = {}


def _build_directory(cpp_extension: ModuleType, name: str) -> Path | None:
    try:  # a private helper of torch's; None where torch moved it
        return Path(cpp_extension._get_build_directory(name, False))
    except (AttributeError, OSError, TypeError):
        return None


def _remove_stale_lock(cpp_extension: ModuleType, name: str) -> None:
    """torch waits for ever on the lock file of a build that was killed; the build takes ~20 s,
    so a lock older than STALE_LOCK_SECONDS is left over and is removed (with a warning)."""
    folder = _build_directory(cpp_extension, name)
    try:
        lock = folder / "lock"
        age = time.time() - lock.stat().st_mtime
    except (TypeError, OSError):  # no lock (the usual case), or no build folder
        return
    if age > STALE_LOCK_SECONDS:
        warnings.warn(f"i2s: removing a stale build lock ({lock}, {age / 60:.0f} min old)",
                      RuntimeWarning, stacklevel=3)
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def _ninja_on_path() -> Iterator[None]:
    """The ninja wheel's binary on PATH for the build (processes started without the venv's
    bin folder lack it); PATH is restored afterwards."""
    old = os.environ.get("PATH", "")
    try:
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + old
    except ImportError:
        pass
    try:
        yield
    finally:
        os.environ["PATH"] = old


def _build(source: Path) -> ModuleType:
    from torch.utils import cpp_extension

    key = hashlib.sha256(source.read_bytes() + cpu_identity().encode()
                         + torch.__version__.encode()).hexdigest()[:12]
    name = f"i2s_{source.stem}_{key}"
    _remove_stale_lock(cpp_extension, name)
    folder = _build_directory(cpp_extension, name)
    if folder is None or not (folder / f"{name}.so").is_file():
        log.warning("compiling i2s's CPU kernels (%s; once per machine and torch version, "
                    "about 20 s; %s=0 skips them)", source.name, SWITCH)
    with _ninja_on_path():
        return cpp_extension.load(
            name=name, sources=[str(source)],
            extra_cflags=["-O3", "-march=native", "-ffp-contract=off", "-fopenmp"],
            extra_ldflags=["-fopenmp"], verbose=False)


def _load(source: Path) -> ModuleType | None:
    """The compiled module of ``source``, or None where kernels are switched off or it cannot
    be built (then one warning gives the reason). Built (or loaded from the cache) on the
    first call of the process."""
    stem = source.stem
    if stem in _modules or stem in _failures:
        return _modules.get(stem)
    if os.environ.get(SWITCH, "1") == "0":
        _failures[stem] = f"{SWITCH}=0"
        return None
    if not sys.platform.startswith("linux"):
        _failures[stem] = f"not built on {sys.platform}"
        return None
    try:
        _modules[stem] = _build(source)
    except Exception as exc:  # compiler missing, build error, ...: the aten path still works
        last_line = (str(exc).strip().splitlines() or [""])[-1]
        _failures[stem] = f"{type(exc).__name__}: {last_line}"
        warnings.warn(f"i2s: CPU kernels unavailable ({_failures[stem]}); {_INSTEAD[stem]}",
                      RuntimeWarning, stacklevel=3)
    return _modules.get(stem)


def load_kernels() -> ModuleType | None:
    """The folded layers' kernels (``noise_lrelu.cpp``), or None (see :func:`_load`)."""
    return _load(SOURCE)


def load_raster_kernel() -> ModuleType | None:
    """The 3D renderer's z-buffer kernel (``raster.cpp``: ``nearest_faces``), or None."""
    return _load(RASTER_SOURCE)


def clamp_arg(clamp: float | None) -> float:
    """A layer's conv clamp as the kernels take it (no clamp: -1)."""
    return -1.0 if clamp is None else clamp


def kernel_status() -> str:
    """One line for benchmarks and reports: whether large CPU layers use the kernels."""
    return "compiled CPU kernels" if load_kernels() is not None else \
        f"aten path ({_failures['noise_lrelu']})"
