"""Study 4 (paper section 2.4): which latent space and initialisation. Faces are embedded into
Z, W and W+, each from the mean latent and from a random one; the final errors and the
error-vs-step curves are compared. The paper: W+ from the mean wins."""

from __future__ import annotations

from i2s.experiments.context import StudyContext
from i2s.experiments.figures import curve_plot
from i2s.experiments.image_set import ImageSet
from i2s.experiments.report import Section, figure, md_table, summary
from i2s.media.grid import labelled_grid

COMBOS = [(space, init) for space in ("w+", "w", "z") for init in ("mean", "random")]
SHOWN = 4


def label(space: str, init: str) -> str:
    return f"{space.upper()}, {init}"


def run(study: StudyContext, images: ImageSet) -> Section:
    faces = images.faces
    results: dict = {"combinations": {}}
    curves, rows = {}, [[f] for f in faces[:SHOWN]]
    table = []
    for space, init in COMBOS:
        name = label(space, init)
        e = study.embed(faces, space=space, init=init, label=f"spaces: {name}")
        per_image = study.reconstruction_metrics(e.recon, faces, identity=True)
        curve = e.psnr_curve.mean(axis=1)
        results["combinations"][name] = {
            "space": space, "init": init, "per_image": per_image,
            "mean": {k: summary(v) for k, v in per_image.items()},
            "psnr_curve_mean": curve.tolist()}
        curves[name] = curve
        m = results["combinations"][name]["mean"]
        table.append([name, m["mse"], m["psnr"], m["ssim"], m["perceptual"], m["identity"]])
        for i in range(min(SHOWN, len(faces))):
            rows[i].append(e.recon[i])
    best = max(results["combinations"],
               key=lambda n: results["combinations"][n]["mean"]["psnr"])
    results["best"] = best
    plot = "spaces_curve.png"
    curve_plot(study.out / plot, curves, "step", "mean PSNR (dB)",
               f"Embedding {len(faces)} faces: PSNR vs step")
    fig = study.save_figure("spaces.png", labelled_grid(
        rows, None, ["target"] + [label(s, i) for s, i in COMBOS]))
    md = "\n\n".join([
        md_table(["space, init", "MSE", "PSNR (dB)", "SSIM", "perceptual",
                  "identity distance"], table),
        f"{len(faces)} faces, {study.config.steps} steps. Best: **{best}** (the paper: W+ "
        "from the mean).",
        figure(plot, "Mean PSNR of the reconstruction at every step"),
        figure(fig, "Reconstructions in every space and initialisation")])
    return Section("spaces", "Latent space and initialisation", md, results, [plot, fig])
