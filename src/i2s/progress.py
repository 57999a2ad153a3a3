"""The one progress bar of i2s (tqdm on stderr), used by the CLI and by downloads.

The library never shows a bar unless the caller asks for one: library functions take a
``callback`` (embedding, experiments) or a ``quiet`` flag (downloads).
"""

from __future__ import annotations

from tqdm import tqdm


def progress_bar(total: int | None, desc: str, unit: str = "step", *, quiet: bool = False,
                 leave: bool = True, bytes_: bool = False) -> tqdm:
    """A tqdm bar on stderr (disabled when ``quiet``); ``bytes_`` for byte counts."""
    return tqdm(total=total, desc=desc, unit="B" if bytes_ else unit, unit_scale=bytes_,
                disable=quiet, leave=leave, dynamic_ncols=True)
