"""Learning-rate and latent-noise schedules of the embedding recipes (docs/paper.md section 4).

All take ``t = step / steps`` in [0, 1) (0 at the first step) and return a factor.

``constant``
    1 (the paper).
``projector``
    NVIDIA's StyleGAN2-ADA projector: a linear warm-up over the first 5% of the steps and a
    cosine ramp-down to 0 over the last 25%,
    ``min(1, t / 0.05) * (0.5 - 0.5 cos(pi * min(1, (1 - t) / 0.25)))``.
``cosine``
    the same 5% warm-up, then a cosine decay from 1 to 0 over the rest of the run,
    ``min(1, t / 0.05) * 0.5 (1 + cos(pi t))``.

The projector's noise on w has std ``w_std * strength * max(0, 1 - t / 0.75) ** 2``: it
decays quadratically and is gone at 75% of the steps.
"""

from __future__ import annotations

import math
import weakref

import torch

LR_SCHEDULES = ("constant", "projector", "cosine")
WARMUP = 0.05                # fraction of the steps with a linear warm-up
RAMPDOWN = 0.25              # projector: fraction of the steps of the cosine ramp-down
W_NOISE_RAMP = 0.75          # fraction of the steps after which no noise is added to w
W_STD_SAMPLES = 10_000       # mapped samples for w_std (as the projector)


def lr_factor(schedule: str, t: float) -> float:
    """Factor on the peak learning rate at progress ``t`` in [0, 1)."""
    if schedule == "constant":
        return 1.0
    warm = min(1.0, t / WARMUP)
    if schedule == "projector":
        ramp = min(1.0, (1.0 - t) / RAMPDOWN)
        return warm * (0.5 - 0.5 * math.cos(ramp * math.pi))
    if schedule == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * t))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


def w_noise_factor(t: float, ramp: float = W_NOISE_RAMP) -> float:
    """Factor on ``w_std * strength``: ``max(0, 1 - t / ramp) ** 2``."""
    return max(0.0, 1.0 - t / ramp) ** 2


_W_STD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def w_std(G, samples: int = W_STD_SAMPLES, seed: int = 123) -> float:
    """The projector's scale of W: ``sqrt(sum ||w_i - w_avg||^2 / n)`` over ``samples`` mapped
    standard-normal z (drawn on the CPU from ``seed``, mapped in chunks). Remembered per
    generator object (a frozen model: embedding many images computes it once)."""
    key = (samples, seed, G.w_avg.device.type)
    known = _W_STD.setdefault(G, {})
    if key not in known:
        known[key] = _w_std(G, samples, seed)
    return known[key]


@torch.no_grad()
def _w_std(G, samples: int, seed: int) -> float:
    gen = torch.Generator().manual_seed(seed)
    device = G.w_avg.device
    total = 0.0
    for start in range(0, samples, 2000):
        n = min(2000, samples - start)
        z = torch.randn(n, G.z_dim, generator=gen).to(device)
        w = G.mapping(z)[:, 0].float()
        total += float((w - G.w_avg.float()).square().sum())
    return math.sqrt(total / samples)
