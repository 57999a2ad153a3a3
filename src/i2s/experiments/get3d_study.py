"""The seed's question as a study: can a 3D object be inverted into GET3D's two latent branches
by plain optimisation, which strategy keeps them consistent, from how many views?

Objects (8 orbit views at ``resolution`` px; views ``HELD_OUT`` are never used in a loss, only
measured):

* **self**: shapes the model generates itself (seeds from 200; the answer is in its latent
  space); the ground-truth mesh is the model's own mesh;
* **teacher**: held-out objects of the demo-3d teacher (the objects of ``examples/3d``, seeds
  never used in training; the answer may lie outside the model); the ground truth is the
  teacher's exact surface, and the model's own student-vs-teacher Chamfer for the same seed
  (what the distillation reached for that z) is reported beside each inversion.

Sections: strategies x spaces (known cameras, 6 views), number of views, known vs estimated
cameras, geometry drift along the run (Chamfer every few steps), generator tuning on the
teacher objects, and texture swaps / morphs between inverted objects.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from i2s.demo.furniture import FurnitureObject
from i2s.demo.quality3d import compare_seed
from i2s.embedding3d import Embed3DConfig, Target3D, embed_3d
from i2s.experiments.figures import labelled_grid
from i2s.experiments.report import fmt, md_table
from i2s.get3d.cameras import Cameras
from i2s.get3d.metrics import mesh_chamfer
from i2s.get3d.seeds import seed_latents_3d, seed_z_3d
from i2s.media.files import write_json_atomic, write_text_atomic
from i2s.media.images import save_image, to_uint8
from i2s.provenance import run_record

VIEWS = 8
HELD_OUT = (1, 5)                    # azimuths 45 and 225 degrees: measured only
SPACES = (("w+", "w+"), ("w", "w"), ("w+", "w"))
VIEW_COUNTS = (1, 2, 4, 6)


@dataclass(frozen=True)
class Get3DStudyOptions:
    """What the study runs. ``quick``: one object of each kind, few steps, low resolution
    (minutes; for tests)."""

    quick: bool = False
    steps: int = 200
    resolution: int = 128
    self_seeds: tuple[int, ...] = (200, 201)
    teacher_seeds: tuple[int, ...] = (0, 18)       # objects of examples/3d
    tune_steps: int = 60
    teacher_mesh_resolution: int = 128             # cells per side of the ground truth

    @classmethod
    def quick_run(cls) -> Get3DStudyOptions:
        return cls(quick=True, steps=24, resolution=64, self_seeds=(200,), teacher_seeds=(0,),
                   tune_steps=8, teacher_mesh_resolution=96)


@dataclass
class StudyObject:
    name: str
    kind: str                        # "self" or "teacher"
    target: Target3D
    floor: float | None = None       # the model's own Chamfer to this teacher object


def orbit(views: int = VIEWS) -> Cameras:
    return Cameras.orbit(k=views, elevation_deg=20, radius=1.5)


def self_object(G, seed: int, resolution: int) -> StudyObject:
    """A shape of G itself, rendered on black, with G's mesh as the ground truth."""
    ws_geo, ws_tex = seed_latents_3d(G, seed)
    with torch.no_grad():
        img = G.render(ws_geo, ws_tex, orbit(), resolution)[0]
        (mesh,) = G.mesh(ws_geo, ws_tex)
    img = torch.cat([img[:, :3].clamp(-1, 1) * img[:, 3:] - (1 - img[:, 3:]), img[:, 3:]], 1)
    t = Target3D(img, cameras=orbit(), vertices=mesh.vertices, faces=mesh.faces,
                 source=[f"demo-3d seed {seed}"])
    return StudyObject(f"self-{seed}", "self", t)


