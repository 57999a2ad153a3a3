"""``EmbedConfig``: every setting of an embedding, in one frozen dataclass.

The same object is built by the CLI (from the options of :func:`i2s.cli.options.embedding_options`),
used by :func:`i2s.embed` and by the experiments, and written into every run record
(``to_dict()``; ``from_dict()`` reads it back). Defaults are the paper's (Abdal et al. 2019,
Algorithm 1): W+, 5000 Adam steps at lr 0.01 (betas 0.9/0.999, eps 1e-8) from ``w_avg``,
MSE + VGG-16 perceptual loss on conv1_1, conv1_2, conv3_2, conv4_2 after the ReLU, images
above 256 px area-downsampled for VGG, the model's stored constant noise.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from i2s.embedding.latents import SPACES
from i2s.embedding.losses import LOSS_KINDS, PAPER_LAYERS, VGG_TAPS
from i2s.errors import I2SError
from i2s.models.common import NOISE_MODES
from i2s.models.vgg16 import CONV_INDEX

INIT_KEYWORDS = ("mean", "random")
MAX_STEPS = 1_000_000  # 15 days at 1024 px on a 2-core CPU: more is a typo
INIT_GIVEN = "latent"  # what the record says when the start was a tensor given in code


def auto_batch_size(resolution: int) -> int:
    """Images optimised together by default: 16 at 64 px, fewer as the pixels grow (1 from
    256 px), so that memory stays about that of one 256 px image."""
    return max(1, min(16, 16 * 64 * 64 // (resolution * resolution)))


@dataclass(frozen=True)
class EmbedConfig:
    """Settings of :func:`i2s.embed` (docs/paper.md section 1). Invalid values raise
    :class:`i2s.I2SError` with a one-line reason."""

    space: str = "w+"                 # "w+", "w" or "z": the variable that is optimised
    steps: int = 5000                 # Adam steps
    lr: float = 0.01                  # Adam learning rate
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    init: str = "mean"                # "mean" (w_avg), "random" (seeded), or a latent.npz path
    seed: int = 0                     # for init "random" and noise_mode "random"
    loss: str = "mse+vgg"             # "mse+vgg" (paper), "mse" or "vgg"
    lambda_mse: float = 1.0
    lambda_perceptual: float = 1.0
    vgg_layers: tuple[str, ...] = PAPER_LAYERS
    vgg_taps: str = "post-relu"       # VGG features after ("post-relu") or before their ReLU
    vgg_resolution: int | None = 256  # area-downsample larger images to this for VGG
    noise_mode: str = "const"         # per-layer noise while optimising: "const", "random", "none"
    batch_size: int | None = None     # images optimised together; None: auto_batch_size(R)

    def __post_init__(self) -> None:
        # JSON gives lists: keep the tuple fields hashable and comparable.
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "vgg_layers", tuple(self.vgg_layers))
        _one_of("space", self.space, SPACES)
        _one_of("loss", self.loss, LOSS_KINDS)
        _one_of("vgg_taps", self.vgg_taps, VGG_TAPS)
        _one_of("noise_mode", self.noise_mode, NOISE_MODES)
        if not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise I2SError(f"steps must be a whole number from 1 to {MAX_STEPS:,}, got "
                           f"{self.steps}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise I2SError(f"lr must be a positive number, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise I2SError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise I2SError(f"eps must be a positive number, got {self.eps}")
        if not isinstance(self.init, str) or not self.init:
            raise I2SError("init must be 'mean', 'random' or the path of a latent.npz")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise I2SError(f"seed must be a whole number in [0, 2^63), got {self.seed}")
        for name in ("lambda_mse", "lambda_perceptual"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise I2SError(f"{name} must be a number >= 0, got {v}")
        if self.mse_weight + self.perceptual_weight == 0:
            raise I2SError(f"loss {self.loss!r} with lambda_mse={self.lambda_mse}, "
                           f"lambda_perceptual={self.lambda_perceptual} has no positive term")
        unknown = [t for t in self.vgg_layers if t not in CONV_INDEX]
        if unknown or not self.vgg_layers:
            raise I2SError(f"vgg_layers must be VGG-16 conv names ({', '.join(CONV_INDEX)}), "
                           f"got {list(self.vgg_layers)}")
        if self.vgg_resolution is not None and self.vgg_resolution < 16:
            raise I2SError(f"vgg_resolution must be at least 16 (or None), got "
                           f"{self.vgg_resolution}")
        if self.batch_size is not None and self.batch_size < 1:
            raise I2SError(f"batch_size must be at least 1 (or None), got {self.batch_size}")

    @property
    def mse_weight(self) -> float:
        """Weight of the pixel MSE term in this loss (0 when the loss has none)."""
        return self.lambda_mse if self.loss in ("mse+vgg", "mse") else 0.0

    @property
    def perceptual_weight(self) -> float:
        """Weight of the VGG-16 term in this loss (0 when the loss has none)."""
        return self.lambda_perceptual if self.loss in ("mse+vgg", "vgg") else 0.0

    @property
    def needs_vgg(self) -> bool:
        return self.perceptual_weight > 0

    def batch_for(self, resolution: int) -> int:
        """Images per optimisation batch for a model of this resolution."""
        return self.batch_size or auto_batch_size(resolution)

    def replace(self, **changes: Any) -> EmbedConfig:
        """A copy with some fields changed; I2SError for a field that does not exist."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise I2SError(f"unknown embedding setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON data (tuples as lists)."""
        d = dataclasses.asdict(self)
        d["betas"], d["vgg_layers"] = list(self.betas), list(self.vgg_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbedConfig:
        """Read :meth:`to_dict`'s data back; I2SError for unknown fields or bad values."""
        return cls().replace(**d)


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise I2SError(f"unknown {name} {value!r}: use one of {', '.join(allowed)}")
