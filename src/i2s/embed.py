"""Image2StyleGAN embedding: optimise a latent so that G reproduces an image.

Implements the paper's Algorithm 1 (Abdal et al. 2019, section 1 of docs/paper.md): start from
``w_avg`` (or a random / given code), minimise MSE + VGG-16 perceptual loss with Adam
(lr 0.01, betas 0.9/0.999, eps 1e-8, 5000 steps) over the latent only; the generator is frozen.

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
    a tensor [N or 1, num_ws, w_dim] (or [N or 1, z_dim] for Z), or a :class:`LatentFile`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from i2s.cpu_allocator import keep_freed_memory
from i2s.errors import I2SError
from i2s.latents import SPACES, LatentFile, check_latent_fits
from i2s.losses import LOSS_KINDS, PAPER_LAYERS, EmbedLoss, PerceptualLoss, psnr_from_mse
from i2s.vgg16 import VGG16Features, load_vgg16

Z_MEAN_CANDIDATES = 1024


@dataclass
class StepInfo:
    """What the callback receives after every optimisation step (1-based ``step``)."""

    step: int
    steps: int
    loss: torch.Tensor        # [N] total loss at this step
    mse: torch.Tensor         # [N]
    perceptual: torch.Tensor  # [N] (zeros without the perceptual term)
    psnr: torch.Tensor        # [N] dB, of the image evaluated at this step
    image: torch.Tensor       # [N, 3, R, R] in [-1, 1], detached, before this step's update


@dataclass
class EmbedResult:
    """Outcome of :func:`embed` for a batch of N images."""

    latent: torch.Tensor                 # [N, num_ws, w_dim] W+ code (for every space)
    image: torch.Tensor                  # [N, 3, R, R] reconstruction G(latent), [-1, 1]
    target: torch.Tensor                 # [N, 3, R, R] target, [-1, 1]
    history: dict[str, np.ndarray]       # "loss", "mse", "perceptual", "psnr": [steps, N]
    final: dict[str, np.ndarray]         # same keys, [N], for the returned latent
    space: str
    steps: int
    seconds: float
    z: torch.Tensor | None = None        # [N, z_dim] for space "z"
    settings: dict = field(default_factory=dict)


@contextlib.contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` on every parameter for the duration; restore afterwards."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


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
    *,
    space: str = "w+",
    steps: int = 5000,
    lr: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    init: str | torch.Tensor | LatentFile = "mean",
    seed: int = 0,
    loss: str = "mse+vgg",
    lambda_mse: float = 1.0,
    lambda_perceptual: float = 1.0,
    vgg: VGG16Features | None = None,
    vgg_weights: str | None = None,
    vgg_layers: tuple[str, ...] = PAPER_LAYERS,
    vgg_after_relu: bool = True,
    vgg_resolution: int | None = 256,
    noise_mode: str = "const",
    callback: Callable[[StepInfo], None] | None = None,
) -> EmbedResult:
    """Embed images into G's latent space (Image2StyleGAN, Algorithm 1).

    Args:
        G: a generator (``mapping``, ``synthesis``, ``num_ws``, ``w_dim``, ``z_dim``, ``w_avg``).
            Its parameters get no gradient; it is left as it was.
        images: [N, 3, R, R] or [3, R, R] float in [-1, 1] at G's resolution, on G's device.
        space: ``"w+"`` (default), ``"w"`` or ``"z"``.
        steps, lr, betas, eps: Adam settings (the paper's defaults).
        init: ``"mean"``, ``"random"`` (uses ``seed``) or a starting latent.
        loss: ``"mse+vgg"`` (paper), ``"mse"`` or ``"vgg"``; ``lambda_*`` weight the terms.
        vgg / vgg_weights: a loaded :class:`VGG16Features`, or the path of torchvision's
            ``vgg16-397923af.pth`` (default locations are searched when both are None).
        vgg_layers, vgg_after_relu, vgg_resolution: see :mod:`i2s.losses`.
        noise_mode: ``"const"`` (the model's stored noise, default), ``"random"`` (seeded,
            redrawn every step) or ``"none"``.
        callback: called with a :class:`StepInfo` after every step.
    Returns:
        :class:`EmbedResult` with the W+ latent, the reconstruction and the loss history.
    """
    if space not in SPACES:
        raise I2SError(f"unknown space {space!r}: use one of {', '.join(SPACES)}")
    if loss not in LOSS_KINDS:
        raise I2SError(f"unknown loss {loss!r}: use one of {', '.join(LOSS_KINDS)}")
    if steps < 1:
        raise I2SError(f"steps must be at least 1, got {steps}")
    if not lr > 0:
        raise I2SError(f"lr must be positive, got {lr}")
    device = G.w_avg.device
    if device.type == "cpu":
        keep_freed_memory()  # ~2x faster steps at 512-1024 px; see i2s.cpu_allocator
    target = images.detach().float().to(device)
    if target.ndim == 3:
        target = target[None]
    expect = (G.img_channels, G.resolution, G.resolution)
    if target.ndim != 4 or tuple(target.shape[1:]) != expect:
        raise I2SError(f"images must be [N, {expect[0]}, {expect[1]}, {expect[2]}], "
                       f"got {tuple(target.shape)}")
    n = target.shape[0]

    w_mse = lambda_mse if loss in ("mse+vgg", "mse") else 0.0
    w_perc = lambda_perceptual if loss in ("mse+vgg", "vgg") else 0.0
    if w_mse < 0 or w_perc < 0 or w_mse + w_perc == 0:
        raise I2SError(f"loss {loss!r} with lambda_mse={lambda_mse}, lambda_perceptual="
                       f"{lambda_perceptual} has no positive term")
    perceptual = None
    if w_perc > 0:
        vgg = vgg if vgg is not None else load_vgg16(vgg_weights, device=device)
        perceptual = PerceptualLoss(vgg, vgg_layers, after_relu=vgg_after_relu,
                                    vgg_resolution=vgg_resolution).to(device)
    criterion = EmbedLoss(target, perceptual, lambda_mse=w_mse, lambda_perceptual=w_perc)

    noise_gen = None
    if noise_mode == "random":
        noise_gen = torch.Generator(device=device).manual_seed(int(seed))
    history = {k: np.zeros((steps, n), dtype=np.float64)
               for k in ("loss", "mse", "perceptual", "psnr")}
    t0 = time.perf_counter()
    with frozen(G), frozen(criterion):
        var = initial_latent(G, space, init, n, seed, device).requires_grad_(True)
        opt = torch.optim.Adam([var], lr=lr, betas=betas, eps=eps)
        for step in range(steps):
            img = G.synthesis(latent_to_ws(G, space, var), noise_mode=noise_mode,
                              generator=noise_gen)
            terms = criterion(img)
            opt.zero_grad(set_to_none=True)
            terms["loss"].sum().backward()
            opt.step()
            with torch.no_grad():
                psnr = psnr_from_mse(terms["mse"])
                for k in ("loss", "mse", "perceptual"):
                    history[k][step] = terms[k].detach().cpu().numpy()
                history["psnr"][step] = psnr.cpu().numpy()
            if callback is not None:
                callback(StepInfo(step + 1, steps, terms["loss"].detach(), terms["mse"].detach(),
                                  terms["perceptual"].detach(), psnr, img.detach()))
        with torch.no_grad():
            ws = latent_to_ws(G, space, var.detach())
            img = G.synthesis(ws, noise_mode="const" if noise_mode == "random" else noise_mode)
            terms = criterion(img)
    seconds = time.perf_counter() - t0
    final = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in terms.items()}
    final["psnr"] = psnr_from_mse(terms["mse"]).cpu().numpy().astype(np.float64)
    settings = dict(space=space, steps=steps, lr=lr, betas=list(betas), eps=eps,
                    init=init if isinstance(init, str) else "latent", seed=seed, loss=loss,
                    lambda_mse=lambda_mse, lambda_perceptual=lambda_perceptual,
                    vgg_layers=list(vgg_layers), vgg_after_relu=vgg_after_relu,
                    vgg_resolution=vgg_resolution, noise_mode=noise_mode)
    return EmbedResult(latent=ws.detach(), image=img.detach(), target=target, history=history,
                       final=final, space=space, steps=steps, seconds=seconds,
                       z=var.detach() if space == "z" else None, settings=settings)
