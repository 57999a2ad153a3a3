"""Train ``demo-3d``: a small GET3D generator distilled from the procedural furniture teacher.

Method (:mod:`i2s.demo.furniture` is the teacher): the student is an unmodified
:class:`~i2s.get3d.generator.GET3DGenerator` -- both mapping networks, the tri-plane backbone
with its ``togeo`` / ``totex`` heads, the SDF / deformation / texture MLPs and ``to_rgb`` --
in a small configuration. For each training object the geometry latent ``z_geo`` and the
texture latent ``z_tex`` are drawn independently, the teacher gives the exact fields, and
the student regresses them at sampled points:

* **SDF**: at points uniform in the tet grid's box and at points near the surface (the
  smallest-|SDF| of a larger uniform draw, jittered by ``surface_jitter``), an L1 loss between
  the student's raw SDF (GET3D's sign: positive inside) and the teacher's ``-sdf`` scaled by
  ``sdf_scale`` and truncated to [-1, 1] (so the surface -- the zero level -- is exact while
  far values do not dominate);
* **colour**: at the near-surface points, L1 between the student's RGB (``to_rgb`` of the
  texture MLP, in [-1, 1]) and the teacher's colour;
* **deformation**: an L2 penalty on the raw deformation at the uniform points (GET3D learns
  it through rendering; here the grid is fine enough and the SDF exact, so it stays near 0).

Adam with equalised learning rates; the mapping networks' learning rate is raised by
``mapping_lr_boost`` as for the 2D ``demo`` (a regression has to carry every z through the
mapping, which StyleGAN's 0.01 multiplier would stall). An EMA of the weights is shipped, with
both ``w_avg`` set to exact means at the end.

Reproducible: the latents of step ``k`` come from seed ``Z_SEED_BASE + k`` and its sample
points from ``POINT_SEED_BASE + k``, so a resumed run draws what an uninterrupted one would.
Held-out objects use :func:`i2s.get3d.seeds.seed_z_3d` of small seeds (a different stream).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from i2s.demo import furniture
from i2s.demo.train import learning_rate, update_ema
from i2s.errors import I2SError
from i2s.get3d.cameras import Cameras
from i2s.get3d.config import GET3DConfig
from i2s.get3d.generator import GET3DGenerator
from i2s.get3d.seeds import seed_z_3d
from i2s.media.files import atomic_path, sha256_file, write_text_atomic
from i2s.media.grid import image_grid
from i2s.media.images import save_image, to_uint8
from i2s.media.video import write_animation
from i2s.provenance import run_record
from i2s.weights.generator_file import save_generator

Z_SEED_BASE = 3_000_000_000
POINT_SEED_BASE = 4_000_000_000
SAMPLE_SEEDS = list(range(900, 906))    # progress grids (never training latents)
BOX_HALF = 0.5                          # the tet grid's box at dmtet_scale 1


@dataclass(frozen=True)
class TrainDemo3DConfig:
    """Everything that determines the trained weights."""

    steps: int = 3000
    batch: int = 24                     # objects per step
    points_uniform: int = 1536          # per object
    points_surface: int = 2560          # per object
    surface_candidates: int = 6         # near-surface points: best 1/6 of a uniform draw
    surface_jitter: float = 0.01
    sdf_scale: float = 25.0             # target = clamp(-sdf * scale, -1, 1): exact to 0.04
    rgb_weight: float = 1.0
    deformation_weight: float = 1.0
    lr: float = 0.008
    mapping_lr_boost: float = 100.0
    betas: tuple[float, float] = (0.9, 0.99)
    lr_final_fraction: float = 0.05
    ema_kimg: float = 5.0               # EMA half-life in thousands of objects
    ema_rampup: float = 0.05
    # the student's architecture
    z_dim: int = 32
    w_dim: int = 128
    mapping_layers: int = 4
    tri_plane_resolution: int = 64
    channel_base: int = 4096
    channel_max: int = 128
    tet_res: int = 48
    image_resolution: int = 256

    def generator_config(self) -> GET3DConfig:
        return GET3DConfig(z_dim=self.z_dim, w_dim=self.w_dim, mapping_layers=self.mapping_layers,
                           tri_plane_resolution=self.tri_plane_resolution,
                           channel_base=self.channel_base, channel_max=self.channel_max,
                           tet_res=self.tet_res, dmtet_scale=1.0,
                           image_resolution=self.image_resolution)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def batch_latents(step: int, batch: int, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_geo, z_tex) of training step ``step``, each [batch, z_dim], drawn independently."""
    g = torch.Generator().manual_seed(Z_SEED_BASE + step)
    return torch.randn(batch, z_dim, generator=g), torch.randn(batch, z_dim, generator=g)


