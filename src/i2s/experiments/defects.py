"""Study 3 (paper section 2.3): embedding faces with defects. A region (eyes, nose or mouth)
is painted flat grey and the defective face is embedded like any other image. Measured:

* inside the region, the reconstruction's error against the defective target (low: the defect
  is reproduced) and against the original face (low: the hole was filled with a face);
* outside the region, the PSNR against the original, beside that of the clean face's
  embedding (equal: the other features are unaffected).

The paper finds the embedding reproduces the defect rather than filling it, and that the rest
of the face is unaffected. Regions come from the 68 dlib landmarks when a face is detected, and
from fixed boxes otherwise (:data:`i2s.experiments.transforms.FIXED_REGIONS`).
"""

from __future__ import annotations

import numpy as np

from i2s.experiments.context import StudyContext
from i2s.experiments.image_set import ImageSet
from i2s.experiments.report import Section, figure, md_table, summary
from i2s.experiments.transforms import (
    FIXED_REGIONS,
    box_mask,
    landmark_box,
    paint_region,
)
from i2s.faces import detect as face_models
from i2s.media import metrics
from i2s.media.grid import labelled_grid

REGIONS = ("eyes", "nose", "mouth")
SHOWN = 4


def face_landmarks(image: np.ndarray) -> np.ndarray | None:
    """68 landmarks [68, 2] in the pixels of uint8 ``image`` [R, R, 3], or None when dlib is
    missing or finds no face (small images are upscaled for the detector)."""
    if not face_models.available():
        return None
    big = face_models.upscale_for_detection(image)
    found = face_models.detect_faces(big)
    if not found:
        return None
    return found[0].landmarks * (image.shape[0] / big.shape[0])


def region_masks(image: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
    """Boolean masks [R, R] of every region of one face, and their source ('landmarks' or
    'fixed boxes')."""
    size = image.shape[0]
    lms = face_landmarks(image)
    if lms is None:
        return {r: box_mask(FIXED_REGIONS[r], size) for r in REGIONS}, "fixed boxes"
    return {r: box_mask(landmark_box(lms, r, size), size) for r in REGIONS}, "landmarks"


def run(study: StudyContext, images: ImageSet) -> Section:
    faces = images.faces
    per_face = [region_masks(f) for f in faces]
    sources = [s for _, s in per_face]
    clean = study.embed(faces, label="defects: clean faces")
    results: dict = {"mask_source": sources, "regions": {}}
    rows = [[f] for f in faces[:SHOWN]]
    col_labels = ["original"]
    table = []
    for region in REGIONS:
        masks = np.stack([m[region] for m, _ in per_face])
        defective = np.stack([paint_region(f, m) for f, m in zip(faces, masks, strict=True)])
        e = study.embed(defective, label=f"defects: {region}")
        in_to_defect = metrics.masked_mse(e.recon, defective, masks)
        in_to_original = metrics.masked_mse(e.recon, faces, masks)
        clean_in = metrics.masked_mse(clean.recon, faces, masks)
        out_psnr = metrics.psnr(metrics.masked_mse(e.recon, faces, ~masks))
        clean_out_psnr = metrics.psnr(metrics.masked_mse(clean.recon, faces, ~masks))
        filled = in_to_original < in_to_defect
        r = {"area_fraction": masks.reshape(len(masks), -1).mean(axis=1).tolist(),
             "inside_mse_to_defect": in_to_defect.tolist(),
             "inside_mse_to_original": in_to_original.tolist(),
             "clean_inside_mse_to_original": clean_in.tolist(),
             "outside_psnr": out_psnr.tolist(), "clean_outside_psnr": clean_out_psnr.tolist(),
             "filled": filled.tolist(), "fill_rate": float(filled.mean())}
        r["mean"] = {k: summary(v) for k, v in r.items() if isinstance(v, list)}
        results["regions"][region] = r
        m = r["mean"]
        table.append([region, m["area_fraction"], m["inside_mse_to_defect"],
                      m["inside_mse_to_original"], m["clean_inside_mse_to_original"],
                      m["outside_psnr"], m["clean_outside_psnr"],
                      f"{int(filled.sum())}/{len(filled)}"])
        for i in range(min(SHOWN, len(faces))):
            rows[i] += [defective[i], e.recon[i]]
        col_labels += [f"{region}: target", f"{region}: W+"]
    for i in range(min(SHOWN, len(faces))):
        rows[i].append(clean.recon[i])
    col_labels.append("clean: W+")
    fig = study.save_figure("defects.png", labelled_grid(rows, None, col_labels))
    fill_rate = summary([r["fill_rate"] for r in results["regions"].values()])
    outside_drop = summary([r["mean"]["clean_outside_psnr"] - r["mean"]["outside_psnr"]
                            for r in results["regions"].values()])
    results["fill_rate"], results["outside_psnr_drop"] = fill_rate, outside_drop
    n_lm = sources.count("landmarks")
    md = "\n\n".join([
        md_table(["region", "area", "inside MSE vs defect", "inside MSE vs original",
                  "clean embedding: inside MSE", "outside PSNR (dB)",
                  "clean embedding: outside PSNR (dB)", "hole filled"], table),
        f"{len(faces)} faces; regions from landmarks for {n_lm}, fixed boxes for "
        f"{len(faces) - n_lm}; painted grey (128). The hole counts as filled when the "
        "reconstruction inside it is closer to the original face than to the grey patch. "
        f"Filled in {fill_rate:.0%} of the cases; outside the region the PSNR changes by "
        f"{-outside_drop:+.2f} dB against the clean face's embedding.",
        figure(fig, "Faces with a region painted out, and their W+ reconstructions")])
    return Section("defects", "Defects", md, results, [fig])
