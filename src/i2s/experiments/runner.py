"""Run studies and write ``report.md`` (tables, figures, settings, model hash) and
``results.json`` into the output folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from i2s.embedding import EmbedConfig
from i2s.embedding.files import ProgressFactory
from i2s.errors import I2SError
from i2s.experiments import affine, classes, crossover, defects, expression, morphing, spaces
from i2s.experiments.context import StudyContext, StudyOptions
from i2s.experiments.image_set import load_image_set
from i2s.experiments.report import Section, md_table
from i2s.media.files import write_json_atomic, write_text_atomic
from i2s.provenance import run_record

STUDIES: dict[str, Callable[[StudyContext, object], Section]] = {
    "classes": classes.run,
    "affine": affine.run,
    "defects": defects.run,
    "spaces": spaces.run,
    "morph": morphing.run,
    "crossover": crossover.run,
    "expression": expression.run,
}
# Names that stand for several studies.
GROUPS: dict[str, list[str]] = {"edits": ["morph", "crossover", "expression"],
                                "all": list(STUDIES)}


def expand_names(names: list[str]) -> list[str]:
    """Study names with the groups (``edits``, ``all``) expanded, each once, in order."""
    out: list[str] = []
    for name in names:
        if name not in STUDIES and name not in GROUPS:
            raise I2SError(f"unknown experiment {name!r}; known: "
                           f"{', '.join([*STUDIES, *GROUPS])}")
        out += [n for n in GROUPS.get(name, [name]) if n not in out]
    return out


def run_studies(names: list[str], G, out: str | Path, config: EmbedConfig | None = None,
                options: StudyOptions | None = None, images: str | Path | None = None,
                vgg=None, progress: ProgressFactory | None = None,
                log: Callable[[str], None] | None = None) -> dict:
    """Run the named studies (keys of :data:`STUDIES` or :data:`GROUPS`) and write the report.

    Args:
        names: studies in the order they run.
        G: a loaded generator.
        out: output folder; ``images``: class folder (None: the packaged examples).
        config: embedding settings (default: the paper's); each study sets space and init.
        options: image selection (quick run, images per class).
        vgg: a loaded VGG-16 for the perceptual loss and distances.
        progress, log: optional progress-bar factory and line logger.
    Returns:
        The ``results.json`` content.
    """
    names = expand_names(names)
    config = config or EmbedConfig()
    options = options or StudyOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    image_set = load_image_set(images, G.resolution, quick=options.quick,
                               max_images=options.max_images)
    study = StudyContext(G, out, config, options, vgg=vgg, progress=progress)
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
        **run_record(G, config.to_dict(), study.device), "options": asdict(options),
        "images": image_set.source,
        "classes": {c: len(a) for c, a in image_set.images.items()},
        "expression_pair": image_set.expression is not None,
        "perceptual_distance": study.perceptual is not None,
        "identity_distance": study.identity,
        "seconds": time.perf_counter() - t_all,
        "embeddings_computed": study.computed, "embeddings_reused": study.reused,
    }
    results = {"meta": meta, "experiments": {
        s.name: {"title": s.title, "seconds": s.seconds, "figures": s.figures, **s.results}
        for s in sections}}
    write_json_atomic(out / "results.json", results, indent=1)
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
                      + (", **quick**" if meta["options"]["quick"] else "")],
        ["run", f"{meta['device']} ({meta['machine']}), torch {meta['versions']['torch']}, "
                f"i2s {meta['versions']['i2s']}, {meta['date']}, {meta['seconds'] / 60:.1f} min, "
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
