"""3D inversion: find (ws_geo, ws_tex) such that GET3D reproduces an object's views.

Adam on the latents of each branch (W: one vector broadcast to every entry, W+: one per
entry), following the phases of the strategy (:mod:`.schedule`); the generator is frozen.
Views without cameras get them from a coarse search with the starting shape, refined with the
geometry (:mod:`i2s.embedding3d.cameras_estimate`). Optionally the tri-plane backbone is then
tuned around the found latents (PTI-style pivotal tuning, on a copy of G).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from i2s.embedding.losses import PerceptualLoss
from i2s.embedding3d import losses as L
from i2s.embedding3d.cameras_estimate import CameraParameters, coarse_search
from i2s.embedding3d.config import INIT_GIVEN_3D, INIT_KEYWORDS_3D, Embed3DConfig
from i2s.embedding3d.rendering import Rendered, render_views, shape_mesh
from i2s.embedding3d.result import Embed3DResult, StepInfo3D
from i2s.embedding3d.strategies.schedule import Phase, lr_factors, phase_at, schedule
from i2s.embedding3d.targets import Target3D
from i2s.errors import I2SError
from i2s.get3d.cameras import DEFAULT_FOVY_DEG, Cameras
from i2s.get3d.export import load_latent_3d
from i2s.get3d.metrics import bounding_box_diagonal, mesh_chamfer
from i2s.get3d.seeds import seed_z_3d
from i2s.models.common import frozen
from i2s.models.vgg16 import VGG16Features
from i2s.provenance import run_record

Callback = Callable[[StepInfo3D], None]
SEARCH_SEED_BASE = 7_000_000_000  # seeds of the shapes the camera search tries


def check_generator(G) -> None:
    if getattr(G, "architecture", "") != "get3d":
        raise I2SError("3D inversion needs a GET3D model; this is an image generator")


# ---------------------------------------------------------------------- latents
def initial_latents(G, cfg: Embed3DConfig, start=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Starting (ws_geo, ws_tex) [1, num_ws, w_dim]: ``start`` (a pair of tensors [num_ws,
    w_dim] or [1, num_ws, w_dim]) if given, else ``cfg.init``: w_avg of each branch
    ("mean"), the mapping of the seed's z (``random``; :func:`i2s.get3d.seeds.seed_z_3d`), or
    a latent.npz of this model."""
    dev = G.w_avg.device
    if start is None and cfg.init not in INIT_KEYWORDS_3D:
        lat = load_latent_3d(cfg.init, G)
        start = (torch.from_numpy(lat.ws_geo), torch.from_numpy(lat.ws_tex))
    if start is not None:
        geo, tex = (torch.as_tensor(t).detach().float().to(dev) for t in start)
        geo, tex = (t[None] if t.ndim == 2 else t for t in (geo, tex))
        want = ((1, G.num_ws_geo, G.w_dim), (1, G.num_ws_tex, G.w_dim))
        if (tuple(geo.shape), tuple(tex.shape)) != want:
            raise I2SError(f"the starting latents must be {want[0][1:]} and {want[1][1:]}, got "
                           f"{tuple(geo.shape)} and {tuple(tex.shape)}")
        if not (bool(torch.isfinite(geo).all()) and bool(torch.isfinite(tex).all())):
            raise I2SError("the starting latents have NaN or infinite values")
        return geo, tex
    with torch.no_grad():
        if cfg.init == "mean":
            return (G.w_avg_geo.float().expand(1, G.num_ws_geo, -1).clone(),
                    G.w_avg.float().expand(1, G.num_ws_tex, -1).clone())
        z_geo, z_tex = seed_z_3d(cfg.seed, None, G.z_dim)
        return G.mapping_geo(z_geo.to(dev)), G.mapping(z_tex.to(dev))


def to_variable(ws: torch.Tensor, space: str) -> torch.Tensor:
    """The optimised variable of a branch: [1, 1, w_dim] (W, the mean entry) or a copy."""
    v = ws.mean(1, keepdim=True) if space == "w" else ws
    return v.detach().clone().requires_grad_(True)


def to_ws(var: torch.Tensor, num_ws: int) -> torch.Tensor:
    return var.expand(-1, num_ws, -1) if var.shape[1] == 1 else var


