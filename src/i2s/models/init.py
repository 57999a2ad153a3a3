"""Random initial values for parameters and buffers, free on the meta device.

Loading a checkpoint first builds its model on the meta device (shapes only, no memory) to
check the file against the config; a tensor op there loads PyTorch's symbolic-shape machinery
(sympy, ~0.6 s, more on a busy machine). :func:`randn` therefore only allocates on meta and
draws the numbers everywhere else: the same values as ``torch.randn(*shape) / divisor``.
"""

from __future__ import annotations

import torch


def randn(*shape: int, divisor: float = 1.0) -> torch.Tensor:
    """``torch.randn(*shape) / divisor`` on the current default device; on the meta device an
    empty tensor of that shape (meta tensors hold no values)."""
    t = torch.empty(*shape)
    if t.device.type == "meta":
        return t
    t.normal_()
    return t.div_(divisor) if divisor != 1.0 else t
