"""Study 5 (paper section 3): are the embeddings meaningful? The three edits on embedded codes.

* Morphing between pairs of faces and between a face and each other class. Numbers: the
  evenness of the path (largest frame-to-frame change over the mean one; 1 = even) and how far
  the frames are from a plain cross-dissolve of the end images (0 = the GAN only blends
  pixels).
* Crossover at every split point ``k`` (layers ``k..`` from the style image): the result's
  distance to the content and to the style reconstruction, and the distance of its mean colour
  to the style's.
* Expression transfer over strengths, with the paper's threshold 1.0: layers kept, and how much
  the target changes. The neutral/expressive pair comes from ``--images DIR/expression/``;
  without it the pair is a face and its mirror image (the "expression" is then a left-right
  flip), which exercises the arithmetic but is not an expression.
"""

from __future__ import annotations

import numpy as np
import torch

from i2s.edits import crossover, morph, transfer_expression
from i2s.experiments import metrics
from i2s.experiments.figures import labelled_grid
from i2s.experiments.image_set import ImageSet
from i2s.experiments.metrics import summary
from i2s.experiments.report import Section, figure, md_table
from i2s.experiments.study import Study

THRESHOLD = 1.0


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


def _morphs(study: Study, pairs: list[tuple[str, np.ndarray, np.ndarray, np.ndarray,
                                            np.ndarray]], frames: int) -> tuple[dict, list]:
    ts = np.linspace(1.0, 0.0, frames)
    out, rows = {}, []
    for name, wa, wb, ta, tb in pairs:
        ws = morph(torch.from_numpy(wa), torch.from_numpy(wb), torch.from_numpy(ts).float())
        imgs = study.render(ws)
        out[name] = _morph_numbers(imgs, imgs[0], imgs[-1], ts)
        rows.append([ta, *imgs, tb])
    return out, rows


def _mean_colour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distance of the mean RGB colours ([0, 1] scale) of uint8 images [N, R, R, 3]."""
    ma = a.reshape(len(a), -1, 3).mean(axis=1) / 255.0
    mb = b.reshape(len(b), -1, 3).mean(axis=1) / 255.0
    return np.linalg.norm(ma - mb, axis=1)


def run(study: Study, images: ImageSet) -> Section:
    quick = study.settings.quick
    faces = images.faces
    fe = study.embed(faces, label="edits: faces")
    others = {c: (images.images[c][:1], study.embed(images.images[c], label=f"edits: {c}"))
              for c in images.other_classes}
    results: dict = {}
    md: list[str] = []
    figures: list[str] = []
    frames = 5 if quick else 9

    # Morphing: face pairs, then face -> first image of every other class.
    pairs = [(f"face {i + 1} -> face {i + 2}", fe.latent[i], fe.latent[i + 1], faces[i],
              faces[i + 1]) for i in range(0, min(len(faces) - 1, 2 if quick else 4), 2)]
    cross = [(f"face 1 -> {c}", fe.latent[0], e.latent[0], faces[0], t[0])
             for c, (t, e) in others.items()]
    face_numbers, face_rows = _morphs(study, pairs, frames)
    cross_numbers, cross_rows = _morphs(study, cross, frames)
    results["morph"] = {"frames": frames, "faces": face_numbers, "cross_class": cross_numbers}
    if face_rows or cross_rows:
        labels = [p[0] for p in pairs] + [c[0] for c in cross]
        cols = ["target A"] + [f"t={t:.2f}" for t in np.linspace(1, 0, frames)] + ["target B"]
        fig = study.save_figure("edits_morph.png",
                                labelled_grid(face_rows + cross_rows, labels, cols))
        figures.append(fig)
        md += ["### Morphing", md_table(
            ["pair", "evenness (max/mean step)", "MSE to cross-dissolve"],
            [[n, r["evenness"], r["mse_to_cross_dissolve"]]
             for n, r in {**face_numbers, **cross_numbers}.items()]),
            "Mean MSE to a cross-dissolve: faces "
            f"{_fmt(summary([r['mse_to_cross_dissolve'] for r in face_numbers.values()]))}, "
            "across classes "
            f"{_fmt(summary([r['mse_to_cross_dissolve'] for r in cross_numbers.values()]))}.",
            figure(fig, "Morphing: W+ interpolation between embedded images")]

    # Crossover at every split point.
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
        results["crossover"] = {"pairs": x_labels, "splits": {
            str(k): {key: summary(v) for key, v in d.items()} | {"per_pair": d}
            for k, d in per_split.items()}}
        fig = study.save_figure("edits_crossover.png", labelled_grid(
            x_rows, x_labels, ["content", "style"] + [f"{k}-{num_ws - 1}" for k in splits]))
        figures.append(fig)
        md += ["### Style transfer (crossover)", md_table(
            ["style layers", "MSE to content", "MSE to style", "mean-colour distance to style"],
            [[f"{k}-{num_ws - 1}", summary(d["to_content"]), summary(d["to_style"]),
              summary(d["colour_to_style"])] for k, d in per_split.items()]),
            f"Column k takes style inputs k..{num_ws - 1} from the style image and the rest "
            f"from the content image; i2s's default is {num_ws // 2}-{num_ws - 1} (the "
            "paper's 9/9 split at 1024 px).",
            figure(fig, "Crossover at every split point")]

    # Expression transfer.
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
    for s in strengths:
        res = transfer_expression(w_t, torch.from_numpy(pe.latent[0]),
                                  torch.from_numpy(pe.latent[1]), strength=s,
                                  threshold=THRESHOLD)
        imgs = study.render(res.latent)
        changes[str(s)] = summary(metrics.mse(imgs, base))
        rows.append(imgs)
    results["expression"] = {"pair": pair_note, "threshold": THRESHOLD,
                             "kept_layers": res.kept_layers, "layer_norms": res.layer_norms,
                             "scale": res.scale, "strengths": strengths,
                             "mse_to_unedited": changes}
    grid = [[pe.recon[0], pe.recon[1]] + [r[i] for r in rows] for i in range(len(targets))]
    fig = study.save_figure("edits_expression.png", labelled_grid(
        grid, [f"target {i + 1}" for i in range(len(targets))],
        ["neutral", "expressive"] + [f"strength {s:g}" for s in strengths]))
    figures.append(fig)
    md += ["### Expression transfer", md_table(
        ["strength"] + [f"{s:g}" for s in strengths],
        [["MSE to the unedited target"] + [changes[str(s)] for s in strengths]]),
        f"Pair: {pair_note}. Layer norms of the difference: "
        f"{', '.join(f'{n:.2f}' for n in res.layer_norms)}; with threshold {THRESHOLD:g} "
        f"{len(res.kept_layers)} of {num_ws} layers are kept (scale {res.scale:.3f}).",
        figure(fig, "Expression transfer over strengths")]
    return Section("edits", "Edits", "\n\n".join(md), results, figures)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"
