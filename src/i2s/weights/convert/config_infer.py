"""Infer a StyleGAN2 channel configuration from per-resolution channel counts."""

from __future__ import annotations

from i2s.errors import I2SError


def channel_config(channels: dict[int, int], source: str,
                   channel_base: int | None = None) -> tuple[int, int]:
    """(channel_base, channel_max) with ``min(channel_base // r, channel_max) == channels[r]``
    for every block resolution ``r``; ``channel_base`` is used as given when known."""
    cmax = max(channels.values())
    if channel_base is None:
        below = [r for r in sorted(channels) if channels[r] < cmax]
        channel_base = channels[below[0]] * below[0] if below else cmax * max(channels)
    for r, c in channels.items():
        if min(channel_base // r, cmax) != c:
            raise I2SError(f"{source}: channel counts {dict(sorted(channels.items()))} do not "
                           "follow min(channel_base // res, channel_max)")
    return channel_base, cmax
