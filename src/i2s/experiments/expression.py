"""Study 5c (paper section 3): expression transfer over strengths, with the paper's threshold
1.0: layers kept, and how much the target changes. The neutral/expressive pair comes from
``--images DIR/expression/``; without it the pair is a face and its mirror image (the
"expression" is then a left-right flip), which exercises the arithmetic but is not an
expression.
"""

from __future__ import annotations

import numpy as np
import torch

from i2s.edits import transfer_expression
from i2s.experiments.context import StudyContext
from i2s.experiments.image_set import ImageSet
from i2s.experiments.report import Section, figure, md_table, summary
from i2s.media import metrics
from i2s.media.grid import labelled_grid

THRESHOLD = 1.0


def run(study: StudyContext, images: ImageSet) -> Section:
    faces = images.faces
    fe = study.embed(faces, label="edits: faces")
    quick = study.quick
    num_ws = study.G.num_ws
    if images.expression is not None:
        pair = np.stack(images.expression)
        pair_note = "the neutral and expressive images of --images/expression"
    else:
        pair = np.stack([faces[0], faces[0][:, ::-1]])
        pair_note = ("face 1 and its mirror image (no expression pair was given: the "
                     "transferred 'expression' is a left-right flip)")
    pe = study.embed(pair, label="edits: expression pair")
    targets = fe.latent[1:4] if len(faces) > 1 else fe.latent[:1]
    strengths = [0.0, 1.0, 2.0] if quick else [0.0, 0.5, 1.0, 1.5, 2.0]
    w_t = torch.from_numpy(targets)
    rows, changes = [], {}
    base = study.render(w_t)
    w_n, w_e = torch.from_numpy(pe.latent[0]), torch.from_numpy(pe.latent[1])
    # The paper's unit normalisation: lambda is a W+ distance; the study steps in fractions
    # of the cleaned difference's norm (fraction 1 = as far as the source moved).
    unit = transfer_expression(w_t, w_n, w_e, strength=0.0, threshold=THRESHOLD).cleaned_norm
    for s in strengths:
        res = transfer_expression(w_t, w_n, w_e, strength=s * unit, threshold=THRESHOLD)
        imgs = study.render(res.latent)
        changes[str(s)] = summary(metrics.mse(imgs, base))
        rows.append(imgs)
    results = {"pair": pair_note, "threshold": THRESHOLD, "kept_layers": res.kept_layers,
               "layer_norms": res.layer_norms, "scale": res.scale, "strengths": strengths,
               "normalise": "unit", "lambdas": [s * unit for s in strengths],
               "mse_to_unedited": changes}
    grid = [[pe.recon[0], pe.recon[1]] + [r[i] for r in rows] for i in range(len(targets))]
    fig = study.save_figure("edits_expression.png", labelled_grid(
        grid, [f"target {i + 1}" for i in range(len(targets))],
        ["neutral", "expressive"] + [f"lambda {s * unit:.3g}" for s in strengths]))
    md = [md_table(
        ["fraction of the source's step"] + [f"{s:g}" for s in strengths],
        [["lambda (W+ distance)"] + [f"{s * unit:.3g}" for s in strengths],
         ["MSE to the unedited target"] + [changes[str(s)] for s in strengths]]),
        f"Pair: {pair_note}. Layer norms of the difference: "
        f"{', '.join(f'{n:.2f}' for n in res.layer_norms)}; with threshold {THRESHOLD:g} "
        f"{len(res.kept_layers)} of {num_ws} layers are kept. The cleaned difference is made a "
        f"unit direction (the paper's normalisation) and lambda is the step along it: its "
        f"norm here is {unit:.2f}, so lambda = {unit:.2f} moves the targets as far as the "
        "expression moved the source.",
        figure(fig, "Expression transfer over strengths")]
    return Section("expression", "Expression transfer", "\n\n".join(md), results, [fig])
