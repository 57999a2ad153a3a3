"""Keep freed CPU memory for reuse (glibc), which makes large-tensor steps ~2x faster.

glibc serves allocations above 32 MB with ``mmap`` and returns them on free, so every new
activation at 512-1024 px is page-faulted and zeroed again: an elementwise op on a 128 MB
tensor then costs ~50 ms instead of ~9 ms. ``mallopt(M_MMAP_MAX, 0)`` plus a high trim
threshold keeps freed blocks in the heap. The cost: the process keeps its peak memory until
it exits.

This changes the whole process, so the library never does it on its own: the CLI calls
:func:`keep_freed_memory` once at start-up (``I2S_KEEP_FREED_MEMORY=0`` turns that off), and
Python users call it themselves when they want the speed (``i2s.keep_freed_memory()``). It
says so in one log line (logger ``i2s``, level INFO). A no-op where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

SWITCH = "I2S_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

log = logging.getLogger(__name__)
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Configure glibc malloc once per process; True if it took effect (False where glibc is
    absent or ``I2S_KEEP_FREED_MEMORY=0``)."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get(SWITCH, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _done = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    if _done:
        log.info("glibc malloc keeps freed memory in the heap for this process (faster large "
                 "steps; %s=0 turns this off)", SWITCH)
    return _done
