"""Image2StyleGAN embedding: optimise a latent so that G reproduces an image.

Implements the paper's Algorithm 1 (Abdal et al. 2019, section 1 of docs/paper.md): start from
``w_avg`` (or a random / given code), minimise MSE + VGG-16 perceptual loss with Adam
(lr 0.01, betas 0.9/0.999, eps 1e-8, 5000 steps) over the latent only; the generator is frozen.
Every setting is a field of :class:`i2s.EmbedConfig`.

Spaces (one latent convention, [N, num_ws, w_dim], for the result whatever the space):
    ``w+``  one w_dim vector per style input, [N, num_ws, w_dim] (the paper's choice);
    ``w``   one vector shared by all style inputs, [N, 1, w_dim];
    ``z``   the mapping network's input, [N, z_dim], passed through the frozen mapping.
Initialisation:
    ``mean``    ``w_avg`` in W/W+; in Z, where the prior's mean (0) is degenerate under the
                mapping's normalisation, the z among 1024 fixed samples whose w is nearest to
                ``w_avg``;
    ``random``  W/W+: each variable uniform in [-1, 1] (as in the paper); Z: standard normal;
                drawn from ``seed`` on the CPU, so identical on every device and batch size;
    a latent.npz path, or (in code) ``start=`` a tensor [N or 1, num_ws, w_dim] ([N or 1,
    z_dim] for Z) or a :class:`LatentFile`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2s.embedding.config import INIT_GIVEN, INIT_KEYWORDS, EmbedConfig
from i2s.embedding.latents import LatentFile, check_latent_fits, load_latent
from i2s.embedding.losses import EmbedLoss, PerceptualLoss
from i2s.embedding.result import EmbedResult, StepInfo
from i2s.errors import I2SError
from i2s.media.metrics import psnr
from i2s.models.common import frozen
from i2s.models.vgg16 import VGG16Features
from i2s.provenance import run_record
from i2s.weights.load import load_vgg16

Z_MEAN_CANDIDATES = 1024


def _cpu_generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


@torch.no_grad()
def z_near_mean(G, device: torch.device) -> torch.Tensor:
    """The z [1, z_dim] among 1024 fixed standard-normal samples whose w is nearest ``w_avg``."""
    z = torch.randn(Z_MEAN_CANDIDATES, G.z_dim, generator=_cpu_generator(0)).to(device)
    w = G.mapping(z)[:, 0]
    i = (w - G.w_avg.to(device)).square().sum(dim=1).argmin()
    return z[i:i + 1]


def initial_latent(G, space: str, init, n: int, seed: int,
                   device: torch.device) -> torch.Tensor:
    """Starting point of the optimised variable, shape per space (see module docstring)."""
    shape = {"w+": (n, G.num_ws, G.w_dim), "w": (n, 1, G.w_dim), "z": (n, G.z_dim)}[space]
    if isinstance(init, LatentFile):
        init = _latent_file_tensor(G, init, space)
    if isinstance(init, torch.Tensor):
        t = init.detach().float().to(device)
        if space == "w" and t.ndim == 3 and t.shape[1] == G.num_ws:
            t = t.mean(dim=1, keepdim=True)  # a W+ code as a W start: its layer average
        if t.shape[1:] != shape[1:] or t.shape[0] not in (1, n):
            raise I2SError(f"initial latent has shape {tuple(t.shape)}, space {space} "
                           f"needs {list(shape)}")
        return t.expand(shape).clone()
    if init == "mean":
        if space == "z":
            return z_near_mean(G, device).expand(shape).clone()
        return G.w_avg.detach().float().to(device).expand(shape).clone()
    if init == "random":
        gen = _cpu_generator(seed)
        if space == "z":
            t = torch.randn(shape[1:], generator=gen)
        else:
            t = torch.rand(shape[1:], generator=gen) * 2.0 - 1.0
        return t.to(device).expand(shape).clone()
    raise I2SError(f"unknown init {init!r}: use 'mean', 'random' or a latent")


def _latent_file_tensor(G, lat: LatentFile, space: str) -> torch.Tensor:
    check_latent_fits(lat, G.num_ws, G.w_dim, "initial latent")
    if space == "z":
        if lat.z is None:
            raise I2SError("initial latent has no 'z' array; a Z-space start needs a latent "
                           "embedded in space z")
        return torch.from_numpy(lat.z).reshape(1, -1)
    return torch.from_numpy(lat.w)[None]


def load_init_latent(init: str) -> LatentFile:
    """The latent file named by ``init`` (neither 'mean' nor 'random')."""
    if not Path(init).is_file():
        raise I2SError(f"init {init!r}: use 'mean', 'random' or the path of a latent.npz")
    return load_latent(init)


def latent_to_ws(G, space: str, var: torch.Tensor) -> torch.Tensor:
    """Optimised variable -> W+ codes [N, num_ws, w_dim]."""
    if space == "w+":
        return var
    if space == "w":
        return var.expand(-1, G.num_ws, -1)
    return G.mapping(var)


def embed(
    G: torch.nn.Module,
    images: torch.Tensor,
    config: EmbedConfig | None = None,
    *,
    callback: Callable[[StepInfo], None] | None = None,
    vgg: VGG16Features | None = None,
    vgg_weights: str | None = None,
    start: torch.Tensor | LatentFile | None = None,
    **overrides: Any,
) -> EmbedResult:
    """Embed images into G's latent space (Image2StyleGAN, Algorithm 1).

    Args:
        G: a generator (``mapping``, ``synthesis``, ``num_ws``, ``w_dim``, ``z_dim``, ``w_avg``).
            Its parameters get no gradient; it is left as it was.
        images: [N, 3, R, R] or [3, R, R] float in [-1, 1] at G's resolution.
        config: the settings (:class:`EmbedConfig`; default: the paper's). Any field may
            also be given as a keyword override, e.g. ``embed(G, x, steps=1000, loss="mse")``.
        callback: called with a :class:`StepInfo` after every step.
        vgg / vgg_weights: a loaded :class:`VGG16Features`, or the path of torchvision's
            ``vgg16-397923af.pth`` (default locations are searched when both are None); only
            read when the loss has a perceptual term.
        start: a starting latent given in code (overrides ``config.init``); ``init=`` a tensor
            or :class:`LatentFile` is taken as ``start`` too.
    Returns:
        :class:`EmbedResult`: W+ latents, reconstructions, loss history, the config and the
        run record. Images are optimised ``config.batch_for(R)`` at a time, each
        independently of the others.
    """
    if isinstance(overrides.get("init"), torch.Tensor | LatentFile):
        start = overrides.pop("init")
    cfg = (config or EmbedConfig()).replace(**overrides)
    if start is not None:
        cfg = cfg.replace(init=INIT_GIVEN)
    elif cfg.init not in INIT_KEYWORDS:
        start = load_init_latent(cfg.init)
    device = G.w_avg.device
    target = images.detach().float().to(device)
    if target.ndim == 3:
        target = target[None]
    expect = (G.img_channels, G.resolution, G.resolution)
    if target.ndim != 4 or tuple(target.shape[1:]) != expect or target.shape[0] == 0:
        raise I2SError(f"images must be [N, {expect[0]}, {expect[1]}, {expect[2]}], "
                       f"got {tuple(target.shape)}")
    perceptual = None
    if cfg.needs_vgg:
        vgg = vgg if vgg is not None else load_vgg16(vgg_weights, device=device)
        perceptual = PerceptualLoss(vgg, cfg.vgg_layers, taps=cfg.vgg_taps,
                                    vgg_resolution=cfg.vgg_resolution).to(device)
    batch = cfg.batch_for(G.resolution)
    parts = [_embed_batch(G, target[i:i + batch], cfg, perceptual, start, i, callback)
             for i in range(0, target.shape[0], batch)]
    return EmbedResult.concatenate(parts, cfg, run_record(G, cfg.to_dict(), device))


def _embed_batch(G, target: torch.Tensor, cfg: EmbedConfig, perceptual: PerceptualLoss | None,
                 start, first: int, callback) -> EmbedResult:
    """One batch of :func:`embed` (images ``first`` .. ``first + len(target) - 1``)."""
    n, device = target.shape[0], target.device
    criterion = EmbedLoss(target, perceptual, lambda_mse=cfg.mse_weight,
                          lambda_perceptual=cfg.perceptual_weight)
    noise_gen = None
    if cfg.noise_mode == "random":
        noise_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    history = {k: np.zeros((cfg.steps, n), dtype=np.float64)
               for k in ("loss", "mse", "perceptual", "psnr")}
    init = start if start is not None else cfg.init
    images = range(first, first + n)
    t0 = time.perf_counter()
    with frozen(G), frozen(criterion):
        var = initial_latent(G, cfg.space, init, n, cfg.seed, device).requires_grad_(True)
        opt = torch.optim.Adam([var], lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
        for step in range(cfg.steps):
            img = G.synthesis(latent_to_ws(G, cfg.space, var), noise_mode=cfg.noise_mode,
                              generator=noise_gen)
            terms = criterion(img)
            if not bool(torch.isfinite(terms["loss"]).all()):
                raise I2SError(f"the optimisation diverged at step {step + 1} (the loss is not "
                               "a finite number); lower --lr or the loss weights")
            opt.zero_grad(set_to_none=True)
            terms["loss"].sum().backward()
            opt.step()
            with torch.no_grad():
                step_psnr = psnr(terms["mse"])
                for k in ("loss", "mse", "perceptual"):
                    history[k][step] = terms[k].detach().cpu().numpy()
                history["psnr"][step] = step_psnr.cpu().numpy()
            if callback is not None:
                callback(StepInfo(step + 1, cfg.steps, terms["loss"].detach(),
                                  terms["mse"].detach(), terms["perceptual"].detach(),
                                  step_psnr, img.detach(), images))
        with torch.no_grad():
            ws = latent_to_ws(G, cfg.space, var.detach())
            final_noise = "const" if cfg.noise_mode == "random" else cfg.noise_mode
            img = G.synthesis(ws, noise_mode=final_noise)
            terms = criterion(img)
            if not (bool(torch.isfinite(ws).all()) and bool(torch.isfinite(terms["loss"]).all())):
                raise I2SError("the optimisation diverged in its last step (the latent or the "
                               "loss is not finite); lower --lr or the loss weights")
    seconds = time.perf_counter() - t0
    final = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in terms.items()}
    final["psnr"] = psnr(terms["mse"]).cpu().numpy().astype(np.float64)
    return EmbedResult(latent=ws.detach(), image=img.detach(), target=target, history=history,
                       final=final, seconds=seconds, batch_seconds=np.full(n, seconds),
                       batch_sizes=np.full(n, n), z=var.detach() if cfg.space == "z" else None)
