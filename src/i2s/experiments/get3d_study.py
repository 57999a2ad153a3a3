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

Sections: strategies (W+ for both branches), then the spaces (W/W+ per branch) for the best
strategy (known cameras, 6 views); number of views; known vs estimated cameras; geometry
drift along the run (Chamfer every few steps); generator tuning on the teacher objects; and
texture swaps / morphs between inverted objects.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
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
from i2s.embedding3d.edits import morph_3d, swap_texture
from i2s.experiments.report import fmt, md_table
from i2s.get3d.cameras import Cameras
from i2s.get3d.metrics import mesh_chamfer
from i2s.get3d.seeds import seed_latents_3d, seed_z_3d
from i2s.media.files import write_bytes_atomic, write_json_atomic, write_text_atomic
from i2s.media.grid import labelled_grid
from i2s.media.images import save_image, to_uint8
from i2s.provenance import run_record

VIEWS = 8
HELD_OUT = (1, 5)                    # azimuths 45 and 225 degrees: measured only
SPACES = (("w+", "w+"), ("w", "w"), ("w+", "w"))
VIEW_COUNTS = (1, 2, 4, 6)
DRIFT_STRATEGIES = ("joint", "staged-joint")   # geometry measured along the run
# Settings added after the full study ran: left out of the cache key while at these values,
# so that the inversions cached then stay valid.
_KEY_DEFAULTS = {"lambda_perceptual": 0.0}


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


@dataclass
class StudyRun:
    """What the report needs of one inversion: its row, the renders of all views
    [VIEWS, 4, R, R] (RGB in [-1, 1] + alpha), the cameras' azimuths (degrees) it ended with
    and the latents it found."""

    row: dict
    renders: torch.Tensor
    azimuth_deg: np.ndarray
    ws_geo: torch.Tensor             # [1, num_ws_geo, w_dim] found
    ws_tex: torch.Tensor             # [1, num_ws_tex, w_dim]