# ---------------------------------------------------------------------- the loss
class Objective:
    """The loss terms for the fitted views at one resolution (see :mod:`..losses`)."""

    def __init__(self, G, target: Target3D, cfg: Embed3DConfig, seed: int,
                 perceptual: PerceptualLoss | None = None) -> None:
        self.G, self.target, self.cfg = G, target, cfg
        self.perceptual = perceptual if cfg.lambda_perceptual > 0 else None
        self.use_depth = target.depth is not None and cfg.lambda_depth > 0
        self.use_normal = target.normals is not None and cfg.lambda_normal > 0
        self.use_chamfer = target.points is not None and cfg.lambda_chamfer > 0
        self.scale = bounding_box_diagonal(target.points) if self.use_chamfer else 1.0
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, out: Rendered, ws_geo, ws_tex, phase: Phase
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, t = self.cfg, self.target
        pred_mask = out.images[:, 3]
        zero = out.images.new_zeros(())
        terms = dict.fromkeys(L.TERMS[1:], zero)
        both = L.both_covered(pred_mask, t.mask)
        terms["silhouette"] = L.silhouette_loss(pred_mask, t.mask, cfg.silhouette_loss)
        if self.use_depth:
            terms["depth"] = L.depth_loss(out.depth, t.depth, both)
        if self.use_normal:
            terms["normal"] = L.normal_loss(out.normals, t.normals, both)
        if self.use_chamfer and phase.geo and len(out.mesh.faces):
            pts = L.surface_samples(out.mesh.vertices, out.mesh.faces, cfg.chamfer_points,
                                    self.generator)
            terms["chamfer"] = L.chamfer_loss(pts, t.points, self.scale)
        if phase.uses_rgb:
            terms["rgb"] = L.rgb_loss(out.images[:, :3], t.rgb, both)
            if self.perceptual is not None:
                terms["perceptual"] = L.perceptual_loss(self.perceptual, out.images[:, :3],
                                                        t.rgb, both)
        terms["reg_geo"] = L.latent_distance(ws_geo, self.G.w_avg_geo)
        terms["reg_tex"] = L.latent_distance(ws_tex, self.G.w_avg)
        loss = zero
        if phase.geo:
            loss = loss + cfg.lambda_silhouette * terms["silhouette"] \
                + cfg.lambda_depth * terms["depth"] + cfg.lambda_normal * terms["normal"] \
                + cfg.lambda_chamfer * terms["chamfer"] + cfg.lambda_reg_geo * terms["reg_geo"]
        if phase.uses_rgb:
            loss = loss + cfg.lambda_rgb * terms["rgb"] \
                + cfg.lambda_perceptual * terms["perceptual"]
        if phase.tex:
            loss = loss + cfg.lambda_reg_tex * terms["reg_tex"]
        terms["loss"] = loss
        return loss, terms


