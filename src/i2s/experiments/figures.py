"""Figures of the studies: curves (matplotlib, Agg). Labelled image grids are
:func:`i2s.media.grid.labelled_grid`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from i2s.media.files import atomic_path


def curve_plot(path: str | Path, curves: dict[str, np.ndarray], xlabel: str, ylabel: str,
               title: str) -> None:
    """Line plot of named 1-D curves (x = 1, 2, ...) written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for label, y in curves.items():
        y = np.asarray(y, dtype=np.float64)
        ax.plot(np.arange(1, len(y) + 1), y, label=label, linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
