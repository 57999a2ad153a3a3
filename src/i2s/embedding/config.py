"""``EmbedConfig``: every setting of an embedding, in one frozen dataclass.

The same object is built by the CLI (from the options of :func:`i2s.cli.options.embedding_options`),
used by :func:`i2s.embed` and by the experiments, and written into every run record
(``to_dict()``; ``from_dict()`` reads it back). Defaults are the paper's (Abdal et al. 2019,
Algorithm 1): W+, 5000 Adam steps at lr 0.01 (betas 0.9/0.999, eps 1e-8) from ``w_avg``,
MSE + VGG-16 perceptual loss on conv1_1, conv1_2, conv3_2, conv4_2 after the ReLU, images
above 256 px area-downsampled for VGG, the model's stored constant noise.

``recipe`` (:mod:`i2s.embedding.recipes`) supplies other defaults for the settings marked
"recipe" below: a field left unset (None) takes the recipe's value, or the paper's when the
recipe does not change it; a field given explicitly always wins. :meth:`EmbedConfig.replace`
keeps that distinction, so ``cfg.replace(recipe="fast")`` re-resolves what was not given.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from i2s.embedding.latents import SPACES
from i2s.embedding.losses import LOSS_KINDS, PAPER_LAYERS, VGG_TAPS
from i2s.embedding.recipes import RECIPES
from i2s.embedding.schedules import LR_SCHEDULES
from i2s.errors import I2SError
from i2s.models.common import NOISE_MODES
from i2s.models.vgg16 import CONV_INDEX

INIT_KEYWORDS = ("mean", "random")
MAX_STEPS = 1_000_000  # 15 days at 1024 px on a 2-core CPU: more is a typo
INIT_GIVEN = "latent"  # what the record says when the start was a tensor given in code
NOISE_MAP_MODES = ("off", "joint", "after")   # optimise the per-layer noise maps: never,
                                               # with the latent, or after it (latent frozen)
NOISE_INITS = ("model", "random")
NOISE_LOSSES = ("same", "mse")
OPTIMIZERS = ("adam", "lbfgs")

# The paper's values of the settings a recipe may change (the recipe fields' defaults).
PAPER = {"space": "w+", "steps": 5000, "lr": 0.01, "loss": "mse+vgg", "optimizer": "adam",
         "lr_schedule": "constant",
         "w_noise": 0.0, "noise_maps": "off", "noise_steps": 0, "noise_lr": 0.01,
         "noise_init": "model", "noise_loss": "same", "noise_regularize": 0.0,
         "tune_steps": 0, "tune_lr": 3e-4}


def auto_batch_size(resolution: int) -> int:
    """Images optimised together by default: 16 at 64 px, fewer as the pixels grow (1 from
    256 px), so that memory stays about that of one 256 px image."""
    return max(1, min(16, 16 * 64 * 64 // (resolution * resolution)))


@dataclass(frozen=True)
class EmbedConfig:
    """Settings of :func:`i2s.embed` (docs/paper.md section 1). Invalid values raise
    :class:`i2s.I2SError` with a one-line reason."""

    recipe: str = "paper"             # defaults of the fields marked "recipe" (see module doc)
    space: str = None                 # recipe; "w+", "w" or "z": the variable optimised
    steps: int = None                 # recipe; Adam steps on the latent
    lr: float = None                  # recipe; Adam learning rate (the schedule's peak)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    init: str = "mean"                # "mean" (w_avg), "random" (seeded), or a latent.npz path
    seed: int = 0                     # for init "random", noise "random" and w_noise
    loss: str = None                  # recipe; "mse+vgg" (paper), "mse", "vgg", "lpips",
                                      # "mse+lpips"
    optimizer: str = None             # recipe; "adam" or "lbfgs" (latent stage)
    lr_schedule: str = None           # recipe; "constant", "projector" or "cosine" (Adam)
    w_noise: float = None             # recipe; std of noise on w (x w_std), 0 at 75% of steps
    noise_maps: str = None            # recipe; optimise the noise maps: "off", "joint", "after"
    noise_steps: int = None           # recipe; steps of the "after" noise stage
    noise_lr: float = None            # recipe; learning rate of the "after" noise stage
    noise_init: str = None            # recipe; noise maps start as the model's or random
    noise_loss: str = None            # recipe; "after" stage loss: "same" as the latent's, "mse"
    noise_regularize: float = None    # recipe; weight of the autocorrelation regulariser
    tune_steps: int = None            # recipe; steps of pivotal tuning of the generator (PTI)
    tune_lr: float = None             # recipe; its Adam learning rate
    tune_stop_lpips: float | None = 0.06   # end the tuning once LPIPS is at most this
    target_psnr: float | None = None  # stop once every image of a batch reaches this (dB)
    patience: int | None = None       # end a stage after this many steps without a 0.1% gain
    lambda_mse: float = 1.0
    lambda_perceptual: float = 1.0
    vgg_layers: tuple[str, ...] = PAPER_LAYERS
    vgg_taps: str = "post-relu"       # VGG features after ("post-relu") or before their ReLU
    vgg_resolution: int | None = 256  # area-downsample larger images to this for VGG
    noise_mode: str = "const"         # per-layer noise while optimising: "const", "random", "none"
    batch_size: int | None = None     # images optimised together; None: auto_batch_size(R)
    explicit: frozenset = dataclasses.field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        _one_of("recipe", self.recipe, tuple(RECIPES))
        # The recipe fields left unset take the recipe's value, else the paper's.
        defaults = {**PAPER, **RECIPES[self.recipe]}
        given = {k for k in PAPER if getattr(self, k) is not None}
        object.__setattr__(self, "explicit", frozenset(given) | self.explicit)
        for k in PAPER.keys() - given:
            object.__setattr__(self, k, defaults[k])
        # JSON gives lists: keep the tuple fields hashable and comparable.
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "vgg_layers", tuple(self.vgg_layers))
        _one_of("space", self.space, SPACES)
        _one_of("loss", self.loss, LOSS_KINDS)
        _one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        if self.optimizer == "lbfgs" and (self.w_noise > 0 or self.noise_maps == "joint"
                                          or self.noise_mode == "random"):
            raise I2SError("optimizer 'lbfgs' needs a deterministic loss: no w_noise, no "
                           "joint noise maps, noise_mode 'const' or 'none'")
        _one_of("noise_maps", self.noise_maps, NOISE_MAP_MODES)
        _one_of("noise_init", self.noise_init, NOISE_INITS)
        _one_of("noise_loss", self.noise_loss, NOISE_LOSSES)
        for name in ("w_noise", "noise_regularize"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise I2SError(f"{name} must be a number >= 0, got {v}")
        if not (isinstance(self.noise_lr, int | float) and math.isfinite(self.noise_lr)
                and self.noise_lr > 0):
            raise I2SError(f"noise_lr must be a positive number, got {self.noise_lr}")
        if not isinstance(self.noise_steps, int) or not 0 <= self.noise_steps <= MAX_STEPS:
            raise I2SError(f"noise_steps must be a whole number from 0 to {MAX_STEPS:,}, got "
                           f"{self.noise_steps}")
        if not isinstance(self.tune_steps, int) or not 0 <= self.tune_steps <= MAX_STEPS:
            raise I2SError(f"tune_steps must be a whole number from 0 to {MAX_STEPS:,}, got "
                           f"{self.tune_steps}")
        if not (isinstance(self.tune_lr, int | float) and math.isfinite(self.tune_lr)
                and self.tune_lr > 0):
            raise I2SError(f"tune_lr must be a positive number, got {self.tune_lr}")
        if self.tune_stop_lpips is not None and not (math.isfinite(self.tune_stop_lpips)
                                                     and self.tune_stop_lpips >= 0):
            raise I2SError(f"tune_stop_lpips must be a number >= 0 (or None), got "
                           f"{self.tune_stop_lpips}")
        if self.noise_maps == "after" and self.noise_steps == 0:
            raise I2SError("noise_maps 'after' needs noise_steps > 0")
        if self.noise_maps != "off" and self.noise_mode == "none":
            raise I2SError("optimising the noise maps needs noise_mode 'const' or 'random', "
                           "not 'none'")
        if self.target_psnr is not None and not (math.isfinite(self.target_psnr)
                                                 and self.target_psnr > 0):
            raise I2SError(f"target_psnr must be a positive number of dB, got "
                           f"{self.target_psnr}")
        if self.patience is not None and (not isinstance(self.patience, int)
                                          or self.patience < 1):
            raise I2SError(f"patience must be a whole number >= 1, got {self.patience}")
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
        return self.lambda_mse if self.loss.startswith("mse") else 0.0

    @property
    def perceptual_weight(self) -> float:
        """Weight of the perceptual term (VGG-16 features or LPIPS) in this loss (0 when the
        loss has none)."""
        return self.lambda_perceptual if self.loss != "mse" else 0.0

    @property
    def perceptual_kind(self) -> str | None:
        """"vgg" (the paper's feature distance), "lpips", or None."""
        if self.perceptual_weight == 0:
            return None
        return "lpips" if self.loss.endswith("lpips") else "vgg"

    @property
    def needs_vgg(self) -> bool:
        """Whether the loss needs VGG-16 weights (and LPIPS's, for the lpips losses)."""
        return self.perceptual_weight > 0

    @property
    def optimises_noise(self) -> bool:
        """Whether the per-layer noise maps are optimised (then each image has its own, and
        images are embedded one at a time)."""
        return self.noise_maps != "off"

    def batch_for(self, resolution: int) -> int:
        """Images per optimisation batch for a model of this resolution (1 when the noise
        maps or the generator are optimised: they are per image)."""
        if self.optimises_noise or self.tunes_generator:
            return 1
        return self.batch_size or auto_batch_size(resolution)

    @property
    def tunes_generator(self) -> bool:
        """Whether a pivotal-tuning stage tunes a copy of the generator per image."""
        return self.tune_steps > 0

    def replace(self, **changes: Any) -> EmbedConfig:
        """A copy with some fields changed; I2SError for a field that does not exist. Recipe
        fields that were never given are resolved again (a new recipe brings its values)."""
        names = {f.name for f in dataclasses.fields(self)} - {"explicit"}
        unknown = set(changes) - names
        if unknown:
            raise I2SError(f"unknown embedding setting(s): {', '.join(sorted(unknown))}")
        keep = {k: getattr(self, k) for k in names if k not in PAPER or k in self.explicit}
        return EmbedConfig(**{**keep, **changes})

    def to_dict(self) -> dict[str, Any]:
        """JSON data (tuples as lists), every setting resolved."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name != "explicit"}
        d["betas"], d["vgg_layers"] = list(self.betas), list(self.vgg_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbedConfig:
        """Read :meth:`to_dict`'s data back; I2SError for unknown fields or bad values."""
        return cls().replace(**d)


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise I2SError(f"unknown {name} {value!r}: use one of {', '.join(allowed)}")