# ---------------------------------------------------------------------- the inversion
def embed_3d(G, target: Target3D, config: Embed3DConfig | None = None, *,
             held_out: Sequence[int] = (), estimate_cameras: bool | None = None,
             start=None, callback: Callback | None = None, vgg: VGG16Features | None = None,
             vgg_weights: str | os.PathLike | None = None, **overrides) -> Embed3DResult:
    """Invert an object into G's two latent branches.

    Args:
        G: a GET3D generator (not modified; generator tuning works on a copy).
        target: the object's views (:func:`i2s.embedding3d.load_image_target`,
            :func:`i2s.embedding3d.load_mesh_target`).
        config: the settings (default :class:`Embed3DConfig`); fields may also be given as
            keyword overrides, e.g. ``embed_3d(G, t, steps=100, strategy="staged")``.
        held_out: views never used in the loss, only measured (they need cameras).
        estimate_cameras: estimate the fitted views' cameras (default: when the target has
            none).
        start: starting (ws_geo, ws_tex), overriding ``config.init``.
        callback: called with a :class:`StepInfo3D` after every step.
        vgg / vgg_weights: for ``lambda_perceptual > 0``, a loaded
            :class:`i2s.models.vgg16.VGG16Features`, or the path of torchvision's
            ``vgg16-397923af.pth`` (default: looked up as ``i2s embed`` does); unused otherwise.
    Returns:
        :class:`Embed3DResult`.
    Raises:
        I2SError: bad settings or inputs (one line), or a diverging optimisation.
    """
    check_generator(G)
    cfg = (config or Embed3DConfig()).replace(**overrides)
    if start is not None:
        cfg = cfg.replace(init=INIT_GIVEN_3D)
    k = len(target)
    held = sorted({int(i) for i in held_out})
    if any(not 0 <= i < k for i in held):
        raise I2SError(f"held-out views must be in 0..{k - 1}, got {list(held_out)}")
    fit_idx = [i for i in range(k) if i not in held]
    if not fit_idx:
        raise I2SError("every view is held out: nothing to fit")
    estimate = target.cameras is None if estimate_cameras is None else bool(estimate_cameras)
    if target.cameras is None and held:
        raise I2SError("held-out views need cameras (they are only measured)")
    device = G.w_avg.device
    perceptual = L.perceptual_term(vgg, vgg_weights, device) if cfg.lambda_perceptual > 0 \
        else None
    tgt = target.to(device).at_resolution(cfg.resolution)
    fit = tgt.select(fit_idx)
    record = run_record(G, cfg.to_dict(), device)
    record["num_ws_geo"] = G.num_ws_geo
    geo0, tex0 = initial_latents(G, cfg, start)
    t0 = time.perf_counter()
    with frozen(G):
        G.eval()
        cams, search_iou, search_seconds, geo0 = _starting_cameras(G, fit, cfg, geo0, tex0,
                                                                   estimate)
        init_renders = _render_all(G, geo0, tex0, tgt, cams, fit_idx, cfg.resolution)
        var_geo, var_tex = to_variable(geo0, cfg.space_geo), to_variable(tex0, cfg.space_tex)
        phases = schedule(cfg)
        history = _optimise(G, fit, cfg, phases, var_geo, var_tex, cams, estimate, callback,
                            perceptual)
        ws_geo = to_ws(var_geo.detach(), G.num_ws_geo)
        ws_tex = to_ws(var_tex.detach(), G.num_ws_tex)
        seconds = time.perf_counter() - t0
        G_final, tune_seconds = G, 0.0
        if cfg.tune_steps:
            t1 = time.perf_counter()
            G_final = _tune(G, fit, cfg, ws_geo, ws_tex, cams, history, callback, perceptual)
            tune_seconds = time.perf_counter() - t1
    if not (bool(torch.isfinite(ws_geo).all()) and bool(torch.isfinite(ws_tex).all())):
        raise I2SError("the optimisation diverged (the latents are not finite); lower the "
                       "learning rates")
    fitted_cams = cams.detached() if isinstance(cams, CameraParameters) else cams
    all_cams = _merge_cameras(tgt.cameras, fitted_cams, fit_idx, k)
    with torch.no_grad():
        renders = render_views(G_final, ws_geo, ws_tex, all_cams, cfg.resolution).images
        (mesh,) = G_final.mesh(ws_geo, ws_tex)
    iou, psnr = L.view_measures(renders, tgt.images)
    iou0, psnr0 = L.view_measures(init_renders, tgt.images)
    chamfer = chamfer0 = None
    if tgt.vertices is not None:
        chamfer = _chamfer(mesh, tgt)
        with torch.no_grad():
            (mesh0,) = G.mesh(geo0, tex0)
        chamfer0 = _chamfer(mesh0, tgt)
    return Embed3DResult(
        ws_geo=ws_geo, ws_tex=ws_tex, target=tgt, cameras=all_cams.to(device="cpu"),
        cameras_estimated=estimate, renders=renders, mesh=mesh,
        view_iou=iou.cpu().numpy(), view_psnr=psnr.cpu().numpy(), held_out=held,
        history=history, phases=phases, seconds=seconds, config=cfg, record=record,
        chamfer=chamfer, chamfer_initial=chamfer0, initial_iou=iou0.cpu().numpy(),
        initial_psnr=psnr0.cpu().numpy(), search_seconds=search_seconds,
        tune_seconds=tune_seconds, generator=G_final if cfg.tune_steps else None,
        camera_search_iou=search_iou)


def _chamfer(mesh, tgt: Target3D) -> float | None:
    if len(mesh.faces) == 0:
        return math.inf
    return mesh_chamfer(mesh.vertices.detach().cpu(), mesh.faces.cpu(), tgt.vertices.cpu(),
                        tgt.faces.cpu(), n=10000, seed=0)


