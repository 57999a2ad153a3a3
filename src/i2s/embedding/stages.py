"""The stages an :class:`i2s.EmbedConfig` runs (docs/paper.md sections 1 and 4).

A recipe is a sequence of stages, each a run of Adam over some of the variables (the latent,
the per-layer noise maps) with its own step count, learning rate, schedule and loss weights:

* ``latent``: the latent (and, with ``noise_maps="joint"``, the noise maps with it, as the
  projector does), ``steps`` steps of ``optimizer`` at ``lr`` under ``lr_schedule``, with
  noise on w (``w_noise``) and the noise regulariser (``noise_regularize``) when set;
* ``noise`` (``noise_maps="after"``, Image2StyleGAN++): the noise maps only, the latent
  frozen, ``noise_steps`` steps at ``noise_lr``, with ``noise_loss``;
* ``generator`` (``tune_steps > 0``, PTI): the synthesis weights of a copy of the generator,
  the latent frozen, ``tune_steps`` steps at ``tune_lr`` on the pixel MSE + the perceptual
  term (at full weight, whatever the loss), ending once LPIPS is at most ``tune_stop_lpips``
  when the perceptual term is LPIPS.
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
    generator: bool = False      # the synthesis weights (a copy of them) are optimised
    stop_perceptual: float | None = None   # end the stage once the perceptual term is <= this

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
    if cfg.tunes_generator:
        stop = cfg.tune_stop_lpips if cfg.perceptual_kind == "lpips" else None
        stages.append(Stage(
            "generator", cfg.tune_steps, cfg.tune_lr, latent=False, noise=False,
            schedule="constant", mse_weight=cfg.lambda_mse,
            perceptual_weight=cfg.perceptual_weight, generator=True, stop_perceptual=stop))
    return stages


def total_steps(cfg: EmbedConfig) -> int:
    """Steps of all stages together (the length of the loss history)."""
    return sum(s.steps for s in plan(cfg))
