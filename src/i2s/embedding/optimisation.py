"""Image2StyleGAN embedding: optimise a latent so that G reproduces an image.

Implements the paper's Algorithm 1 (Abdal et al. 2019, section 1 of docs/paper.md): start from
``w_avg`` (or a random / given code), minimise MSE + VGG-16 perceptual loss with Adam
(lr 0.01, betas 0.9/0.999, eps 1e-8, 5000 steps) over the latent only; the generator is frozen.
Every setting is a field of :class:`i2s.EmbedConfig`; its recipe (:mod:`.recipes`) may add
what followed the paper (section 4): learning-rate schedules, noise on w, optimised per-layer
noise maps (jointly or after the latent), LPIPS, early stopping. The run is a sequence of
stages (:mod:`.stages`).

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

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2s.embedding.checkpoint import (
    Checkpointing,
    PartialState,
    load_checkpoint,
    remove_checkpoint,
    run_digest,
    save_checkpoint,
)
from i2s.embedding.config import INIT_GIVEN, INIT_KEYWORDS, EmbedConfig
from i2s.embedding.latents import LatentFile, check_latent_fits, load_latent
from i2s.embedding.losses import EmbedLoss, LPIPSLoss, PerceptualLoss
from i2s.embedding.noise_maps import (
    initial_noise_maps,
    noise_regularizer,
    renormalise_,
    synthesis_with_noise,
)
from i2s.embedding.result import EmbedResult, StepInfo
from i2s.embedding.schedules import lr_factor, w_noise_factor, w_std
from i2s.embedding.stages import Stage, plan
from i2s.errors import I2SError
from i2s.media.metrics import psnr
from i2s.models.common import frozen
from i2s.models.lpips import LPIPS
from i2s.models.vgg16 import VGG16Features
from i2s.provenance import run_record
from i2s.weights.load import find_lpips_weights, load_vgg16, read_lpips_lin

PATIENCE_GAIN = 1e-3   # a stage's loss must fall by 0.1% to count as progress
LBFGS_HISTORY = 100    # curvature pairs kept by L-BFGS (100 beat 20 and 5 on the demo faces)

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
    lpips: LPIPS | None = None,
    lpips_weights: str | None = None,
    start: torch.Tensor | LatentFile | None = None,
    mask: torch.Tensor | None = None,
    checkpoint: Checkpointing | None = None,
    image_ids: Sequence[int] | None = None,
    **overrides: Any,
) -> EmbedResult:
    """Embed images into G's latent space (Image2StyleGAN, Algorithm 1, and the recipes that
    followed it).

    Args:
        G: a generator (``mapping``, ``synthesis``, ``num_ws``, ``w_dim``, ``z_dim``, ``w_avg``).
            Its parameters get no gradient; it is left as it was.
        images: [N, 3, R, R] or [3, R, R] float in [-1, 1] at G's resolution.
        config: the settings (:class:`EmbedConfig`; default: the paper's). Any field may
            also be given as a keyword override, e.g. ``embed(G, x, steps=1000, loss="mse")``
            or ``embed(G, x, recipe="projector")``.
        callback: called with a :class:`StepInfo` after every step.
        vgg / vgg_weights: a loaded :class:`VGG16Features`, or the path of torchvision's
            ``vgg16-397923af.pth`` (default locations are searched when both are None); only
            read when the loss has a perceptual term.
        lpips / lpips_weights: a loaded :class:`i2s.models.lpips.LPIPS`, or the path of the
            ``lpips`` project's ``vgg.pth`` (default: the registry's download); read for the
            lpips losses. The final LPIPS distance is measured whenever an LPIPS model is at
            hand (given, loaded for the loss, or built from ``vgg`` and the default weights).
        start: a starting latent given in code (overrides ``config.init``); ``init=`` a tensor
            or :class:`LatentFile` is taken as ``start`` too.
        mask: [R, R], [1 or N, 1, R, R] in [0, 1]: the loss only where it is set
            (Image2StyleGAN++'s masked embedding); None: everywhere.
        checkpoint: save resumable state every ``checkpoint.every`` steps and on Ctrl-C, and
            (with ``checkpoint.resume``) continue from it: the result equals an
            uninterrupted run (:mod:`i2s.embedding.checkpoint`). The files are removed once
            every batch has finished.
        image_ids: one integer per image naming its random stream (the noise on w); default
            its position 0..N-1. Give ids that follow the image (e.g. from its content hash)
            to get the same result whatever batch or process it is embedded in.
    Returns:
        :class:`EmbedResult`: W+ latents (and noise maps when optimised), reconstructions, loss
        history, the config and the run record. Images are optimised ``config.batch_for(R)`` at
        a time, each independently of the others.
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
    mask = check_mask(mask, target.shape[0], G.resolution, device)
    perceptual = None
    if cfg.needs_vgg:
        vgg = vgg if vgg is not None else load_vgg16(vgg_weights, device=device, download=True)
        if cfg.perceptual_kind == "lpips":
            if lpips is None:
                lin = read_lpips_lin(find_lpips_weights(lpips_weights, download=True))
                lpips = LPIPS(vgg, lin).eval().to(device)
            perceptual = LPIPSLoss(lpips, cfg.vgg_resolution).to(device)
        else:
            perceptual = PerceptualLoss(vgg, cfg.vgg_layers, taps=cfg.vgg_taps,
                                        vgg_resolution=cfg.vgg_resolution).to(device)
    metric, metric_note = load_lpips_metric(lpips, vgg, device, lpips_weights, vgg_weights)
    scale = w_std(G) if any(s.w_noise > 0 for s in plan(cfg)) else 0.0
    ids = list(range(target.shape[0])) if image_ids is None else [int(i) for i in image_ids]
    if len(ids) != target.shape[0]:
        raise I2SError(f"image_ids: {len(ids)} ids for {target.shape[0]} images")
    batch = cfg.batch_for(G.resolution)
    parts = [_embed_batch(G, target[i:i + batch], cfg, perceptual, start, i, callback,
                          mask if mask is None or mask.shape[0] == 1 else mask[i:i + batch],
                          scale, metric, checkpoint, ids[i:i + batch])
             for i in range(0, target.shape[0], batch)]
    if checkpoint is not None:
        for i in range(0, target.shape[0], batch):
            remove_checkpoint(checkpoint.path(i))
    record = run_record(G, cfg.to_dict(), device)
    record["stages"] = [s.to_dict() for s in plan(cfg)]
    if metric_note:
        record["lpips_metric"] = metric_note
    return EmbedResult.concatenate(parts, cfg, record)


def check_mask(mask: torch.Tensor | None, n: int, resolution: int,
               device: torch.device) -> torch.Tensor | None:
    """A loss mask as [1 or N, 1, R, R] float in [0, 1] on ``device``; I2SError otherwise."""
    if mask is None:
        return None
    m = mask.detach().float().to(device)
    if m.ndim == 2:
        m = m[None, None]
    if m.ndim != 4 or m.shape[1] != 1 or m.shape[0] not in (1, n) or \
            tuple(m.shape[2:]) != (resolution, resolution):
        raise I2SError(f"mask must be [{resolution}, {resolution}] or [1 or {n}, 1, "
                       f"{resolution}, {resolution}], got {tuple(mask.shape)}")
    if not bool(torch.isfinite(m).all()) or float(m.min()) < 0 or float(m.max()) > 1:
        raise I2SError("mask values must be in [0, 1]")
    if bool((m.flatten(1).sum(dim=1) == 0).any()):
        raise I2SError("the mask is empty (all black): there is nothing to fit")
    return m


class _Stop(Exception):
    """A stopping rule fired: the target PSNR (``everything``: no further stage) or the
    patience (this stage ends)."""

    def __init__(self, everything: bool) -> None:
        super().__init__()
        self.everything = everything


class _BudgetSpent(Exception):
    """An L-BFGS line search asked for an evaluation beyond the stage's budget."""


def _run_adam(params: list[torch.Tensor], stage: Stage, cfg: EmbedConfig, evaluate,
              renormalise: dict[str, torch.Tensor] | None, run: _Progress) -> None:
    """``stage.steps`` Adam steps with the stage's schedule; ``renormalise``: noise maps to
    renormalise after every step (the projector). Starts at ``run.done`` with the Adam state
    of ``run.adam_state`` (a resumed run) and reports every finished step to ``run``."""
    opt = torch.optim.Adam(params, lr=stage.lr, betas=cfg.betas, eps=cfg.eps)
    if run.adam_state is not None:
        for k, p in enumerate(params):
            state = {key[len(f"{k}."):]: v.to(p.device) for key, v in run.adam_state.items()
                     if key.startswith(f"{k}.")}
            if state:
                opt.state[p] = state
        run.adam_state = None
    run.opt = opt
    for i in range(run.done, stage.steps):
        t = i / stage.steps
        for group in opt.param_groups:
            group["lr"] = stage.lr * lr_factor(stage.schedule, t)
        opt.zero_grad(set_to_none=True)
        evaluate(stage, t)
        run.updating = True
        opt.step()
        if renormalise is not None:
            renormalise_(renormalise)
        run.updating = False
        run.after_step(i + 1)


def _run_lbfgs(params: list[torch.Tensor], stage: Stage, evaluate) -> None:
    """L-BFGS (history :data:`LBFGS_HISTORY`, strong-Wolfe line search) for at most
    ``stage.steps`` evaluations of the loss (each one forward and backward, as an Adam step);
    ``stage.lr`` is its initial step length."""
    opt = torch.optim.LBFGS(params, lr=stage.lr, max_iter=stage.steps, max_eval=stage.steps,
                            history_size=LBFGS_HISTORY, line_search_fn="strong_wolfe",
                            tolerance_grad=0.0, tolerance_change=0.0)
    count = [0]
    best: dict = {"loss": float("inf"), "params": None}

    def closure() -> torch.Tensor:
        if count[0] >= stage.steps:
            # torch's strong-Wolfe search may ask for one evaluation past max_eval
            raise _BudgetSpent
        opt.zero_grad(set_to_none=True)
        count[0] += 1
        loss = evaluate(stage, (count[0] - 1) / stage.steps)
        if float(loss) < best["loss"]:
            best["loss"], best["params"] = float(loss), [p.detach().clone() for p in params]
        return loss

    try:
        opt.step(closure)
    except _BudgetSpent:  # stopped inside a line search: keep the best point evaluated
        with torch.no_grad():
            for p, b in zip(params, best["params"], strict=True):
                p.copy_(b)


def load_lpips_metric(lpips: LPIPS | None, vgg: VGG16Features | None, device: torch.device,
                      lpips_weights: str | None = None, vgg_weights: str | None = None
                      ) -> tuple[LPIPS | None, str]:
    """The LPIPS model for measuring the final reconstruction (``lpips`` when given, else
    built from ``vgg`` or the VGG-16 file and the calibration file), and why there is none
    (or ""). Callers that embed many times load it once and pass it to :func:`embed`."""
    if lpips is not None:
        return lpips, ""
    try:
        lin = read_lpips_lin(find_lpips_weights(lpips_weights))
        vgg = vgg if vgg is not None else load_vgg16(vgg_weights, device=device)
    except I2SError as e:
        return None, f"not measured: {e}"
    return LPIPS(vgg, lin).eval().to(device), ""


class _Progress:
    """Where a batch's run stands, for its checkpoints: the last finished step and what is
    needed to continue from there (see :mod:`i2s.embedding.checkpoint`)."""

    def __init__(self, ck: Checkpointing | None, path: Path | None, save: Callable[[], None],
                 rng_of: Callable[[], list[torch.Tensor]],
                 counters: Callable[[], tuple[int, float, int]]) -> None:
        self.ck, self.path, self._save = ck, path, save
        self.rng_of, self.counters = rng_of, counters  # generator states; (step, best, since)
        self.stage = 0           # index of the stage that runs
        self.done = 0            # steps of that stage finished
        self.step = 0            # steps finished, all stages together
        self.best, self.since = float("inf"), 0
        self.rng: list[torch.Tensor] = []    # generator states after the last finished step
        self.fixed: dict[str, torch.Tensor] | None = None  # L-BFGS: the stage's start
        self.opt: torch.optim.Optimizer | None = None
        self.adam_state: dict[str, torch.Tensor] | None = None  # to restore (resumed run)
        self.updating = False    # inside an optimiser update: no consistent state to save

    def after_step(self, done: int) -> None:
        self.done = done
        self.step, self.best, self.since = self.counters()
        self.rng = self.rng_of()
        if self.ck is not None and self.ck.every and self.step % self.ck.every == 0:
            self._save()


def _embed_batch(G, target: torch.Tensor, cfg: EmbedConfig,
                 perceptual: PerceptualLoss | LPIPSLoss | None, start, first: int, callback,
                 mask: torch.Tensor | None, scale: float, metric: LPIPS | None,
                 ck: Checkpointing | None = None,
                 ids: list[int] | None = None) -> EmbedResult:
    """One batch of :func:`embed` (images ``first`` .. ``first + len(target) - 1``), every
    stage of :func:`i2s.embedding.stages.plan`; with ``ck``, saved as it goes and continued
    from an earlier checkpoint."""
    n, device = target.shape[0], target.device
    criterion = EmbedLoss(target, perceptual, lambda_mse=cfg.mse_weight,
                          lambda_perceptual=cfg.perceptual_weight, mask=mask)
    noise_gen = None
    if cfg.noise_mode == "random" and not cfg.optimises_noise:
        noise_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    # noise on w: one stream per image, so an image's result does not depend on its batch
    ids = list(range(first, first + n)) if ids is None else ids
    w_gens = [_cpu_generator(((cfg.seed + 1) * 1_000_003 + i) % 2**63) for i in ids]
    gens = w_gens + ([noise_gen] if noise_gen is not None else [])
    stages = plan(cfg)
    total = sum(s.steps for s in stages)
    history = {k: np.full((total, n), np.nan) for k in ("loss", "mse", "perceptual", "psnr")}
    init = start if start is not None else cfg.init
    images = range(first, first + n)
    path = ck.path(first) if ck is not None else None
    start_tensor = (init if isinstance(init, torch.Tensor) else torch.from_numpy(init.w)
                    if isinstance(init, LatentFile) else None)
    digest = run_digest(G, cfg, target, mask, start_tensor, first) if ck is not None else ""
    saved = load_checkpoint(path, digest, cfg.to_dict()) if ck is not None and ck.resume \
        else None
    seconds_before = float(saved.meta["seconds"]) if saved is not None else 0.0
    t0 = time.perf_counter()
    with frozen(G), frozen(criterion):
        var = initial_latent(G, cfg.space, init, n, cfg.seed, device)
        maps = initial_noise_maps(G, cfg.noise_init, cfg.seed) if cfg.optimises_noise else None

        gen = G               # a copy of G once a generator stage starts (PTI)

        def synthesise(ws: torch.Tensor) -> torch.Tensor:
            if maps is not None:
                return synthesis_with_noise(gen, ws, maps)
            return gen.synthesis(ws, noise_mode=cfg.noise_mode, generator=noise_gen)

        state = {"step": 0, "best": float("inf"), "since": 0}

        def save() -> None:
            """Write the checkpoint of the last finished step (and the partial latents)."""
            fixed = run.fixed or {}
            tensors = {"var": fixed.get("var", var)}
            for k, m in (maps or {}).items():
                tensors[f"map.{k}"] = fixed.get(f"map.{k}", m)
            if gen is not G:
                tensors.update({f"gen.{k}": v for k, v in gen.synthesis.named_parameters()})
            if run.opt is not None and run.fixed is None:
                group = run.opt.param_groups[0]["params"]
                for k, p in enumerate(group):
                    for key, v in run.opt.state.get(p, {}).items():
                        if isinstance(v, torch.Tensor):
                            tensors[f"adam.{k}.{key}"] = v
            for j, g in enumerate(run.rng):
                tensors[f"rng.{j}"] = g
            for k, h in history.items():
                tensors[f"history.{k}"] = torch.from_numpy(h[:run.step].copy())
            spent = seconds_before + time.perf_counter() - t0
            save_checkpoint(path, tensors, {
                "digest": digest, "settings": cfg.to_dict(), "stage": run.stage,
                "done": run.done, "step": run.step, "best": run.best, "since": run.since,
                "seconds": spent, "images": n, "first": first})
            if ck.on_save is not None:
                with torch.no_grad():
                    ws = latent_to_ws(G, cfg.space, tensors["var"].detach())
                last = history["psnr"][run.step - 1] if run.step else np.full(n, np.nan)
                ck.on_save(PartialState(ws.detach().clone(), run.step, total, last.copy(),
                                        images, spent, path))

        run = _Progress(ck, path, save, lambda: [g.get_state() for g in gens],
                        lambda: (state["step"], state["best"], state["since"]))
        run.rng = run.rng_of()
        if saved is not None:
            meta = saved.meta
            with torch.no_grad():
                var.copy_(saved.tensors["var"].to(device))
                for k, m in (maps or {}).items():
                    m.copy_(saved.tensors[f"map.{k}"].to(device))
            for j, g in enumerate(gens):
                g.set_state(saved.tensors[f"rng.{j}"])
            for k in history:
                h = saved.tensors[f"history.{k}"].numpy()
                history[k][:len(h)] = h
            run.stage, run.done, run.step = int(meta["stage"]), int(meta["done"]), \
                int(meta["step"])
            run.best, run.since = float(meta["best"]), int(meta["since"])
            state.update(step=run.step, best=run.best, since=run.since)
            run.adam_state = saved.prefixed("adam.") or None
            run.rng = run.rng_of()

        def evaluate(stage: Stage, t: float) -> torch.Tensor:
            """One forward and backward at progress ``t`` of ``stage``: records the step,
            calls back, and raises _Stop when a stopping rule fires. Returns the objective."""
            v = var
            if stage.w_noise > 0:
                sd = scale * stage.w_noise * w_noise_factor(t)
                draws = [torch.randn(var.shape[1:], generator=g) for g in w_gens]
                v = var + torch.stack(draws).to(device) * sd
            img = synthesise(latent_to_ws(G, cfg.space, v))
            terms = criterion(img, perceptual=stage.perceptual_weight > 0)
            loss = stage.mse_weight * terms["mse"] + stage.perceptual_weight * terms["perceptual"]
            objective = loss.sum()
            if stage.noise_regularize > 0 and maps is not None:
                objective = objective + stage.noise_regularize * noise_regularizer(maps)
            step = state["step"]
            if not bool(torch.isfinite(objective)):
                raise I2SError(f"the optimisation diverged at step {step + 1} (the loss is "
                               "not a finite number); lower --lr or the loss weights")
            objective.backward()
            with torch.no_grad():
                step_psnr = psnr(terms["mse"])
                history["loss"][step] = loss.detach().cpu().numpy()
                for k in ("mse", "perceptual"):
                    history[k][step] = terms[k].detach().cpu().numpy()
                history["psnr"][step] = step_psnr.cpu().numpy()
            state["step"] = step + 1
            if callback is not None:
                callback(StepInfo(step + 1, total, loss.detach(), terms["mse"].detach(),
                                  terms["perceptual"].detach(), step_psnr, img.detach(),
                                  images, stage.name))
            if cfg.target_psnr is not None and bool((step_psnr >= cfg.target_psnr).all()):
                raise _Stop(everything=True)
            if stage.stop_perceptual is not None and bool(
                    (terms["perceptual"] <= stage.stop_perceptual).all()):
                raise _Stop(everything=False)
            if cfg.patience is not None:
                value = float(objective.detach())
                if value < state["best"] * (1 - PATIENCE_GAIN):
                    state["best"], state["since"] = value, 0
                else:
                    state["since"] += 1
                    if state["since"] >= cfg.patience:
                        raise _Stop(everything=False)
            return objective.detach()

        try:
            for index, stage in enumerate(stages):
                if index < run.stage:
                    continue
                if index > run.stage:
                    run.stage, run.done, run.opt = index, 0, None
                var.requires_grad_(stage.latent)
                for m in (maps or {}).values():
                    m.requires_grad_(stage.noise)
                params = [var] * stage.latent + list((maps or {}).values()) * stage.noise
                if stage.generator:
                    gen = copy.deepcopy(G)
                    tuned = saved.prefixed("gen.") if saved is not None else {}
                    if tuned:
                        with torch.no_grad():
                            for k, v in gen.synthesis.named_parameters():
                                v.copy_(tuned[k].to(v.device))
                    gen.synthesis.requires_grad_(True)
                    params += list(gen.synthesis.parameters())
                if run.done == 0:
                    state["best"], state["since"] = float("inf"), 0
                run.fixed = None
                try:
                    if stage.optimizer == "lbfgs":
                        # continued from its start: keep that start for the checkpoints
                        run.done, run.opt = 0, None
                        run.fixed = {"var": var.detach().clone(), **{
                            f"map.{k}": m.detach().clone() for k, m in (maps or {}).items()}}
                        run.step, run.best, run.since = (state["step"], state["best"],
                                                         state["since"])
                        run.rng = run.rng_of()
                        if ck is not None and ck.every:
                            save()
                        _run_lbfgs(params, stage, evaluate)
                    else:
                        _run_adam(params, stage, cfg, evaluate,
                                  maps if stage.noise and stage.noise_regularize > 0 else None,
                                  run)
                except _Stop as stop:
                    if stop.everything:
                        break
        except KeyboardInterrupt:
            if ck is not None and not run.updating:
                save()
            raise
        step = state["step"]
        var.requires_grad_(False)
        for m in (maps or {}).values():
            m.requires_grad_(False)
        gen.requires_grad_(False)
        with torch.no_grad():
            ws = latent_to_ws(G, cfg.space, var.detach())
            if maps is not None:
                img = synthesis_with_noise(gen, ws, maps)
            else:
                final_noise = "const" if cfg.noise_mode == "random" else cfg.noise_mode
                img = gen.synthesis(ws, noise_mode=final_noise)
            terms = criterion(img)
            if not (bool(torch.isfinite(ws).all()) and bool(torch.isfinite(terms["loss"]).all())):
                raise I2SError("the optimisation diverged in its last step (the latent or the "
                               "loss is not finite); lower --lr or the loss weights")
            final = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in terms.items()}
            final["psnr"] = psnr(terms["mse"]).cpu().numpy().astype(np.float64)
            if metric is not None:
                final["lpips"] = metric(img, target).cpu().numpy().astype(np.float64)
    seconds = seconds_before + time.perf_counter() - t0
    return EmbedResult(latent=ws.detach(), image=img.detach(), target=target,
                       history={k: v[:step] for k, v in history.items()},
                       final=final, seconds=seconds, batch_seconds=np.full(n, seconds),
                       batch_sizes=np.full(n, n), z=var.detach() if cfg.space == "z" else None,
                       noise=None if maps is None else
                       {k: m.detach()[None].expand(n, -1, -1) for k, m in maps.items()},
                       tuned=None if gen is G else [{
                           f"synthesis.{k}": v.detach().clone()
                           for k, v in gen.synthesis.named_parameters()}],
                       steps_run=np.full(n, step))