def _starting_cameras(G, fit: Target3D, cfg: Embed3DConfig, geo0, tex0, estimate: bool):
    """Given cameras, or the coarse search's (as :class:`CameraParameters`) and the starting
    ws_geo. The search tries the starting shape and ``cfg.search_shapes`` shapes of seeded z
    (seeds from ``SEARCH_SEED_BASE``, far from those people and the studies use), keeps the
    one whose best cameras give the highest summed IoU over the views, and the optimisation
    starts from it (a shape near the object tells the view directions apart; the rounder mean
    shape often does not)."""
    if not estimate:
        return fit.cameras, None, 0.0, geo0
    t = time.perf_counter()
    dev = G.w_avg.device
    masks = fit.at_resolution(cfg.search_resolution).mask
    fov = float(fit.cameras.fovy_deg[0]) if fit.cameras is not None else DEFAULT_FOVY_DEG
    candidates = [geo0]
    with torch.no_grad():
        for i in range(cfg.search_shapes):
            z_geo, _ = seed_z_3d(SEARCH_SEED_BASE + cfg.seed * 1000 + i, None, G.z_dim)
            candidates.append(G.mapping_geo(z_geo.to(dev)))
        best, best_geo = None, geo0
        for geo in candidates:
            mesh = shape_mesh(G, geo, G.planes(geo, tex0))
            if len(mesh.faces) == 0:
                continue
            found = coarse_search(mesh.vertices, mesh.faces, masks,
                                  azimuths=cfg.search_azimuths,
                                  elevations=cfg.search_elevations, radii=cfg.search_radii,
                                  fovy_deg=fov, shared_radius=cfg.search_shared_radius)
            if best is None or float(found.iou.sum()) > float(best.iou.sum()):
                best, best_geo = found, geo
    if best is None:
        raise I2SError("the starting shape has no surface; cannot search for cameras")
    params = CameraParameters.from_search(best, fov).to(dev)
    return params, best.iou.numpy(), time.perf_counter() - t, best_geo


def _merge_cameras(given: Cameras | None, fitted: Cameras, fit_idx: list[int], k: int
                   ) -> Cameras:
    """Cameras of all K views: the fitted views' (estimated or given), the given ones of the
    others."""
    if given is None or len(fit_idx) == k:
        return fitted
    m = given.world_to_camera.clone()
    fov = given.fovy_deg.clone()
    idx = torch.tensor(fit_idx, device=m.device)
    m[idx] = fitted.world_to_camera.to(m)
    fov[idx] = fitted.fovy_deg.to(fov)
    sph = None
    if given.azimuth_deg is not None and fitted.azimuth_deg is not None:
        sph = []
        for a, b in ((given.azimuth_deg, fitted.azimuth_deg),
                     (given.elevation_deg, fitted.elevation_deg),
                     (given.radius, fitted.radius)):
            a = a.clone()
            a[idx] = b.to(a)
            sph.append(a)
    return Cameras(m, fov, near=given.near, far=given.far,
                   **({} if sph is None else dict(zip(("azimuth_deg", "elevation_deg", "radius"),
                                                      sph, strict=True))))


@torch.no_grad()
def _render_all(G, ws_geo, ws_tex, tgt: Target3D, cams, fit_idx, resolution) -> torch.Tensor:
    fitted = cams.detached() if isinstance(cams, CameraParameters) else cams
    return render_views(G, ws_geo, ws_tex, _merge_cameras(tgt.cameras, fitted, fit_idx,
                                                          len(tgt)), resolution).images


