"""SeFa: closed-form factorisation of the latent semantics (Shen and Zhou, CVPR 2021).

The style input w of a modulated layer acts through an affine map A_l w (+ b); directions
that change the styles most are the top eigenvectors of A^T A, A the stacked A_l of the
chosen layers with each row (one output style) normalised to unit length, as the paper does.
No data, no training: a decomposition of the generator's own weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from i2s.directions.direction import DirectionSet
from i2s.errors import I2SError


def modulated_layers(G) -> dict[int, torch.Tensor]:
    """{W+ index: style affine weight [out, w_dim]} of G's modulated convolutions (StyleGAN2:
    every conv layer, not ToRGB; StyleGAN v1: every AdaIN layer's style map)."""
    arch = getattr(G, "architecture", "")
    out: dict[int, torch.Tensor] = {}
    if arch == "stylegan2":
        idx = 0
        for res in G.synthesis.block_resolutions:
            block = getattr(G.synthesis, f"b{res}")
            convs = [block.conv1] if block.in_channels == 0 else [block.conv0, block.conv1]
            for conv in convs:
                out[idx] = conv.affine.weight.detach()
                idx += 1
    elif arch == "stylegan1":
        for i, res in enumerate(G.synthesis.block_resolutions):
            block = getattr(G.synthesis, f"b{res}")
            out[2 * i] = block.layer0.style.weight.detach()
            out[2 * i + 1] = block.layer1.style.weight.detach()
    else:
        raise I2SError(f"SeFa needs a StyleGAN or StyleGAN2 generator, not {arch or 'this'}")
    return out


def sefa(G, layers: Sequence[int] | None = None) -> DirectionSet:
    """SeFa directions of ``G`` from the modulation weights of ``layers`` (W+ indices;
    default every modulated conv layer), ranked by eigenvalue of A^T A.

    Returns a :class:`DirectionSet` of ``w_dim`` orthonormal directions [w_dim, w_dim], each
    signed so that its largest-magnitude entry is positive (eigenvectors have no sign)."""
    weights = modulated_layers(G)
    chosen = sorted(weights) if layers is None else sorted(set(int(i) for i in layers))
    missing = [i for i in chosen if i not in weights]
    if missing or not chosen:
        raise I2SError(f"SeFa layers {missing or chosen}: the modulated layers of this model "
                       f"are {sorted(weights)}")
    a = torch.cat([weights[i].double() for i in chosen])          # [sum out, w_dim]
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    values, vectors = torch.linalg.eigh(a.T @ a)                  # ascending
    order = torch.argsort(values, descending=True)
    values, vectors = values[order], vectors[:, order].T          # rows = directions
    signs = torch.sign(vectors.gather(1, vectors.abs().argmax(1, keepdim=True)))
    vectors = vectors * signs
    return DirectionSet(vectors.float(), values.numpy().astype(np.float64), "sefa", chosen,
                        params={"layers": chosen})