def teacher_object(G, seed: int, resolution: int, mesh_resolution: int = 128) -> StudyObject:
    """A held-out teacher object, its exact renders and surface, and G's own Chamfer to it."""
    obj = FurnitureObject(*seed_z_3d(seed, None, G.z_dim))
    mesh = obj.mesh(mesh_resolution)
    t = Target3D(obj.render(orbit(), resolution, mesh), cameras=orbit(),
                 vertices=mesh.vertices, faces=mesh.faces, source=[f"teacher seed {seed}"])
    floor = compare_seed(G, seed, orbit(), resolution, samples=10000,
                         teacher_resolution=mesh_resolution).chamfer
    return StudyObject(f"teacher-{seed}", "teacher", t, floor)


def fitted_views(n: int) -> list[int]:
    """``n`` of the non-held-out views, spread around the object."""
    free = [i for i in range(VIEWS) if i not in HELD_OUT]
    picks = np.linspace(0, len(free), n, endpoint=False).round().astype(int)
    return [free[i] for i in picks]


class Get3DStudy:
    """Runs the sections; every inversion is one :func:`embed_3d` call, recorded in
    ``self.runs`` with its settings and measures."""

    def __init__(self, G, out: Path, options: Get3DStudyOptions,
                 log: Callable[[str], None] | None = None) -> None:
        self.G, self.out, self.opt = G, Path(out), options
        self.log = log or (lambda line: None)
        self.base = Embed3DConfig(steps=options.steps, resolution=options.resolution)
        self.runs: list[dict] = []

    def invert(self, obj: StudyObject, views: list[int] | None = None,
               estimate: bool = False, chamfer_every: int = 0, **changes) -> tuple[dict, object]:
        """One inversion of ``obj`` fitted on ``views`` (default: all but the held-out ones);
        returns its row and the result."""
        cfg = self.base.replace(**changes)
        views = views if views is not None else fitted_views(VIEWS - len(HELD_OUT))
        held = [i for i in range(VIEWS) if i not in views]
        target = obj.target
        drift: list[tuple[int, float]] = []

        def callback(info) -> None:
            if chamfer_every and (info.step % chamfer_every == 0 or info.step == 1):
                with torch.no_grad():
                    (m,) = self.G.mesh(info.ws_geo, info.ws_tex)
                drift.append((info.step, _chamfer(m, target)))

        t = time.perf_counter()
        res = embed_3d(self.G, target, cfg, held_out=held, estimate_cameras=estimate,
                       callback=callback if chamfer_every else None)
        seconds = time.perf_counter() - t
        measured = [i for i in HELD_OUT]
        row = {"object": obj.name, "kind": obj.kind, "strategy": cfg.strategy,
               "space_geo": cfg.space_geo, "space_tex": cfg.space_tex, "views": len(views),
               "cameras": "estimated" if estimate else "known", "tune_steps": cfg.tune_steps,
               "heldout_iou": res.mean_measures(measured)["iou"],
               "heldout_psnr": res.mean_measures(measured)["psnr"],
               "fitted_iou": res.mean_measures(views)["iou"],
               "fitted_psnr": res.mean_measures(views)["psnr"],
               "chamfer": res.chamfer, "floor": obj.floor, "seconds": seconds,
               "drift": drift}
        self.runs.append(row)
        self.log(f"{obj.name:12s} {cfg.strategy:12s} {cfg.space_geo}/{cfg.space_tex} "
                 f"{len(views)} views {row['cameras']:9s} held-out IoU "
                 f"{fmt(row['heldout_iou'], 3)} PSNR {fmt(row['heldout_psnr'])} dB, Chamfer "
                 f"{fmt(row['chamfer'], 4)}, {seconds:.0f} s")
        return row, res


def _chamfer(mesh, target: Target3D) -> float:
    if len(mesh.faces) == 0:
        return float("inf")
    return mesh_chamfer(mesh.vertices, mesh.faces, target.vertices, target.faces, n=5000)


def _mean(rows: list[dict], key: str) -> float | None:
    v = [r[key] for r in rows if r[key] is not None and np.isfinite(r[key])]
    return statistics.mean(v) if v else None


