"""The phases of each strategy: which branch moves at a step, and what the colour loss may move.

A :class:`Phase` optimises ws_geo (``geo``: with the geometry terms, and the cameras when they
are estimated), ws_tex (``tex``: with the colour term) or both; ``rgb_to_geo`` is the weight
with which the colour term reaches ws_geo through the shared tri-plane backbone when ws_geo
moves (0: not at all, 1: fully). Phases are built for ``steps`` total steps:

``joint``        one phase, both branches, rgb_to_geo 1;
``staged``       geometry (``geo_fraction`` of the steps, geometry terms only), then texture
                 (ws_geo frozen);
``alternating``  blocks of ``alternate_every`` steps: ws_geo on every term (rgb_to_geo 1), then
                 ws_tex on the colour term, repeated;
``staged-joint`` geometry, texture, then both with rgb_to_geo = ``tex_to_geo``
                 (``joint_fraction`` of the steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from i2s.embedding3d.config import Embed3DConfig


@dataclass(frozen=True)
class Phase:
    name: str
    steps: int
    geo: bool
    tex: bool
    rgb_to_geo: float = 0.0

    @property
    def uses_rgb(self) -> bool:
        """Whether the colour term is computed in this phase."""
        return self.tex or (self.geo and self.rgb_to_geo > 0)


def schedule(cfg: Embed3DConfig) -> list[Phase]:
    """The phases of ``cfg.strategy`` over ``cfg.steps`` steps (empty phases dropped)."""
    n = cfg.steps
    if cfg.strategy == "joint":
        phases = [Phase("joint", n, True, True, 1.0)]
    elif cfg.strategy == "staged":
        g = max(1, round(n * cfg.geo_fraction)) if n > 1 else n
        phases = [Phase("geometry", g, True, False), Phase("texture", n - g, False, True)]
    elif cfg.strategy == "alternating":
        phases, done, k = [], 0, cfg.alternate_every
        while done < n:
            geo = len(phases) % 2 == 0
            m = min(k, n - done)
            phases.append(Phase("geometry" if geo else "texture", m, geo, not geo,
                                1.0 if geo else 0.0))
            done += m
    else:  # staged-joint
        g = round(n * cfg.geo_fraction)
        j = round(n * cfg.joint_fraction)
        phases = [Phase("geometry", g, True, False), Phase("texture", n - g - j, False, True),
                  Phase("joint", j, True, True, cfg.tex_to_geo)]
    return [p for p in phases if p.steps > 0]


def lr_factors(phases: list[Phase], rampdown: float, whole_run: bool = False) -> list[float]:
    """Per step, the learning-rate factor: 1, then a cosine ramp down to 0 over the last
    ``rampdown`` fraction of each phase (of the whole run with ``whole_run``, for the short
    blocks of ``alternating``), so that the latents settle instead of ending on a jump."""
    spans = [sum(p.steps for p in phases)] if whole_run else [p.steps for p in phases]
    out = []
    for n in spans:
        for i in range(n):
            t = i / n
            left = (1 - t) / rampdown if rampdown > 0 else 1.0
            out.append(0.5 - 0.5 * math.cos(math.pi * min(1.0, left)) if left < 1 else 1.0)
    return out


def phase_at(phases: list[Phase]) -> list[int]:
    """For every step (0-based), the index of its phase."""
    return [i for i, p in enumerate(phases) for _ in range(p.steps)]