def _optimise(G, fit: Target3D, cfg: Embed3DConfig, phases: list[Phase], var_geo, var_tex,
              cams, estimate: bool, callback, perceptual: PerceptualLoss | None = None
              ) -> dict[str, np.ndarray]:
    steps = cfg.steps
    opt_geo = torch.optim.Adam([var_geo], lr=cfg.lr_geo, betas=cfg.betas)
    opt_tex = torch.optim.Adam([var_tex], lr=cfg.lr_tex, betas=cfg.betas)
    refine = isinstance(cams, CameraParameters) and cfg.refine_cameras
    opt_cam = torch.optim.Adam(cams.parameters(), lr=cfg.lr_camera) if refine else None
    coarse_steps = round(steps * cfg.coarse_fraction)
    objectives = {cfg.resolution: Objective(G, fit, cfg, cfg.seed, perceptual)}
    if coarse_steps:
        half = max(8, cfg.resolution // 2)
        objectives[half] = Objective(G, fit.at_resolution(half), cfg, cfg.seed, perceptual)
    history = {k: np.full(steps, np.nan) for k in (*L.TERMS, "iou", "psnr", "phase")}
    which = phase_at(phases)
    ramp = lr_factors(phases, cfg.lr_rampdown, whole_run=cfg.strategy == "alternating")
    for step in range(steps):
        phase = phases[which[step]]
        res = cfg.resolution if step >= coarse_steps else max(8, cfg.resolution // 2)
        objective = objectives[res]
        ws_geo = to_ws(var_geo, G.num_ws_geo)
        ws_tex = to_ws(var_tex, G.num_ws_tex)
        if not phase.geo:
            ws_geo = ws_geo.detach()
        if not phase.tex:
            ws_tex = ws_tex.detach()
        if isinstance(cams, CameraParameters):
            cameras = cams.cameras() if (refine and phase.geo) else cams.detached()
        else:
            cameras = cams
        out = render_views(G, ws_geo, ws_tex, cameras, res, rgb=phase.uses_rgb,
                           depth=objective.use_depth, normals=objective.use_normal,
                           tex_to_geo=phase.rgb_to_geo if phase.geo else 1.0)
        loss, terms = objective(out, ws_geo, ws_tex, phase)
        if not bool(torch.isfinite(loss)):
            raise I2SError(f"the optimisation diverged at step {step + 1} (the loss is not a "
                           "finite number); lower the learning rates or the loss weights")
        for opt in (opt_geo, opt_tex, opt_cam):
            if opt is not None:
                opt.zero_grad(set_to_none=True)
        if loss.requires_grad:
            loss.backward()
        for opt, lr in ((opt_geo, cfg.lr_geo), (opt_tex, cfg.lr_tex),
                        (opt_cam, cfg.lr_camera)):
            if opt is not None:
                opt.param_groups[0]["lr"] = lr * ramp[step]
        if phase.geo:
            opt_geo.step()
            if opt_cam is not None:
                opt_cam.step()
        if phase.tex:
            opt_tex.step()
        iou, psnr = L.view_measures(out.images.detach(), objective.target.images)
        for name, v in terms.items():
            history[name][step] = float(v.detach())
        history["iou"][step] = float(iou.mean())
        psnr_mean = float(psnr[torch.isfinite(psnr)].mean()) if phase.uses_rgb and \
            bool(torch.isfinite(psnr).any()) else math.nan
        history["psnr"][step] = psnr_mean
        history["phase"][step] = which[step]
        if callback is not None:
            callback(StepInfo3D(step + 1, steps + cfg.tune_steps, phase.name,
                                float(loss.detach()),
                                {n: float(v.detach()) for n, v in terms.items()}, float(iou.mean()),
                                psnr_mean, ws_geo.detach(), ws_tex.detach()))
    return history


def _tune(G, fit: Target3D, cfg: Embed3DConfig, ws_geo, ws_tex, cams, history, callback,
          perceptual: PerceptualLoss | None = None):
    """PTI-style: a copy of G whose tri-plane network is tuned (Adam, ``tune_lr``) for
    ``tune_steps`` steps on every term, the latents fixed at the found ones."""
    Gt = copy.deepcopy(G)
    params = list(Gt.synthesis.generator.tri_plane_synthesis.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.tune_lr)
    objective = Objective(Gt, fit, cfg, cfg.seed + 1, perceptual)
    phase = Phase("tune", cfg.tune_steps, True, True, 1.0)
    cameras = cams.detached() if isinstance(cams, CameraParameters) else cams
    tune_hist = {k: np.full(cfg.tune_steps, np.nan) for k in ("loss", "iou", "psnr")}
    for step in range(cfg.tune_steps):
        out = render_views(Gt, ws_geo, ws_tex, cameras, cfg.resolution,
                           depth=objective.use_depth, normals=objective.use_normal)
        loss, terms = objective(out, ws_geo, ws_tex, phase)
        if not bool(torch.isfinite(loss)):
            raise I2SError(f"generator tuning diverged at step {step + 1}; lower --tune-lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        iou, psnr = L.view_measures(out.images.detach(), fit.images)
        psnr_mean = float(psnr[torch.isfinite(psnr)].mean()) if bool(
            torch.isfinite(psnr).any()) else math.nan
        tune_hist["loss"][step], tune_hist["iou"][step] = float(loss.detach()), float(iou.mean())
        tune_hist["psnr"][step] = psnr_mean
        if callback is not None:
            callback(StepInfo3D(cfg.steps + step + 1, cfg.steps + cfg.tune_steps, "tune",
                                float(loss.detach()),
                                {n: float(v.detach()) for n, v in terms.items()},
                                float(iou.mean()), psnr_mean, ws_geo, ws_tex))
    for p in params:
        p.requires_grad_(False)
    history.update({f"tune_{k}": v for k, v in tune_hist.items()})
    Gt.sha256 = None
    Gt.source = f"{getattr(G, 'source', None)} (tuned)"
    return Gt.eval()
