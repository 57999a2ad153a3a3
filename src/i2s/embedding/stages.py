"""The stages an :class:`i2s.EmbedConfig` runs (docs/paper.md sections 1 and 4).

A recipe is a sequence of stages, each a run of Adam over some of the variables (the latent,
the per-layer noise maps) with its own step count, learning rate, schedule and loss weights:

* ``latent``: the latent (and, with ``noise_maps="joint"``, the noise maps with it, as the
  projector does), ``steps`` steps of ``optimizer`` at ``lr`` under ``lr_schedule``, with
  noise on w (``w_noise``) and the noise regulariser (``noise_regularize``) when set;
* ``noise`` (``noise_maps="after"``, Image2StyleGAN++): the noise maps only, the latent
  frozen, ``noise_steps`` steps at ``noise_lr``, with ``noise_loss``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from i2s.embedding.config import EmbedConfig


@dataclass(frozen=True)
class Stage:
    """One run of Adam in an embedding."""

    name: str
    steps: int
    lr: float
    latent: bool                 # the latent is optimised
    noise: bool                  # the noise maps are optimised
    schedule: str                # see i2s.embedding.schedules
    mse_weight: float
    perceptual_weight: float
    w_noise: float = 0.0         # std of the noise on w, times w_std (latent stages)
    noise_regularize: float = 0.0
    optimizer: str = "adam"      # "adam" or "lbfgs" (steps = loss evaluations)

    def to_dict(self) -> dict:
        return asdict(self)


def plan(cfg: EmbedConfig) -> list[Stage]:
    """The stages of ``cfg``, in order."""
    joint = cfg.noise_maps == "joint"
    stages = [Stage("latent+noise" if joint else "latent", cfg.steps, cfg.lr, latent=True,
                    noise=joint, schedule=cfg.lr_schedule, mse_weight=cfg.mse_weight,
                    perceptual_weight=cfg.perceptual_weight, w_noise=cfg.w_noise,
                    noise_regularize=cfg.noise_regularize if joint else 0.0,
                    optimizer=cfg.optimizer)]
    if cfg.noise_maps == "after":
        mse_only = cfg.noise_loss == "mse"
        stages.append(Stage(
            "noise", cfg.noise_steps, cfg.noise_lr, latent=False, noise=True,
            schedule="constant", mse_weight=cfg.lambda_mse if mse_only else cfg.mse_weight,
            perceptual_weight=0.0 if mse_only else cfg.perceptual_weight,
            noise_regularize=cfg.noise_regularize))
    return stages


def total_steps(cfg: EmbedConfig) -> int:
    """Steps of all stages together (the length of the loss history)."""
    return sum(s.steps for s in plan(cfg))