def sample_points(geo: furniture.FurnitureGeometry, cfg: TrainDemo3DConfig,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform points [N, Pu, 3] in the grid's box and near-surface points [N, Ps, 3]."""
    n = geo.width.shape[0]
    uniform = (torch.rand(n, cfg.points_uniform, 3, generator=generator) * 2 - 1) * BOX_HALF
    cand = (torch.rand(n, cfg.points_surface * cfg.surface_candidates, 3,
                       generator=generator) * 2 - 1) * BOX_HALF
    d = furniture.sdf(geo, cand).abs()
    idx = d.topk(cfg.points_surface, dim=1, largest=False).indices
    near = cand.gather(1, idx[..., None].expand(-1, -1, 3))
    near = near + torch.randn(near.shape, generator=generator) * cfg.surface_jitter
    return uniform, near.clamp(-BOX_HALF, BOX_HALF)


@torch.no_grad()
def compute_w_avgs(G: GET3DGenerator, samples: int = 20000, seed: int = 123) -> None:
    """Set both mapping networks' ``w_avg`` to their mean output over ``samples`` z."""
    z = torch.randn(samples, G.z_dim, generator=torch.Generator().manual_seed(seed))
    for mapping in (G.mapping, G.mapping_geo):
        mapping.w_avg.copy_(torch.cat([mapping(c)[:, 0] for c in z.split(2000)]).mean(0))


def sample_turntable(G: GET3DGenerator, seeds: list[int], resolution: int = 64,
                     frames: int = 12) -> np.ndarray:
    """The student's objects for ``seeds`` turning once, side by side on white: uint8
    [frames, H, len(seeds) * W, 3] (frame k seen from azimuth 360 k / frames)."""
    cams = Cameras.orbit(k=frames, elevation_deg=20, radius=1.5)
    views = []
    for s in seeds:
        zg, zt = seed_z_3d(s, None, G.z_dim)
        with torch.no_grad():
            img = G.render(G.mapping_geo(zg), G.mapping(zt), cams, resolution)[0]
        views.append(to_uint8(img[:, :3] * img[:, 3:] + (1 - img[:, 3:])))   # [frames, H, W, 3]
    return np.concatenate(views, axis=2)


def sample_renders(G: GET3DGenerator, seeds: list[int], resolution: int = 96,
                   views: int = 3, teacher_mesh_resolution: int = 96) -> torch.Tensor:
    """Teacher (row 1) and student (row 2) renders of held-out seeds: [2 * len(seeds) * views,
    3, H, W] in [-1, 1], views side by side per object."""
    cams = Cameras.orbit(k=views, elevation_deg=20, radius=1.5)
    teacher, student = [], []
    for s in seeds:
        zg, zt = seed_z_3d(s, None, G.z_dim)
        obj = furniture.FurnitureObject(zg, zt)
        teacher.append(obj.render(cams, resolution, obj.mesh(teacher_mesh_resolution))[:, :3])
        with torch.no_grad():
            img = G.render(G.mapping_geo(zg), G.mapping(zt), cams, resolution)[0]
        student.append(img[:, :3] * img[:, 3:] - (1 - img[:, 3:]))   # black background
    return torch.cat(teacher + student)


class Trainer3D:
    """Runs (or resumes) a ``demo-3d`` distillation in ``out``; see the module docstring."""

    def __init__(self, cfg: TrainDemo3DConfig, out: Path,
                 log: Callable[[str], None] | None = None,
                 sample_seeds: list[int] | None = None, sample_resolution: int = 96) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.sample_seeds = SAMPLE_SEEDS if sample_seeds is None else sample_seeds
        self.sample_resolution = sample_resolution
        self.log = log or (lambda line: None)
        torch.manual_seed(0)  # initial weights and constant noise
        self.G = GET3DGenerator(cfg.generator_config()).train().requires_grad_(True)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        mapping = [p for n, p in self.G.named_parameters() if n.startswith("mapping")]
        rest = [p for n, p in self.G.named_parameters() if not n.startswith("mapping")]
        self.opt = torch.optim.Adam([{"params": rest, "boost": 1.0},
                                     {"params": mapping, "boost": cfg.mapping_lr_boost}],
                                    lr=cfg.lr, betas=cfg.betas, eps=1e-8)
        self.step, self.seconds = 0, 0.0
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.out / "checkpoint.pt"
        if self.checkpoint_path.is_file():
            self._resume()

    def _resume(self) -> None:
        ck = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        if ck["config"] != self.cfg.to_dict():
            raise I2SError(f"{self.checkpoint_path} was made with other settings; "
                           "use the same options or another --out")
        self.G.load_state_dict(ck["G"])
        self.G_ema.load_state_dict(ck["G_ema"])
        self.opt.load_state_dict(ck["opt"])
        self.step, self.seconds = ck["step"], ck["seconds"]
        self.log(f"resumed at step {self.step} ({self.seconds / 60:.1f} min done)")

    def _save_checkpoint(self) -> None:
        ck = {"config": self.cfg.to_dict(), "G": self.G.state_dict(),
              "G_ema": self.G_ema.state_dict(), "opt": self.opt.state_dict(),
              "step": self.step, "seconds": self.seconds}
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(ck, tmp)

    def losses(self, G: GET3DGenerator, z_geo: torch.Tensor, z_tex: torch.Tensor,
               generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """The distillation loss of one batch and its parts."""
        cfg = self.cfg
        geo = furniture.geometry_params(z_geo)
        tex = furniture.texture_params(z_tex)
        with torch.no_grad():
            uniform, near = sample_points(geo, cfg, generator)
            points = torch.cat([uniform, near], 1)
            target_sdf = (-furniture.sdf(geo, points) * cfg.sdf_scale).clamp(-1, 1)
            target_rgb = furniture.color(geo, tex, near) * 2 - 1
        ws_geo, ws_tex = G.mapping_geo(z_geo), G.mapping(z_tex)
        planes = G.planes(ws_geo, ws_tex)
        sdf, deformation = G.sdf_and_deformation(ws_geo, planes, points)
        rgb = G.features_to_rgb(G.texture_features(ws_tex, planes, near), ws_tex)
        l_sdf = F.l1_loss(sdf, target_sdf)
        l_rgb = F.l1_loss(rgb, target_rgb)
        scale = cfg.tet_res * G.cfg.deformation_multiplier
        l_def = (deformation[:, :cfg.points_uniform] * scale).square().mean()
        loss = l_sdf + cfg.rgb_weight * l_rgb + cfg.deformation_weight * l_def
        with torch.no_grad():
            sign = ((sdf > 0) == (target_sdf > 0)).float().mean()
        return loss, {"sdf": l_sdf.item(), "rgb": l_rgb.item(), "deformation": l_def.item(),
                      "sign_accuracy": sign.item()}

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        z_geo, z_tex = batch_latents(self.step, cfg.batch, cfg.z_dim)
        gen = torch.Generator().manual_seed(POINT_SEED_BASE + self.step)
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(cfg, self.step) * group["boost"]
        loss, stats = self.losses(self.G, z_geo, z_tex, gen)
        if not math.isfinite(loss.item()):
            raise I2SError(f"the training loss is not finite at step {self.step}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self._update_ema()
        self.step += 1
        return stats

    def _update_ema(self) -> None:
        update_ema(self.G_ema, self.G, self.step + 1, self.cfg)

    def _sample(self, name: str) -> None:
        imgs = sample_renders(self.G_ema, self.sample_seeds, self.sample_resolution,
                              teacher_mesh_resolution=self.sample_resolution)
        save_image(self.out / "samples" / name,
                   image_grid(to_uint8(imgs), cols=3 * len(self.sample_seeds)))
        write_animation(self.out / "samples" / Path(name).with_suffix(".gif"),
                        sample_turntable(self.G_ema, self.sample_seeds[:4]), fps=6)

    def run(self, log_every: int = 25, sample_every: int = 500,
            checkpoint_every: int = 100, max_minutes: float | None = None) -> Path | None:
        """Train to ``cfg.steps`` and write the model (returns its path), or stop after
        ``max_minutes`` with a checkpoint (returns None; run again to resume)."""
        cfg = self.cfg
        log_path = self.out / "log.jsonl"
        acc: dict[str, float] = {}
        t_start = t_last = time.perf_counter()
        while self.step < cfg.steps:
            for key, v in self.train_step().items():
                acc[key] = acc.get(key, 0.0) + v
            now = time.perf_counter()
            self.seconds += now - t_last
            t_last = now
            n = self.step
            if n % log_every == 0 or n == cfg.steps:
                count = log_every if n % log_every == 0 else n % log_every
                row = {"step": n, "objects": n * cfg.batch, "lr": learning_rate(cfg, n - 1),
                       "minutes": self.seconds / 60, **{k: v / count for k, v in acc.items()}}
                with open(log_path, "a") as f:
                    f.write(json.dumps(row) + "\n")
                self.log(f"step {n}/{cfg.steps}  sdf {row['sdf']:.4f}  rgb {row['rgb']:.4f}  "
                         f"sign {row['sign_accuracy']:.4f}  {row['minutes']:.1f} min")
                acc = {}
            if n % sample_every == 0 or n == cfg.steps:
                self._sample(f"step{n:06d}.png")
                t_last = time.perf_counter()
            if n % checkpoint_every == 0 or n == cfg.steps:
                self._save_checkpoint()
                t_last = time.perf_counter()
            if max_minutes is not None and (now - t_start) / 60 > max_minutes \
                    and self.step < cfg.steps:
                self._save_checkpoint()
                return None
        return self.finish()

    def finish(self) -> Path:
        """Exact ``w_avg`` of both mapping networks, then the float16 model and its
        provenance."""
        compute_w_avgs(self.G_ema)
        path = self.out / "demo-3d.safetensors"
        provenance = {
            "model": "demo-3d",
            "method": "distillation of the procedural furniture teacher (i2s.demo.furniture): "
                      "SDF at uniform and near-surface points, colour near the surface "
                      "(i2s.demo.train3d)",
            "teacher": "i2s.demo.furniture (procedural, in the repository)",
            "train_config": self.cfg.to_dict(), "steps": self.step,
            "objects_seen": self.step * self.cfg.batch,
            "training_minutes": round(self.seconds / 60, 1),
            "threads": torch.get_num_threads(),
            **run_record(device=next(self.G_ema.parameters()).device),
        }
        save_generator(self.G_ema, path, dtype=torch.float16,
                       extra_metadata={"provenance": json.dumps(provenance)})
        provenance["sha256"] = sha256_file(path)
        write_text_atomic(self.out / "provenance.json", json.dumps(provenance, indent=2) + "\n")
        self._sample("final.png")
        return path
