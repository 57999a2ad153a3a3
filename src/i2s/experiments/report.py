"""Markdown pieces of ``report.md``: one :class:`Section` per study, tables, number formats."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Section:
    """What a study returns: its part of ``report.md`` and of ``results.json``."""

    name: str
    title: str
    markdown: str
    results: dict
    figures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def summary(values: np.ndarray | list[float | None]) -> float | None:
    """Mean of the finite values, or None when there are none."""
    a = np.array([v for v in np.asarray(values, dtype=object).ravel() if v is not None],
                 dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def fmt(value, digits: int = 2) -> str:
    """A number for a table ('n/a' for None, scientific notation for tiny values)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    v = float(value)
    if v != 0 and abs(v) < 10 ** -digits:
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def md_table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table; cells that are not strings go through :func:`fmt`."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(c if isinstance(c, str) else fmt(c) for c in row) + " |")
    return "\n".join(lines)


def figure(name: str, caption: str) -> str:
    return f"![{caption}]({name})\n\n*{caption}*"
