"""Study 5a (paper section 3): morphing between embedded images. Faces are morphed pairwise
and face 1 into the first image of every other class. Numbers: the evenness of the path
(largest frame-to-frame change over the mean one; 1 = even) and how far the frames are from a
plain cross-dissolve of the end images (0 = the GAN only blends pixels).
"""

from __future__ import annotations

import numpy as np
import torch

from i2s.edits import morph
from i2s.experiments.context import StudyContext
from i2s.experiments.image_set import ImageSet
from i2s.experiments.report import Section, figure, md_table, summary
from i2s.media import metrics
from i2s.media.grid import labelled_grid


def _morph_numbers(frames: np.ndarray, a: np.ndarray, b: np.ndarray, ts: np.ndarray) -> dict:
    """frames [T, R, R, 3] from ``a`` (t=1) to ``b`` (t=0); ``a``, ``b`` the end renders."""
    steps = metrics.mse(frames[1:], frames[:-1])
    blend = (ts[:, None, None, None] * a.astype(np.float64)
             + (1 - ts[:, None, None, None]) * b.astype(np.float64))
    inner = slice(1, len(frames) - 1)
    dissolve = metrics.mse(frames[inner], np.clip(blend[inner] + 0.5, 0, 255).astype(np.uint8))
    return {"step_mse": steps.tolist(),
            "evenness": float(steps.max() / steps.mean()) if steps.mean() > 0 else None,
            "mse_to_cross_dissolve": float(dissolve.mean()) if dissolve.size else None}


def _morphs(study: StudyContext, pairs: list[tuple[str, np.ndarray, np.ndarray, np.ndarray,
                                            np.ndarray]], frames: int) -> tuple[dict, list]:
    ts = np.linspace(1.0, 0.0, frames)
    out, rows = {}, []
    for name, wa, wb, ta, tb in pairs:
        ws = morph(torch.from_numpy(wa), torch.from_numpy(wb), torch.from_numpy(ts).float())
        imgs = study.render(ws)
        out[name] = _morph_numbers(imgs, imgs[0], imgs[-1], ts)
        rows.append([ta, *imgs, tb])
    return out, rows


def embedded_classes(study: StudyContext, images: ImageSet):
    """The faces and every other class embedded in W+ from the mean (shared by the edit
    studies through the cache): (faces, their embedding, {class: (first image, embedding)})."""
    faces = images.faces
    fe = study.embed(faces, label="edits: faces")
    others = {c: (images.images[c][:1], study.embed(images.images[c], label=f"edits: {c}"))
              for c in images.other_classes}
    return faces, fe, others


def run(study: StudyContext, images: ImageSet) -> Section:
    faces, fe, others = embedded_classes(study, images)
    quick = study.quick
    md: list[str] = []
    figures: list[str] = []
    frames = 5 if quick else 9
    # Face pairs, then face 1 -> first image of every other class.
    pairs = [(f"face {i + 1} -> face {i + 2}", fe.latent[i], fe.latent[i + 1], faces[i],
              faces[i + 1]) for i in range(0, min(len(faces) - 1, 2 if quick else 4), 2)]
    cross = [(f"face 1 -> {c}", fe.latent[0], e.latent[0], faces[0], t[0])
             for c, (t, e) in others.items()]
    face_numbers, face_rows = _morphs(study, pairs, frames)
    cross_numbers, cross_rows = _morphs(study, cross, frames)
    results = {"frames": frames, "faces": face_numbers, "cross_class": cross_numbers}
    if face_rows or cross_rows:
        labels = [p[0] for p in pairs] + [c[0] for c in cross]
        cols = ["target A"] + [f"t={t:.2f}" for t in np.linspace(1, 0, frames)] + ["target B"]
        fig = study.save_figure("edits_morph.png",
                                labelled_grid(face_rows + cross_rows, labels, cols))
        figures.append(fig)
        md += [md_table(
            ["pair", "evenness (max/mean step)", "MSE to cross-dissolve"],
            [[n, r["evenness"], r["mse_to_cross_dissolve"]]
             for n, r in {**face_numbers, **cross_numbers}.items()]),
            "Mean MSE to a cross-dissolve: faces "
            f"{_fmt(summary([r['mse_to_cross_dissolve'] for r in face_numbers.values()]))}, "
            "across classes "
            f"{_fmt(summary([r['mse_to_cross_dissolve'] for r in cross_numbers.values()]))}.",
            figure(fig, "Morphing: W+ interpolation between embedded images")]
    return Section("morph", "Morphing", "\n\n".join(md), results, figures)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"
