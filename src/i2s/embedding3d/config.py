"""``Embed3DConfig``: every setting of a 3D inversion (:func:`i2s.embedding3d.embed_3d`), in
one frozen dataclass.

Built by ``i2s embed-3d`` from its options, used by the library and the study, and written
into ``metrics.json`` (``to_dict()``; ``from_dict()`` reads it back). Invalid values raise
:class:`i2s.I2SError` with one line.

Strategies (how the two latent branches are optimised; see :mod:`.strategies.optimisation`):

``joint``        both branches at once on every loss (the naive Image2StyleGAN transfer: the
                 texture loss moves ws_geo at full weight through the shared backbone);
``staged``       geometry first (silhouette / depth / 3D terms, ws_tex untouched), then the
                 texture with ws_geo frozen (GET3D's own detach of ws_geo in the texture path);
``alternating``  block-coordinate descent on the full loss: ``alternate_every`` steps of ws_geo,
                 then as many of ws_tex, and so on;
``staged-joint`` staged, then a joint phase in which the geometry terms keep the shape and the
                 texture loss reaches ws_geo only with the weight ``tex_to_geo`` (a gradient
                 scale, 0.1 by default): the texture may bend the backbone a little without
                 dragging the shape.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from i2s.errors import I2SError

STRATEGIES = ("joint", "staged", "alternating", "staged-joint")
SPACES_3D = ("w", "w+")
INIT_KEYWORDS_3D = ("mean", "random")
INIT_GIVEN_3D = "latent"          # what the record says when the start was given in code
SILHOUETTE_LOSSES = ("iou", "bce", "iou+bce")
MAX_STEPS_3D = 100_000
MAX_RESOLUTION = 1024


@dataclass(frozen=True)
class Embed3DConfig:
    """Settings of a 3D inversion. Defaults: ``staged-joint`` in W+ for both branches,
    200 Adam steps at 128 px (about the 3-minute budget of a 2-core CPU on ``demo-3d``)."""

    strategy: str = "staged-joint"
    space_geo: str = "w+"             # "w" (one vector for every ws_geo entry) or "w+"
    space_tex: str = "w+"
    steps: int = 200                  # Adam steps over all phases
    lr_geo: float = 0.05
    lr_tex: float = 0.02
    betas: tuple[float, float] = (0.9, 0.999)
    lr_rampdown: float = 0.25         # cosine ramp of the lr to 0 over the end of each phase
    init: str = "mean"                # "mean" (w_avg per branch), "random" or a latent.npz path
    seed: int = 0                     # "random" init, mesh surface samples
    resolution: int = 128             # render side while optimising (targets are resized to it)
    coarse_fraction: float = 0.0      # first fraction of the steps rendered at half resolution
    # phases of the strategies
    geo_fraction: float = 0.4         # staged, staged-joint: share of the geometry phase
    joint_fraction: float = 0.3       # staged-joint: share of the final joint phase
    alternate_every: int = 10         # alternating: steps per block
    tex_to_geo: float = 0.1           # staged-joint: weight of the texture loss on ws_geo
    # losses
    silhouette_loss: str = "iou"       # "iou+bce" and "bce" fit worse on demo-3d
    lambda_silhouette: float = 1.0
    lambda_rgb: float = 1.0           # MSE inside both silhouettes ([-1, 1] scale)
    lambda_perceptual: float = 0.0    # VGG-16 features of the RGB inside both silhouettes
                                      # (needs VGG-16 weights; 0: off, nothing loaded)
    lambda_depth: float = 1.0         # L1 on depth where the target has it (mesh inputs)
    lambda_normal: float = 0.0        # 1 - cos of world normals where the target has them
    lambda_chamfer: float = 1.0       # 3D Chamfer to the target's surface (mesh inputs)
    chamfer_points: int = 2000        # surface samples of G's mesh per step
    lambda_reg_geo: float = 0.0       # mean squared distance of ws_geo to w_avg_geo
    lambda_reg_tex: float = 0.0       # of ws_tex to w_avg
    # cameras (images without cameras)
    search_azimuths: int = 24         # coarse grid: azimuths over 360 degrees
    search_elevations: tuple[float, ...] = (0.0, 15.0, 30.0, 45.0)
    search_radii: tuple[float, ...] = (1.2, 1.5, 1.8)
    search_resolution: int = 64
    search_shared_radius: bool = True  # one radius for all views (best summed IoU)
    search_shapes: int = 8            # seeded shapes tried besides the start (best one starts)
    refine_cameras: bool = True       # optimise the estimated cameras with the latents
    lr_camera: float = 0.02           # Adam lr of the camera offsets (x10 deg, x0.1 radius)
    # generator tuning (PTI-style), after the latents
    tune_steps: int = 0
    tune_lr: float = 5e-4

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "search_elevations", tuple(self.search_elevations))
        object.__setattr__(self, "search_radii", tuple(self.search_radii))
        _one_of("strategy", self.strategy, STRATEGIES)
        _one_of("space_geo", self.space_geo, SPACES_3D)
        _one_of("space_tex", self.space_tex, SPACES_3D)
        _one_of("silhouette_loss", self.silhouette_loss, SILHOUETTE_LOSSES)
        _whole("steps", self.steps, 1, MAX_STEPS_3D)
        _whole("resolution", self.resolution, 8, MAX_RESOLUTION)
        _whole("search_resolution", self.search_resolution, 8, MAX_RESOLUTION)
        _whole("alternate_every", self.alternate_every, 1, MAX_STEPS_3D)
        _whole("chamfer_points", self.chamfer_points, 16, 1_000_000)
        _whole("search_azimuths", self.search_azimuths, 1, 3600)
        _whole("tune_steps", self.tune_steps, 0, MAX_STEPS_3D)
        _whole("search_shapes", self.search_shapes, 0, 1000)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or \
                not 0 <= self.seed < 2**63:
            raise I2SError(f"seed must be a whole number in [0, 2^63), got {self.seed}")
        for name in ("lr_geo", "lr_tex", "lr_camera", "tune_lr"):
            _number(name, getattr(self, name), positive=True)
        for name in ("lambda_silhouette", "lambda_rgb", "lambda_perceptual", "lambda_depth",
                     "lambda_normal", "lambda_chamfer", "lambda_reg_geo", "lambda_reg_tex"):
            _number(name, getattr(self, name))
        for name in ("geo_fraction", "joint_fraction", "coarse_fraction", "lr_rampdown"):
            v = _number(name, getattr(self, name))
            if v > 1:
                raise I2SError(f"{name} must be in [0, 1], got {v}")
        if self.geo_fraction + self.joint_fraction >= 1 and self.strategy == "staged-joint":
            raise I2SError("geo_fraction + joint_fraction must be below 1 (the texture phase "
                           f"needs steps), got {self.geo_fraction} + {self.joint_fraction}")
        if not 0 < self.geo_fraction < 1 and self.strategy in ("staged", "staged-joint"):
            raise I2SError(f"geo_fraction must be in (0, 1), got {self.geo_fraction}")
        tg = _number("tex_to_geo", self.tex_to_geo)
        if not 0 < tg <= 1:
            raise I2SError(f"tex_to_geo must be in (0, 1], got {tg}")
        if len(self.betas) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1
                                           for b in self.betas):
            raise I2SError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not isinstance(self.init, str) or not self.init:
            raise I2SError("init must be 'mean', 'random' or the path of a latent.npz")
        if self.lambda_silhouette + self.lambda_depth + self.lambda_chamfer == 0:
            raise I2SError("no geometry term: lambda_silhouette, lambda_depth and "
                           "lambda_chamfer are all 0")
        if not self.search_elevations or not self.search_radii:
            raise I2SError("search_elevations and search_radii need at least one value each")
        for e in self.search_elevations:
            if not (isinstance(e, int | float) and math.isfinite(e) and -90 < e < 90):
                raise I2SError(f"search elevations must be in (-90, 90) degrees, got {e}")
        for r in self.search_radii:
            if not (isinstance(r, int | float) and math.isfinite(r) and r > 0):
                raise I2SError(f"search radii must be positive numbers, got {r}")

    def replace(self, **changes: Any) -> Embed3DConfig:
        """A copy with some fields changed; I2SError for a field that does not exist."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise I2SError(f"unknown 3D embedding setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON data (tuples as lists)."""
        d = dataclasses.asdict(self)
        for k in ("betas", "search_elevations", "search_radii"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Embed3DConfig:
        """Read :meth:`to_dict`'s data back; I2SError for unknown fields or bad values."""
        return cls().replace(**d)


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise I2SError(f"unknown {name} {value!r}: use one of {', '.join(allowed)}")


def _whole(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise I2SError(f"{name} must be a whole number from {low:,} to {high:,}, got {value}")


def _number(name: str, value: object, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value < 0 or (positive and value == 0):
        what = "a positive number" if positive else "a number >= 0"
        raise I2SError(f"{name} must be {what}, got {value}")
    return float(value)
