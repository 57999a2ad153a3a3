"""Study 1 (paper section 2.1): which images embed. Every class is embedded into W+ from the
mean latent; per class the mean MSE, PSNR, SSIM, perceptual distance and, for faces, the dlib
identity distance."""

from __future__ import annotations

from i2s.experiments.context import StudyContext
from i2s.experiments.image_set import FACE_CLASS, ImageSet
from i2s.experiments.report import Section, figure, md_table, summary
from i2s.media.grid import labelled_grid

SHOWN = 8   # images per class in the figure
METRICS = ("mse", "psnr", "ssim", "perceptual", "identity")


def run(study: StudyContext, images: ImageSet) -> Section:
    results: dict = {}
    rows, labels = [], []
    for cls, targets in images.images.items():
        e = study.embed(targets, label=f"classes: {cls}")
        per_image = study.reconstruction_metrics(e.recon, targets, identity=cls == FACE_CLASS)
        results[cls] = {"n": len(targets), "images": images.names[cls], "per_image": per_image,
                        "mean": {k: summary(v) for k, v in per_image.items()},
                        "embedding_seconds": e.seconds}
        rows += [list(targets[:SHOWN]), list(e.recon[:SHOWN])]
        labels += [f"{cls}: target", f"{cls}: W+"]
    fig = study.save_figure("classes.png", labelled_grid(rows, labels))
    table = md_table(
        ["class", "images", "MSE", "PSNR (dB)", "SSIM", "perceptual", "identity distance"],
        [[c, r["n"]] + [r["mean"].get(k) for k in METRICS] for c, r in results.items()])
    faces = results.get(FACE_CLASS, {}).get("mean", {}).get("psnr")
    others = {c: r["mean"]["psnr"] for c, r in results.items() if c != FACE_CLASS}
    finding = ""
    if faces is not None and others:
        best_other = max(others, key=others.get)
        finding = (f"Faces reach {faces:.2f} dB; the best other class ({best_other}) "
                   f"{others[best_other]:.2f} dB. The paper: faces embed best, other classes "
                   f"'reasonably'. Here faces {'do' if faces > max(others.values()) else 'do not'}"
                   " embed best.")
    md = "\n\n".join(s for s in [table, finding, figure(fig, "Targets and W+ reconstructions "
                                                     "per class")] if s)
    results["faces_best"] = (faces is not None and bool(others)
                             and faces > max(others.values()))
    return Section("classes", "Which images embed", md, results, [fig])