class Get3DStudy:
    """Runs the sections; every distinct inversion is one :func:`embed_3d` call, recorded in
    ``self.runs`` with its settings and measures.

    Inversions are cached in ``OUT/cache/<key>.npz``, the key being a SHA-256 of the model's
    digest, the object's target pixels and every setting of the inversion, so an interrupted
    study continues where it stopped and identical inversions of two sections run once.
    """

    def __init__(self, G, out: Path, options: Get3DStudyOptions,
                 log: Callable[[str], None] | None = None) -> None:
        self.G, self.out, self.opt = G, Path(out), options
        self.log = log or (lambda line: None)
        self.base = Embed3DConfig(steps=options.steps, resolution=options.resolution)
        self._runs: dict[str, StudyRun] = {}      # by cache key, in the order first asked
        self.computed = 0          # inversions optimised in this run
        self.reused = 0            # inversions found in the cache of an earlier run
        (self.out / "cache").mkdir(parents=True, exist_ok=True)

    def _key(self, obj: StudyObject, settings: dict) -> str:
        h = hashlib.sha256()
        # the model file's SHA-256 (as before models were identified by their weights, so
        # that caches made then stay valid)
        ident = getattr(self.G, "file_sha256", None) or getattr(self.G, "sha256", None)
        h.update((ident or "unsaved-model").encode())
        settings = {k: v for k, v in settings.items()
                    if not (k in _KEY_DEFAULTS and v == _KEY_DEFAULTS[k])}
        h.update(json.dumps({"object": obj.name, **settings}, sort_keys=True).encode())
        h.update(obj.target.images.detach().cpu().float().numpy().tobytes())
        return h.hexdigest()[:24]

    def _cached(self, path: Path) -> StudyRun | None:
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                run = StudyRun(json.loads(str(f["row"])), torch.from_numpy(f["renders"]).float(),
                               f["azimuth_deg"].astype(np.float64),
                               torch.from_numpy(f["ws_geo"]), torch.from_numpy(f["ws_tex"]))
        except (OSError, ValueError, KeyError):
            path.unlink()  # a damaged cache entry is recomputed
            return None
        return run

    def invert(self, obj: StudyObject, views: list[int] | None = None,
               estimate: bool = False, chamfer_every: int | None = None,
               **changes) -> StudyRun:
        """One inversion of ``obj`` fitted on ``views`` (default: all but the held-out ones),
        from the cache when it ran before. ``chamfer_every``: measure the Chamfer distance
        every that many steps (default: a tenth of the run for the strategies in
        ``DRIFT_STRATEGIES``, so that the drift section reuses the other sections' runs)."""
        cfg = self.base.replace(**changes)
        if chamfer_every is None:
            chamfer_every = (max(1, cfg.steps // 10) if cfg.strategy in DRIFT_STRATEGIES
                             else 0)
        views = views if views is not None else fitted_views(VIEWS - len(HELD_OUT))
        key = self._key(obj, {**cfg.to_dict(), "views": views, "estimate": estimate,
                              "chamfer_every": chamfer_every})
        if key in self._runs:
            return self._runs[key]
        path = self.out / "cache" / f"{key}.npz"
        run = self._cached(path)
        if run is not None:
            self.reused += 1
            self._runs[key] = run
            self._log(run.row, " (cached)")
            return run
        run = self._invert(obj, cfg, views, estimate, chamfer_every)
        buf = io.BytesIO()
        np.savez(buf, row=np.array(json.dumps(run.row, default=float)),
                 renders=run.renders.numpy().astype(np.float16), azimuth_deg=run.azimuth_deg,
                 ws_geo=run.ws_geo.numpy(), ws_tex=run.ws_tex.numpy())
        write_bytes_atomic(path, buf.getvalue())
        self.computed += 1
        self._runs[key] = run
        self._log(run.row, "")
        return run

    @property
    def runs(self) -> list[dict]:
        """The rows of every distinct inversion so far."""
        return [r.row for r in self._runs.values()]

    def _log(self, row: dict, note: str) -> None:
        self.log(f"{row['object']:12s} {row['strategy']:12s} {row['space_geo']}/"
                 f"{row['space_tex']} {row['views']} views {row['cameras']:9s} tune "
                 f"{row['tune_steps']}: held-out IoU {fmt(row['heldout_iou'], 3)} PSNR "
                 f"{fmt(row['heldout_psnr'])} dB, Chamfer {fmt(row['chamfer'], 4)}, "
                 f"{row['seconds']:.0f} s{note}")

    def _invert(self, obj: StudyObject, cfg: Embed3DConfig, views: list[int], estimate: bool,
                chamfer_every: int) -> StudyRun:
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
        azimuth = res.cameras.azimuth_deg.detach().cpu().numpy().astype(np.float64)
        if estimate:
            row["azimuth_error_deg"] = statistics.mean(
                abs((float(azimuth[i]) - 360 / VIEWS * i + 180) % 360 - 180) for i in views)
        return StudyRun(row, res.renders.detach().cpu(), azimuth,
                        res.ws_geo.detach().cpu().float(), res.ws_tex.detach().cpu().float())


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


@torch.no_grad()
def _edits_figure(G, path: Path, name_a: str, name_b: str, a: StudyRun, b: StudyRun,
                  resolution: int) -> None:
    """Rows of 4 views: A, B, swaps and per-branch morphs (see the section's text)."""
    device = G.w_avg_geo.device
    la = (a.ws_geo.to(device), a.ws_tex.to(device))
    lb = (b.ws_geo.to(device), b.ws_tex.to(device))
    rows = {name_a: la, name_b: lb,
            "A geometry, B texture": swap_texture(la, lb),
            "B geometry, A texture": swap_texture(lb, la),
            "geometry 50%": morph_3d(la, lb, 0.5, 0.0),
            "texture 50%": morph_3d(la, lb, 0.0, 0.5)}
    cams = Cameras.orbit(k=4, elevation_deg=20, radius=1.5)
    images = []
    for ws_geo, ws_tex in rows.values():
        r = G.render(ws_geo, ws_tex, cams, resolution)[0]
        img = r[:, :3].clamp(-1, 1) * r[:, 3:] - (1 - r[:, 3:])
        images.append(list(to_uint8(img)))
    save_image(path, labelled_grid(images, row_labels=list(rows),
                                   col_labels=[f"{90 * i} deg" for i in range(4)]))


def run_get3d_study(G, out: str | Path, options: Get3DStudyOptions | None = None,
                    log: Callable[[str], None] | None = None) -> dict:
    """Run the study and write ``report.md``, ``results.json`` and the figures into ``out``."""
    opt = options or Get3DStudyOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = Get3DStudy(G, out, opt, log)
    load_start = os.getloadavg()
    t_all = time.perf_counter()
    objects = [self_object(G, s, opt.resolution) for s in opt.self_seeds] + \
              [teacher_object(G, s, opt.resolution, opt.teacher_mesh_resolution)
               for s in opt.teacher_seeds]
    strategies = ("joint", "staged", "alternating", "staged-joint")
    spaces = SPACES[:1] if opt.quick else SPACES
    sections, results, figures = [], {}, []

    # 1. strategies (in W+ for both branches), then the spaces for the best strategy
    results_rows = []
    renders: dict[str, dict[str, torch.Tensor]] = {o.name: {} for o in objects}
    sg, st = SPACES[0]
    for o in objects:
        for s in strategies:
            run = study.invert(o, strategy=s, space_geo=sg, space_tex=st)
            results_rows.append(run.row)
            renders[o.name][s] = run.renders
    best_strategy = _best(_group_table(results_rows, ["strategy"], ["strategy"])[1])["strategy"]
    for o in objects:
        for sg, st in spaces[1:]:
            results_rows.append(study.invert(o, strategy=best_strategy, space_geo=sg,
                                             space_tex=st).row)
    md, data = _group_table(results_rows, ["strategy", "space_geo", "space_tex"],
                            ["strategy", "ws_geo", "ws_tex"])
    best = _best(data)
    results["strategies"] = data
    for o in objects:
        name = f"get3d_views_{o.name}.png"
        _views_figure(out / name, o.target, renders[o.name])
        figures.append(name)
    sections.append((f"Strategies (W+/W+) and spaces (for {best_strategy}); known cameras, "
                     "6 views", md + "\n\n" + "\n\n".join(
                         f"![{o.name}](get3d_views_{o.name}.png)" for o in objects)))
    best_cfg = {"strategy": best["strategy"], "space_geo": best["space_geo"],
                "space_tex": best["space_tex"]}

    # 2. number of views
    rows = []
    for o in objects:
        for n in (VIEW_COUNTS[::2] if opt.quick else VIEW_COUNTS):
            rows.append(study.invert(o, views=fitted_views(n), **best_cfg).row)
    md, data = _group_table(rows, ["views"], ["fitted views"])
    results["views"] = data
    sections.append((f"Number of views ({best_cfg['strategy']}, {best_cfg['space_geo']}/"
                     f"{best_cfg['space_tex']}, known cameras)", md))

    # 3. estimated cameras
    rows = []
    known = [study.invert(o, **best_cfg).row for o in objects]        # cached
    for o in objects:
        rows.append(study.invert(o, estimate=True, **best_cfg).row)
    md, data = _group_table(known + rows, ["cameras"], ["cameras"])
    az = statistics.mean(r["azimuth_error_deg"] for r in rows)
    results["cameras"] = {"table": data, "mean_azimuth_error_deg": az}
    sections.append(("Known vs estimated cameras", md + f"\n\nMean azimuth error of the "
                     f"estimated cameras: {az:.1f} degrees."))

    # 4. geometry drift along the run
    rows = []
    every = max(1, opt.steps // 10)
    for o in objects:
        for s in DRIFT_STRATEGIES:
            rows.append(study.invert(o, **{**best_cfg, "strategy": s}).row)
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
                rows.append(study.invert(o, tune_steps=tune, **best_cfg).row)
    md, data = _group_table(rows, ["tune_steps"], ["tuning steps"])
    results["tuning"] = data
    sections.append(("Generator tuning (PTI-style) on the teacher objects", md))

    # 6. edits between inverted objects: texture swaps and per-branch morphs
    edit_figures = []
    for kind in ("self", "teacher"):
        pair = [o for o in objects if o.kind == kind][:2]
        if len(pair) < 2:
            continue
        a, b = (study.invert(o, **best_cfg) for o in pair)
        name = f"get3d_edits_{kind}.png"
        _edits_figure(G, out / name, pair[0].name, pair[1].name, a, b, opt.resolution)
        figures.append(name)
        edit_figures.append(f"![{kind} edits]({name})")
    if edit_figures:
        sections.append(("Edits between inverted objects (texture swap, per-branch morphs)",
                         "Rows: object A and B as inverted, A's geometry with B's texture "
                         "latents and the reverse, and 50% morphs of the geometry latents "
                         "only (A's texture) and of the texture latents only (A's geometry). "
                         "GET3D's backbone is driven by ws_geo, so a swapped texture is B's "
                         "texture as A's backbone renders it.\n\n" + "\n\n".join(
                             edit_figures)))

    meta = {**run_record(G, study.base.to_dict()), "options": asdict(opt),
            "held_out_views": list(HELD_OUT), "views": VIEWS,
            "seconds": time.perf_counter() - t_all, "inversions": len(study.runs),
            "inversions_computed": study.computed, "inversions_reused": study.reused,
            "inversion_seconds": sum(r["seconds"] for r in study.runs),
            "load_average_start": list(load_start), "load_average_end": list(os.getloadavg())}
    doc = {"meta": meta, "results": results, "runs": study.runs, "figures": figures}
    write_json_atomic(out / "results.json", json.loads(json.dumps(doc, default=float)),
                      indent=1)
    parts = ["# i2s experiment get3d", _intro(meta, best_cfg)]
    parts += [f"## {title}\n\n{body}" for title, body in sections]
    write_text_atomic(out / "report.md", "\n\n".join(parts) + "\n")
    return doc


def _intro(meta: dict, best: dict) -> str:
    o = meta["options"]
    file_sha = meta.get("model_file_sha256")
    ident = (f"file SHA-256 `{file_sha}`, weights+config digest `{meta['model_sha256']}`"
             if file_sha else f"weights+config digest `{meta['model_sha256']}`")
    load = ""
    if meta.get("load_average_start") is not None:
        load = (f" Load average (1 min) at the start and end: "
                f"{meta['load_average_start'][0]:.2f} and {meta['load_average_end'][0]:.2f}; "
                "the seconds are wall time on this machine as it was, other work included.")
    return (f"Model `{meta['model']}` ({ident}); {o['steps']} steps at "
            f"{o['resolution']} px per inversion; {VIEWS} orbit views (elevation 20 degrees), "
            f"views {list(HELD_OUT)} held out (never in a loss); self seeds "
            f"{list(o['self_seeds'])}, teacher seeds {list(o['teacher_seeds'])}"
            + (" (**quick**)" if o["quick"] else "") + f"; {meta['inversions']} inversions, "
            f"{meta['inversion_seconds'] / 60:.1f} min of optimisation on {meta['machine']}"
            + (f" ({meta['inversions_reused']} of them from the cache of an interrupted run)"
               if meta["inversions_reused"] else "") + "." + load + " Design: each section "
            "varies one factor around one setting (the best strategy and spaces of the first "
            f"section, {VIEWS - len(HELD_OUT)} fitted views, known cameras), not the cross "
            "product of strategies, spaces, view counts and cameras; at most "
            f"{VIEWS - len(HELD_OUT)} views can be fitted, since {len(HELD_OUT)} of the {VIEWS} "
            "are held out. Chamfer: symmetric, in "
            "bounding-box diagonals of the ground truth; model's own: the Chamfer of the "
            "model's sample for the teacher object's own z (what the distillation reached; "
            "an inversion can get closer, since it fits this one object). Best setting on "
            f"the self objects: {best['strategy']}, ws_geo {best['space_geo']}, ws_tex "
            f"{best['space_tex']}.")
