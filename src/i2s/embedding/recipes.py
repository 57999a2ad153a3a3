"""Embedding recipes: named sets of defaults for :class:`i2s.EmbedConfig` (docs/paper.md
section 4), each turned into a sequence of stages by :func:`i2s.embedding.stages.plan`.

A recipe only supplies defaults: any setting given explicitly (a keyword of ``EmbedConfig``,
an option on the command line) overrides it. The run record names the recipe and the stages.

``paper``
    Image2StyleGAN (Abdal et al. 2019, Algorithm 1): W+, 5000 Adam steps at lr 0.01 from
    ``w_avg``, MSE + VGG-16 perceptual loss, the model's stored noise.
``projector``
    NVIDIA's StyleGAN2-ADA projector (Karras et al. 2020, ``projector.py``): W, 1000 steps,
    Adam lr 0.1 (betas 0.9/0.999) with a 5% linear warm-up and a cosine ramp-down over the
    last 25%; Gaussian noise added to w with std ``0.05 * w_std`` decaying quadratically to 0
    at 75% of the steps; the per-layer noise maps start random and are optimised jointly with
    w under the autocorrelation regulariser (weight 1e5, every scale down to 8x8), and are
    renormalised to zero mean and unit variance after every step; LPIPS-VGG distance with
    images larger than 256 px area-downsampled to 256.
``i2s++``
    Image2StyleGAN++ (Abdal et al. 2020): the paper's W+ optimisation, **then** the per-layer
    noise maps with the latent frozen (sequential: joint optimisation is unstable), starting
    from the model's stored noise, 1000 steps at lr 0.01 with the pixel MSE only (the
    perceptual term found the content; the noise recovers fine detail).
``pti``
    Pivotal Tuning Inversion (Roich et al. 2022): a pivot in W (the projector's schedule and
    noise on w, 450 steps at lr 0.005, as PTI's first inversion), then the synthesis
    network's weights (a copy per image) are tuned around it with Adam at lr 3e-4 for up to
    350 steps on L2 + LPIPS (weights 1 and 1), ending once LPIPS is at most 0.06. PTI uses
    AlexNet LPIPS; i2s has the VGG variant. The tuned weights are saved beside the latent
    (``tuned.safetensors``) and the edit commands take them with ``--tuned``.
``fast``
    i2s's own (measured in ``benchmarks/time_to_quality.py``; see the README): the paper's
    space, start and loss, minimised by L-BFGS (100 curvature pairs, strong-Wolfe line
    search, initial step 1) instead of Adam, for 500 loss evaluations -- a tenth of the
    paper's 5000 steps at the same cost per evaluation. On the demo faces (MSE) Adam with
    higher learning rates and cosine or projector schedules reached 31-35 dB in 500 steps,
    L-BFGS 38.1 dB, the paper's 5000 Adam steps 38.0 dB. The images of a batch share the
    line search (their losses are summed), so a batch's results differ slightly from one
    image at a time.
"""

from __future__ import annotations

from typing import Any

RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "projector": {
        "space": "w", "steps": 1000, "lr": 0.1, "loss": "lpips", "lr_schedule": "projector",
        "w_noise": 0.05, "noise_maps": "joint", "noise_init": "random",
        "noise_regularize": 1e5,
    },
    "i2s++": {
        "noise_maps": "after", "noise_steps": 1000, "noise_lr": 0.01, "noise_init": "model",
        "noise_loss": "mse",
    },
    "pti": {
        "space": "w", "steps": 450, "lr": 0.005, "lr_schedule": "projector", "w_noise": 0.05,
        "loss": "mse+lpips", "tune_steps": 350, "tune_lr": 3e-4,
    },
    "fast": {
        "steps": 500, "optimizer": "lbfgs", "lr": 1.0,
    },
}

SOURCES = {
    "paper": "Abdal, Qin, Wonka: Image2StyleGAN (ICCV 2019), Algorithm 1",
    "projector": "Karras et al.: StyleGAN2-ADA (NeurIPS 2020), projector.py",
    "i2s++": "Abdal, Qin, Wonka: Image2StyleGAN++ (CVPR 2020), W+ then noise",
    "pti": "Roich et al.: Pivotal Tuning Inversion (ACM TOG 2022), hyperparameters.py",
    "fast": "i2s: benchmarks/time_to_quality.py",
}


def recipe_defaults(name: str) -> dict[str, Any]:
    """The settings recipe ``name`` changes from the paper's (KeyError if unknown)."""
    return dict(RECIPES[name])