def _group_table(rows: list[dict], keys: list[str], headers: list[str]) -> tuple[str, list]:
    """Mean measures per setting (over objects), split by object kind."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    table, data = [], []
    for key, rs in groups.items():
        for kind in ("self", "teacher"):
            sub = [r for r in rs if r["kind"] == kind]
            if not sub:
                continue
            m = {k: _mean(sub, k) for k in ("heldout_iou", "heldout_psnr", "chamfer", "floor",
                                             "seconds")}
            table.append([*[str(k) for k in key], kind, fmt(m["heldout_iou"], 3),
                          m["heldout_psnr"], fmt(m["chamfer"], 4), fmt(m["floor"], 4),
                          m["seconds"]])
            data.append({**dict(zip(keys, key, strict=True)), "kind": kind, **m})
    md = md_table([*headers, "objects", "held-out IoU", "held-out PSNR (dB)", "Chamfer",
                   "model's own", "seconds"], table)
    return md, data


def _best(data: list[dict]) -> dict:
    """The setting with the best held-out IoU + PSNR / 100 on the self objects."""
    own = [d for d in data if d["kind"] == "self"] or data
    return max(own, key=lambda d: (d["heldout_iou"] or 0) + (d["heldout_psnr"] or 0) / 100)


def _views_figure(path: Path, target: Target3D, renders: dict[str, torch.Tensor]) -> None:
    rows = [list(to_uint8(target.images[:, :3].clamp(-1, 1)))]
    for r in renders.values():
        img = r[:, :3].clamp(-1, 1) * r[:, 3:] - (1 - r[:, 3:])
        rows.append(list(to_uint8(img)))
    save_image(path, labelled_grid(rows, row_labels=["target", *renders],
                                   col_labels=[("held out " if i in HELD_OUT else "") +
                                               f"{45 * i} deg" for i in range(VIEWS)]))


def run_get3d_study(G, out: str | Path, options: Get3DStudyOptions | None = None,
                    log: Callable[[str], None] | None = None) -> dict:
    """Run the study and write ``report.md``, ``results.json`` and the figures into ``out``."""
    opt = options or Get3DStudyOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = Get3DStudy(G, out, opt, log)
    t_all = time.perf_counter()
    objects = [self_object(G, s, opt.resolution) for s in opt.self_seeds] + \
              [teacher_object(G, s, opt.resolution, opt.teacher_mesh_resolution)
               for s in opt.teacher_seeds]
    strategies = ("joint", "staged", "alternating", "staged-joint")
    spaces = SPACES[:1] if opt.quick else SPACES
    sections, results, figures = [], {}, []

    # 1. strategies x spaces
    results_rows = []
    renders: dict[str, dict[str, torch.Tensor]] = {o.name: {} for o in objects}
    for o in objects:
        for s in strategies:
            for sg, st in spaces:
                row, res = study.invert(o, strategy=s, space_geo=sg, space_tex=st)
                results_rows.append(row)
                if (sg, st) == spaces[0]:
                    renders[o.name][s] = res.renders.cpu()
    md, data = _group_table(results_rows, ["strategy", "space_geo", "space_tex"],
                            ["strategy", "ws_geo", "ws_tex"])
    best = _best(data)
    results["strategies"] = data
    for o in objects:
        name = f"get3d_views_{o.name}.png"
        _views_figure(out / name, o.target, renders[o.name])
        figures.append(name)
    sections.append(("Strategies and spaces (known cameras, 6 views)", md + "\n\n" + "\n\n".join(
        f"![{o.name}](get3d_views_{o.name}.png)" for o in objects)))
    best_cfg = {"strategy": best["strategy"], "space_geo": best["space_geo"],
                "space_tex": best["space_tex"]}

    # 2. number of views
    rows = []
    for o in objects:
        for n in (VIEW_COUNTS[::2] if opt.quick else VIEW_COUNTS):
            row, _ = study.invert(o, views=fitted_views(n), **best_cfg)
            rows.append(row)
    md, data = _group_table(rows, ["views"], ["fitted views"])
    results["views"] = data
    sections.append((f"Number of views ({best_cfg['strategy']}, {best_cfg['space_geo']}/"
                     f"{best_cfg['space_tex']}, known cameras)", md))

    # 3. estimated cameras
    rows = []
    for o in objects:
        row, res = study.invert(o, estimate=True, **best_cfg)
        cams = res.cameras
        fitted = [i for i in range(VIEWS) if i not in HELD_OUT]
        err = [abs((float(cams.azimuth_deg[i]) - 45 * i + 180) % 360 - 180) for i in fitted]
        row["azimuth_error_deg"] = statistics.mean(err)
        rows.append(row)
    known = [r for r in study.runs if r["views"] == VIEWS - len(HELD_OUT) and
             r["cameras"] == "known" and r["strategy"] == best_cfg["strategy"] and
             r["space_geo"] == best_cfg["space_geo"] and r["space_tex"] == best_cfg["space_tex"]
             and r["tune_steps"] == 0]
    md, data = _group_table(known[:len(objects)] + rows, ["cameras"], ["cameras"])
    az = statistics.mean(r["azimuth_error_deg"] for r in rows)
    results["cameras"] = {"table": data, "mean_azimuth_error_deg": az}
    sections.append(("Known vs estimated cameras", md + f"\n\nMean azimuth error of the "
                     f"estimated cameras: {az:.1f} degrees."))

    # 4. geometry drift along the run
    rows = []
    every = max(1, opt.steps // 10)
    for o in objects:
        for s in ("joint", "staged-joint"):
            row, _ = study.invert(o, chamfer_every=every, **{**best_cfg, "strategy": s})
            rows.append(row)
    drift_rows = [[r["object"], r["strategy"], " ".join(f"{c:.4f}" for _, c in r["drift"])]
                  for r in rows]
    results["drift"] = [{"object": r["object"], "strategy": r["strategy"],
                         "chamfer_by_step": r["drift"]} for r in rows]
    sections.append(("Does the texture loss drag the geometry? (Chamfer to the ground truth "
                     f"every {every} steps)", md_table(["object", "strategy", "Chamfer along the "
                                                        "run"], drift_rows)))

    # 5. generator tuning on the teacher objects
    rows = []
    for o in objects:
        if o.kind == "teacher":
            for tune in (0, opt.tune_steps):
                row, _ = study.invert(o, tune_steps=tune, **best_cfg)
                rows.append(row)
    md, data = _group_table(rows, ["tune_steps"], ["tuning steps"])
    results["tuning"] = data
    sections.append(("Generator tuning (PTI-style) on the teacher objects", md))

    meta = {**run_record(G, study.base.to_dict()), "options": asdict(opt),
            "held_out_views": list(HELD_OUT), "views": VIEWS,
            "seconds": time.perf_counter() - t_all, "inversions": len(study.runs)}
    doc = {"meta": meta, "results": results, "runs": study.runs, "figures": figures}
    write_json_atomic(out / "results.json", json.loads(json.dumps(doc, default=float)),
                      indent=1)
    parts = ["# i2s experiment get3d", _intro(meta, best_cfg)]
    parts += [f"## {title}\n\n{body}" for title, body in sections]
    write_text_atomic(out / "report.md", "\n\n".join(parts) + "\n")
    return doc


def _intro(meta: dict, best: dict) -> str:
    o = meta["options"]
    return (f"Model `{meta['model']}` (SHA-256 `{meta['model_sha256']}`); {o['steps']} steps at "
            f"{o['resolution']} px per inversion; {VIEWS} orbit views (elevation 20 degrees), "
            f"views {list(HELD_OUT)} held out (never in a loss); self seeds "
            f"{list(o['self_seeds'])}, teacher seeds {list(o['teacher_seeds'])}"
            + (" (**quick**)" if o["quick"] else "") + f"; {meta['inversions']} inversions in "
            f"{meta['seconds'] / 60:.1f} min on {meta['machine']}. Chamfer: symmetric, in "
            "bounding-box diagonals of the ground truth; model's own: the Chamfer of the "
            "model's sample for the teacher object's own z (what the distillation reached; "
            "an inversion can get closer, since it fits this one object). Best setting on "
            f"the self objects: {best['strategy']}, ws_geo {best['space_geo']}, ws_tex "
            f"{best['space_tex']}.")
