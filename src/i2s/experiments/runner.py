"""Run studies and write ``report.md`` (tables, figures, settings, model hash) and
``results.json`` into the output folder."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

import i2s
from i2s.experiments import affine, classes, defects, editing, spaces
from i2s.experiments.image_set import load_image_set
from i2s.experiments.report import Section, md_table
from i2s.experiments.study import ProgressFactory, Study, StudySettings
from i2s.fileio import write_text_atomic
from i2s.machine import describe_machine

STUDIES: dict[str, Callable] = {
    "classes": classes.run,
    "affine": affine.run,
    "defects": defects.run,
    "spaces": spaces.run,
    "edits": editing.run,
}


def run_studies(names: list[str], G, model: str, out: str | Path, settings: StudySettings,
                images: str | Path | None = None, vgg=None,
                progress: ProgressFactory | None = None,
                log: Callable[[str], None] | None = None) -> dict:
    """Run the named studies (keys of :data:`STUDIES`) and write the report.

    Args:
        names: studies in the order they run.
        G: a loaded generator; ``model``: how it was named (for the report).
        out: output folder; ``images``: class folder (None: the packaged examples).
        settings: embedding settings; ``vgg``: a loaded VGG-16 for the perceptual terms.
        progress, log: optional progress-bar factory and line logger.
    Returns:
        The ``results.json`` content.
    """
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise i2s.I2SError(f"unknown experiment(s) {unknown}; known: {', '.join(STUDIES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    image_set = load_image_set(images, G.resolution, quick=settings.quick,
                               max_images=settings.max_images)
    study = Study(G, out, settings, vgg=vgg, progress=progress)
    sections: list[Section] = []
    t_all = time.perf_counter()
    for name in names:
        if log:
            log(f"experiment {name}")
        t = time.perf_counter()
        section = STUDIES[name](study, image_set)
        section.seconds = time.perf_counter() - t
        sections.append(section)
    meta = {
        "model": str(model), "model_sha256": G.sha256, "resolution": G.resolution,
        "num_ws": G.num_ws, "w_dim": G.w_dim, "settings": asdict(settings),
        "images": image_set.source,
        "classes": {c: len(a) for c, a in image_set.images.items()},
        "expression_pair": image_set.expression is not None,
        "perceptual_distance": study.perceptual is not None,
        "identity_distance": study.identity,
        "device": str(study.device), "machine": describe_machine(study.device),
        "i2s": i2s.__version__, "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - t_all,
        "embeddings_computed": study.computed, "embeddings_reused": study.reused,
    }
    results = {"meta": meta, "experiments": {
        s.name: {"title": s.title, "seconds": s.seconds, "figures": s.figures, **s.results}
        for s in sections}}
    write_text_atomic(out / "results.json", json.dumps(results, indent=1, default=float) + "\n")
    write_text_atomic(out / "report.md", render_report(meta, sections))
    return results


def render_report(meta: dict, sections: list[Section]) -> str:
    s = meta["settings"]
    notes = []
    if not meta["perceptual_distance"]:
        notes.append("Perceptual distances are n/a: no VGG-16 weights were given "
                     "(`--vgg-weights`, `i2s models download vgg16`).")
    if not meta["identity_distance"]:
        notes.append("Identity distances are n/a: the dlib face models are not installed.")
    settings_rows = [
        ["model", f"`{meta['model']}` ({meta['resolution']} px, {meta['num_ws']} x "
                  f"{meta['w_dim']} W+)"],
        ["model SHA-256", f"`{meta['model_sha256']}`"],
        ["images", f"`{meta['images']}`: " + ", ".join(f"{c} {n}" for c, n in
                                                       meta["classes"].items())],
        ["embedding", f"{s['steps']} Adam steps, lr {s['lr']}, loss {s['loss']} "
                      f"(lambda_mse {s['lambda_mse']}, lambda_perceptual "
                      f"{s['lambda_perceptual']}), seed {s['seed']}"
                      + (", **quick**" if s["quick"] else "")],
        ["run", f"{meta['device']} ({meta['machine']}), torch {meta['torch']}, i2s "
                f"{meta['i2s']}, {meta['date']}, {meta['seconds'] / 60:.1f} min, "
                f"{meta['embeddings_computed']} embeddings computed, "
                f"{meta['embeddings_reused']} reused"],
    ]
    parts = ["# i2s experiment report", md_table(["", ""], settings_rows), *notes,
             "MSE and PSNR are on the [0, 1] scale of the 8-bit images; SSIM is the Gaussian "
             "11-tap SSIM; the perceptual distance is the paper's VGG-16 term; the identity "
             "distance is dlib's (below 0.6: the same person)."]
    for sec in sections:
        parts += [f"## {sec.title} (`{sec.name}`, {sec.seconds / 60:.1f} min)", sec.markdown]
    return "\n\n".join(parts) + "\n"
