"""Expression transfer (Abdal et al. 2019, section 3 of docs/paper.md): add the cleaned,
renormalised difference of an expressive and a neutral code to a target code."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from i2s.edits.codes import check_pair
from i2s.errors import I2SError

NORMALISATIONS = ("unit", "source")


@dataclass
class ExpressionTransfer:
    """Result of :func:`transfer_expression`."""

    latent: torch.Tensor       # [..., num_ws, w_dim] edited code(s)
    kept_layers: list[int]     # layers whose difference norm reached the threshold
    layer_norms: list[float]   # L2 norm of every layer of w_expressive - w_neutral
    scale: float               # factor applied to the cleaned difference (before strength)
    cleaned_norm: float        # Frobenius norm of the cleaned difference (lambda's scale)
    normalise: str             # "unit" or "source"


def transfer_expression(w_target: torch.Tensor, w_neutral: torch.Tensor,
                        w_expressive: torch.Tensor, strength: float = 1.0,
                        threshold: float = 1.0, normalise: str = "unit") -> ExpressionTransfer:
    """Expression transfer (section 3): ``w_target + strength * normalise(clean(d))`` with
    ``d = w_expressive - w_neutral``.

    * clean: every layer vector ``d[i]`` (one w_dim row) whose L2 norm is below ``threshold``
      is set to zero (the paper uses 1.0);
    * normalise ``"unit"`` (the paper's reading, the default): the cleaned difference is
      divided by its Frobenius (whole-code L2) norm, so it is a direction and ``strength``
      alone sets the step: the target moves by exactly ``strength`` in W+ (a source with a
      stronger expression gives the same step). ``strength = cleaned_norm`` moves it as far as
      the source's expression moved the source.
    * normalise ``"source"``: the cleaned difference is rescaled to the raw ``d``'s norm, so
      ``strength = 1`` moves the target as far as the source moved (a source with a stronger
      expression gives a bigger step).

    If no layer is kept (or ``d = 0``) the target is returned unchanged. The neutral and
    expressive codes must be single codes ([num_ws, w_dim] or [1, ...]); the target may be a
    batch. Layer norms are computed on that single difference.
    """
    if normalise not in NORMALISATIONS:
        raise I2SError(f"expression: normalise must be one of {NORMALISATIONS}, "
                       f"got {normalise!r:.40}")
    check_pair(w_target, w_neutral, "expression")
    check_pair(w_target, w_expressive, "expression")
    d = (w_expressive - w_neutral).reshape(-1, *w_target.shape[-2:])
    if d.shape[0] != 1:
        raise I2SError("expression: the neutral and expressive codes must be single codes")
    d = d[0]
    norms = d.norm(dim=-1)                                 # [num_ws]
    keep = norms >= threshold
    cleaned = torch.where(keep[:, None], d, torch.zeros_like(d))
    kept_total = float(cleaned.norm())
    if kept_total > 0:
        scale = 1.0 / kept_total if normalise == "unit" else float(d.norm()) / kept_total
    else:
        scale = 0.0
    latent = w_target + (strength * scale) * cleaned if scale else w_target.clone()
    return ExpressionTransfer(latent=latent, kept_layers=keep.nonzero().flatten().tolist(),
                              layer_norms=norms.tolist(), scale=scale,
                              cleaned_norm=kept_total, normalise=normalise)
