"""Fused CPU kernels for the folded synthesis layers, compiled on first use.

``csrc/noise_lrelu.cpp`` does a folded layer's elementwise work in one pass over its
activation each way (see :mod:`i2s.folded_layer` and :mod:`i2s.folded_block`):

* ``noise_lrelu_``: noise + leaky ReLU (+ clamp), in place;
* ``fir_noise_lrelu``: the same for an up-sampling layer, with its [1,3,3,1] FIR as a
  separable stencil on the transposed convolution's output;
* ``noise_lrelu_backward``: the leaky-ReLU gradient and the per-channel sums the latent needs
  (optionally the next layer's style sum and a ToRGB layer's gradients);
* ``noise_lrelu_fir_backward``: the same, followed by the FIR's adjoint, for an up-sampling
  layer.

Without them that work takes several passes over each activation (128 MB at 1024 px); with
them a 1024 px embedding step is about 15% faster and needs 0.7 GiB less.

They are built with ``torch.utils.cpp_extension`` (needs a C++ compiler with OpenMP and the
Python headers; ninja comes with i2s) into torch's extension cache, once per machine, torch
version and source (~20 s), and loaded from there afterwards (~0.01 s). ``-march=native``, so
the build is keyed by the CPU. Where they cannot be built the layers use plain aten ops (same
results up to float rounding) and one warning says why; ``I2S_FUSED_CPU=0`` turns them off.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType

import torch

SOURCE = Path(__file__).parent / "csrc" / "noise_lrelu.cpp"
# Activations smaller than this (elements) keep the aten path: their passes cost little, and
# small models then never trigger the one-time build (the 64 px demo never does).
MIN_ELEMENTS = 2**21
STALE_LOCK_SECONDS = 600

_module: ModuleType | None = None
_failure: str | None = None


def _cpu_identity() -> str:
    """Model and instruction-set flags of this CPU (a ``-march=native`` build is only valid on
    the CPU kind it was made on)."""
    try:
        with open("/proc/cpuinfo") as f:
            keep = [line for line in f if line.startswith(("model name", "flags"))][:2]
        return "".join(keep)
    except OSError:
        return platform.processor() + platform.machine()


def _remove_stale_lock(cpp_extension: ModuleType, name: str) -> None:
    """torch waits for ever on the lock file of a build that was killed; the build takes ~20 s,
    so a lock older than STALE_LOCK_SECONDS is left over and is removed (with a warning)."""
    try:
        lock = Path(cpp_extension._get_build_directory(name, False)) / "lock"
        age = time.time() - lock.stat().st_mtime
    except (AttributeError, OSError):  # no lock (the usual case), or torch moved the helper
        return
    if age > STALE_LOCK_SECONDS:
        warnings.warn(f"i2s: removing a stale build lock ({lock}, {age / 60:.0f} min old)",
                      RuntimeWarning, stacklevel=3)
        lock.unlink(missing_ok=True)


def _build() -> ModuleType:
    from torch.utils import cpp_extension

    try:  # the ninja wheel's binary, for processes whose PATH lacks the venv's bin folder
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    key = hashlib.sha256(SOURCE.read_bytes() + _cpu_identity().encode()
                         + torch.__version__.encode()).hexdigest()[:12]
    name = f"i2s_noise_lrelu_{key}"
    _remove_stale_lock(cpp_extension, name)
    return cpp_extension.load(
        name=name, sources=[str(SOURCE)],
        extra_cflags=["-O3", "-march=native", "-ffp-contract=off", "-fopenmp"],
        extra_ldflags=["-fopenmp"], verbose=False)


def fused_kernels() -> ModuleType | None:
    """The compiled kernels, or None where they are switched off or cannot be built (then one
    warning gives the reason). Built on the first call of the process."""
    global _module, _failure
    if _module is not None or _failure is not None:
        return _module
    if os.environ.get("I2S_FUSED_CPU", "1") == "0":
        _failure = "I2S_FUSED_CPU=0"
        return None
    if not sys.platform.startswith("linux"):
        _failure = f"not built on {sys.platform}"
        return None
    try:
        _module = _build()
    except Exception as exc:  # compiler missing, build error, ...: the aten path still works
        last_line = (str(exc).strip().splitlines() or [""])[-1]
        _failure = f"{type(exc).__name__}: {last_line}"
        warnings.warn(f"i2s: fused CPU kernels unavailable ({_failure}); using the unfused "
                      "path, about 15% slower per step at 1024 px", RuntimeWarning, stacklevel=2)
    return _module


def use_fused(x: torch.Tensor, elements: int) -> bool:
    """Whether a folded layer with input ``x`` and an output of ``elements`` values takes the
    compiled kernels."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and elements >= MIN_ELEMENTS
            and fused_kernels() is not None)


def clamp_arg(clamp: float | None) -> float:
    """A layer's conv clamp as the kernels take it (no clamp: -1)."""
    return -1.0 if clamp is None else clamp


def fused_status() -> str:
    """One line for benchmarks and ``--verbose`` output: which path large CPU layers take."""
    fused_kernels()
    return "fused CPU kernels" if _module is not None else f"aten path ({_failure})"
