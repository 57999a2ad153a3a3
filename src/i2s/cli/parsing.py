"""Parsing the list options of the commands (strengths, seeds): one I2SError line for
anything that is not a list of the expected numbers (the commands turn it into a usage
error)."""

from __future__ import annotations

from i2s.errors import I2SError

MAX_SEEDS = 4096


def parse_strengths(spec: str) -> list[float]:
    """'0,0.5,1' -> [0.0, 0.5, 1.0]; I2SError for anything that is not a number."""
    try:
        values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise I2SError(f"{spec!r}: expected numbers like '0,0.5,1,1.5'") from None
    if not values or not all(v == v and abs(v) != float("inf") for v in values):
        raise I2SError(f"{spec!r}: expected finite numbers")
    return values


def parse_seeds(spec: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7] (ranges inclusive, order kept, duplicates dropped)."""
    seeds: list[int] = []
    for part in spec.replace(" ", "").split(","):
        try:
            lo, _, hi = part.partition("-")
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise I2SError(f"{spec!r}: expected seeds like '0-31' or '1,5,9-12'") from None
        if not 0 <= a <= b < 2**63 or b - a >= MAX_SEEDS:
            raise I2SError(f"{spec!r}: seeds must be in [0, 2^63), ranges ascending")
        seeds.extend(range(a, b + 1))
        if len(seeds) > MAX_SEEDS:
            raise I2SError(f"{spec!r}: at most {MAX_SEEDS} seeds")
    return list(dict.fromkeys(seeds))
