"""Fused CPU kernels for the folded synthesis layer, compiled on first use.

``csrc/noise_lrelu.cpp`` does a folded layer's elementwise work in one pass each way: noise +
leaky ReLU (+ clamp) in place in the forward pass; leaky-ReLU gradient plus the two
per-channel sums that the latent needs in the backward pass (see
:mod:`i2s.folded_layer`). Without it that work takes four passes over the activation; at
1024 px a full activation is 128 MB, and the kernel saves about 0.1 s per embedding step.

It is built with ``torch.utils.cpp_extension`` (needs a C++ compiler with OpenMP; ninja comes
with i2s) into torch's extension cache, once per machine, torch version and source (~20 s),
and loaded from there afterwards (~0.01 s). ``-march=native``, so the build is keyed by the
CPU. Where it cannot be built the layer uses plain aten ops (same results up to float
rounding) and one warning says why; ``I2S_FUSED_CPU=0`` turns the kernels off.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import warnings
from pathlib import Path
from types import ModuleType

import torch

SOURCE = Path(__file__).parent / "csrc" / "noise_lrelu.cpp"
# Activations smaller than this (elements) keep the aten path: their passes cost little, and
# small models then never trigger the one-time build (the 64 px demo never does).
MIN_ELEMENTS = 2**21

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


def _build() -> ModuleType:
    from torch.utils import cpp_extension

    try:  # the ninja wheel's binary, for processes whose PATH lacks the venv's bin folder
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    key = hashlib.sha256(SOURCE.read_bytes() + _cpu_identity().encode()
                         + torch.__version__.encode()).hexdigest()[:12]
    return cpp_extension.load(
        name=f"i2s_noise_lrelu_{key}", sources=[str(SOURCE)],
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
                      "path, about 7% slower per step at 1024 px", RuntimeWarning, stacklevel=2)
    return _module


def use_fused(x: torch.Tensor, elements: int) -> bool:
    """Whether a folded layer with input ``x`` and an output of ``elements`` values takes the
    compiled kernels."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and elements >= MIN_ELEMENTS
            and fused_kernels() is not None)


def fused_status() -> str:
    """One line for benchmarks and ``--verbose`` output: which path large CPU layers take."""
    fused_kernels()
    return "fused CPU kernels" if _module is not None else f"aten path ({_failure})"
