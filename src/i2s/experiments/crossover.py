"""Study 5b (paper section 3): style transfer by crossover at every split point ``k``
(layers ``k..`` from the style image): the result's distance to the content and to the style
reconstruction, and the distance of its mean colour to the style's.
"""

from __future__ import annotations

import numpy as np
import torch

from i2s.edits import crossover
from i2s.experiments.context import StudyContext
from i2s.experiments.image_set import ImageSet
from i2s.experiments.morphing import embedded_classes
from i2s.experiments.report import Section, figure, md_table, summary
from i2s.media import metrics
from i2s.media.grid import labelled_grid


def _mean_colour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distance of the mean RGB colours ([0, 1] scale) of uint8 images [N, R, R, 3]."""
    ma = a.reshape(len(a), -1, 3).mean(axis=1) / 255.0
    mb = b.reshape(len(b), -1, 3).mean(axis=1) / 255.0
    return np.linalg.norm(ma - mb, axis=1)


def run(study: StudyContext, images: ImageSet) -> Section:
    faces, fe, others = embedded_classes(study, images)
    results: dict = {}
    md: list[str] = []
    figures: list[str] = []
    num_ws = study.G.num_ws
    xpairs = []
    if len(faces) > 1:
        xpairs.append(("face 1 + style face 2", fe.latent[0], fe.latent[1], fe.recon[0],
                       fe.recon[1]))
    xpairs += [(f"face 1 + style {c}", fe.latent[0], e.latent[0], fe.recon[0], e.recon[0])
               for c, (_, e) in others.items()]
    splits = list(range(1, num_ws))
    x_rows, x_labels, per_split = [], [], {k: {"to_content": [], "to_style": [],
                                               "colour_to_style": []} for k in splits}
    for name, wc, wst, rc, rs in xpairs:
        ws = torch.stack([crossover(torch.from_numpy(wc), torch.from_numpy(wst),
                                    range(k, num_ws)) for k in splits])
        imgs = study.render(ws)
        for k, im in zip(splits, imgs, strict=True):
            d = per_split[k]
            d["to_content"].append(float(metrics.mse(im[None], rc[None])[0]))
            d["to_style"].append(float(metrics.mse(im[None], rs[None])[0]))
            d["colour_to_style"].append(float(_mean_colour_distance(im[None], rs[None])[0]))
        x_rows.append([rc, rs, *imgs])
        x_labels.append(name)
    if x_rows:
        results = {"pairs": x_labels, "splits": {
            str(k): {key: summary(v) for key, v in d.items()} | {"per_pair": d}
            for k, d in per_split.items()}}
        fig = study.save_figure("edits_crossover.png", labelled_grid(
            x_rows, x_labels, ["content", "style"] + [f"{k}-{num_ws - 1}" for k in splits]))
        figures.append(fig)
        md += [md_table(
            ["style layers", "MSE to content", "MSE to style", "mean-colour distance to style"],
            [[f"{k}-{num_ws - 1}", summary(d["to_content"]), summary(d["to_style"]),
              summary(d["colour_to_style"])] for k, d in per_split.items()]),
            f"Column k takes style inputs k..{num_ws - 1} from the style image and the rest "
            f"from the content image; i2s's default is {num_ws // 2}-{num_ws - 1} (the "
            "paper's 9/9 split at 1024 px).",
            figure(fig, "Crossover at every split point")]
    return Section("crossover", "Style transfer (crossover)", "\n\n".join(md), results,
                   figures)
