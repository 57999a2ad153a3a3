"""GANSpace: principal directions of the mapped latent distribution (Härkönen et al.,
NeurIPS 2020). PCA of w = mapping(z) over seeded samples; components in W, ranked by the
variance of the samples along them.

Published components: GANSpace itself (github.com/harskish/ganspace, Apache-2.0; checked at
commit 5a704c4) publishes none for StyleGAN2 FFHQ. Its ``decomposition.py`` computes them on
the user's machine into ``cache/components/*.npz`` (a git-ignored folder; the repository holds
only three BigGAN-husky files there, and one exported "Light" slider for StyleGAN2 FFHQ in
``out/directions/*.pkl``, an arbitrary pickle that would have to be unpickled to be read).
Those npz files (``lat_comp``, ``lat_stdev``, ``lat_mean``, ...) are not read either: nothing
in them says whether the components are in Z or in W (only the file name's ``_w`` does), and
Z components applied in W would be silently wrong. The PCA file that is published for
StyleGAN2 FFHQ is e4e's (github.com/omertov/encoder4editing, MIT:
``editings/ganspace_pca/ffhq_pca.pt``, W components); :func:`i2s.directions.files.load_pca_file`
reads that layout (``--direction FILE.pt:K``, or ``NAME:K`` for a ``direction-set`` registry
entry)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from i2s.directions.direction import DirectionSet
from i2s.errors import I2SError

DEFAULT_SAMPLES = 10_000


@torch.no_grad()
def ganspace(G, n_samples: int = DEFAULT_SAMPLES, seed: int = 0, components: int = 64,
             layers: Sequence[int] | None = None) -> DirectionSet:
    """The first ``components`` principal directions of W for ``G`` from ``n_samples`` z drawn
    with ``seed`` (CPU generator: the same on every machine), with their variances and sample
    standard deviations; ``layers``: the W+ inputs they are applied to by default (all).
    Signed so that each one's largest-magnitude entry is positive."""
    if n_samples < 2:
        raise I2SError("GANSpace needs at least 2 samples")
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n_samples, G.z_dim, generator=gen)
    dev = G.w_avg.device
    w = torch.cat([G.mapping(c.to(dev))[:, 0].cpu() for c in z.split(1000)]).double()
    centred = w - w.mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)     # descending
    k = min(components, vh.shape[0])
    vectors = vh[:k]
    signs = torch.sign(vectors.gather(1, vectors.abs().argmax(1, keepdim=True)))
    vectors = vectors * signs
    variance = (s[:k] ** 2 / (n_samples - 1)).numpy()
    chosen = list(range(G.num_ws)) if layers is None else sorted(set(int(i) for i in layers))
    return DirectionSet(vectors.float(), variance, "ganspace", chosen,
                        stds=np.sqrt(variance), params={"samples": n_samples, "seed": seed})
