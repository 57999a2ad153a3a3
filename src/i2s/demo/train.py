"""Train the ``demo`` StyleGAN2 (64 px faces) by distilling the DigiFace DCGAN teacher.

Method: the student is an unmodified :class:`~i2s.models.stylegan2.StyleGAN2Generator` (mapping
network, per-layer styles, noise) with ``z_dim = 100``. For every training z the teacher is run
on ``z * sqrt(100) / |z|`` -- the point of the teacher's typical shell in the direction the
student's mapping network sees (it normalises z's second moment), so that the map being learnt
is a function of the student's input -- and the student regresses the teacher's image with a
pixel L1 + Laplacian-pyramid L1 loss. Adam with StyleGAN2's equalised learning rate, an EMA
of the weights (the shipped ``G_ema``) and a running ``w_avg`` as in StyleGAN2-ADA.

The mapping network keeps StyleGAN's learning-rate multiplier of 0.01 in its weight scale (it is
part of the architecture and of the checkpoint format), but its Adam learning rate is raised by
``mapping_lr_boost`` (100) so that it learns at the same effective rate as the synthesis
network: unlike a GAN, a regression must carry the identity of every z through the mapping,
and with the 0.01 rate the run stalls at the mean face (measured: 13.4 dB vs 14.8 dB training
PSNR after 250 steps at lr 0.002; lr 0.005 is faster still).

Stage 2 (optional, :class:`AdversarialConfig`; ``i2s train-demo`` runs it): pixel regression
alone converges to blurred faces (the conditional mean of what the student cannot yet tell
apart), so after the distillation steps the generator is fine-tuned with the same loss plus a
non-saturating GAN loss against a small discriminator (:mod:`i2s.demo.discriminator`) that sees the
teacher's images as real, with lazy R1 regularisation, as in StyleGAN2. Its batches continue
the distillation's z seeds.

Reproducible: the z of batch ``k`` comes from seed ``Z_SEED_BASE + k`` and the training noise
from seed ``NOISE_SEED_BASE + k``, so a resumed run draws exactly what an uninterrupted one
would. Held-out faces use single-image seeds below ``Z_SEED_BASE``
(:func:`i2s.demo.teacher.teacher_z`).
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

import torch
import torch.nn.functional as F

from i2s.demo import teacher as dcgan
from i2s.demo.discriminator import Discriminator
from i2s.errors import I2SError
from i2s.media.files import atomic_path, sha256_file, write_text_atomic
from i2s.media.grid import image_grid
from i2s.media.images import save_image, to_uint8
from i2s.media.metrics import psnr
from i2s.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from i2s.provenance import run_record
from i2s.weights.generator_file import save_generator

Z_SEED_BASE = 1_000_000_000
NOISE_SEED_BASE = 2_000_000_000
SAMPLE_SEEDS = list(range(900, 916))   # progress grids (never training seeds)


@dataclass(frozen=True)
class TrainDemoConfig:
    """Everything that determines the trained weights."""

    steps: int = 5000
    batch: int = 32
    lr: float = 0.005
    mapping_lr_boost: float = 100.0    # mapping's Adam lr = lr * this (see module docstring)
    betas: tuple[float, float] = (0.9, 0.99)
    lr_final_fraction: float = 0.05    # cosine decay over the last half to this fraction
    ema_kimg: float = 10.0             # EMA half-life in thousands of images
    ema_rampup: float = 0.05
    w_avg_beta: float = 0.995
    channel_base: int = 4096
    channel_max: int = 256
    w_dim: int = 512
    mapping_layers: int = 8
    pyramid_levels: int = 4

    def generator_config(self) -> StyleGAN2Config:
        return StyleGAN2Config(resolution=dcgan.RESOLUTION, z_dim=dcgan.Z_DIM, w_dim=self.w_dim,
                               channel_base=self.channel_base, channel_max=self.channel_max,
                               mapping_layers=self.mapping_layers)

    def to_dict(self) -> dict:
        return _json_dict(self)


@dataclass(frozen=True)
class AdversarialConfig:
    """Stage 2: distillation loss + ``adv_weight`` x non-saturating GAN loss."""

    steps: int = 1500
    adv_weight: float = 0.1
    lr: float = 0.002                  # generator (equalised learning rate)
    d_lr: float = 0.0002               # discriminator (plain parametrisation)
    betas: tuple[float, float] = (0.5, 0.99)
    r1_gamma: float = 1.0
    r1_every: int = 16                 # lazy R1 (the penalty is scaled by this)
    d_channel_base: int = 2048
    d_channel_max: int = 256

    def to_dict(self) -> dict:
        return _json_dict(self)


def _json_dict(cfg) -> dict:
    """A config dataclass as plain JSON data (tuples as lists), as checkpoints store it."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def pyramid_l1(x: torch.Tensor, y: torch.Tensor, levels: int) -> torch.Tensor:
    """Mean L1 of every Laplacian-pyramid band plus the low-pass residual; x, y [N, C, H, W]."""
    loss = x.new_zeros(())
    for _ in range(levels):
        xd, yd = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        up = dict(scale_factor=2, mode="bilinear", align_corners=False)
        loss = loss + (x - F.interpolate(xd, **up) - y + F.interpolate(yd, **up)).abs().mean()
        x, y = xd, yd
    return loss + (x - y).abs().mean()


def distillation_loss(fake: torch.Tensor, real: torch.Tensor, levels: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
    """Pixel L1 + Laplacian-pyramid L1 between student and teacher images [N, 3, 64, 64]."""
    l1 = (fake - real).abs().mean()
    lap = pyramid_l1(fake, real, levels)
    with torch.no_grad():
        mse01 = ((fake - real) / 2).square().mean().clamp(min=1e-12)
    return l1 + lap, {"l1": l1.item(), "pyramid": lap.item(), "psnr": psnr(mse01).item()}


def teacher_targets(teacher: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The teacher's image for the student's normalised z: z rescaled to norm sqrt(z_dim)."""
    zn = z * (z.shape[1] ** 0.5) / z.norm(dim=1, keepdim=True)
    with torch.no_grad():
        return teacher(zn)


def batch_z(step: int, batch: int) -> torch.Tensor:
    return torch.randn(batch, dcgan.Z_DIM, generator=torch.Generator().manual_seed(
        Z_SEED_BASE + step))


def learning_rate(cfg, step: int) -> float:
    """``cfg.lr`` for the first half of ``cfg.steps``, then cosine decay to
    ``cfg.lr_final_fraction`` of it (any config with those three fields)."""
    half = cfg.steps // 2
    if step < half:
        return cfg.lr
    t = (step - half) / max(1, cfg.steps - half)
    f = cfg.lr_final_fraction
    return cfg.lr * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, done: int, cfg) -> None:
    """StyleGAN2-ADA's weight EMA after ``done`` steps of ``cfg.batch``: half-life
    ``cfg.ema_kimg`` thousand samples, ramped up as ``done * batch * cfg.ema_rampup``;
    buffers are copied."""
    ema_nimg = min(cfg.ema_kimg * 1000, done * cfg.batch * cfg.ema_rampup)
    beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


@torch.no_grad()
def compute_w_avg(G: StyleGAN2Generator, samples: int = 20000, seed: int = 123) -> torch.Tensor:
    """Mean mapping output over ``samples`` z from a fixed seed, [w_dim]."""
    z = torch.randn(samples, G.z_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([G.mapping(c)[:, 0] for c in z.split(1000)]).mean(0)


def _sample_grid(G_ema, teacher, path: Path) -> None:
    z = dcgan.teacher_z(SAMPLE_SEEDS)
    with torch.no_grad():
        rows = torch.cat([teacher_targets(teacher, z), G_ema(z, noise_mode="const")])
    save_image(path, image_grid(to_uint8(rows), cols=len(SAMPLE_SEEDS)))


class Trainer:
    """Runs (or resumes) a distillation run in ``out``; see the module docstring."""

    def __init__(self, cfg: TrainDemoConfig, out: Path, teacher: torch.nn.Module,
                 teacher_sha256: str, log: Callable[[str], None] | None = None,
                 adv: AdversarialConfig | None = None) -> None:
        self.cfg, self.out, self.teacher = cfg, Path(out), teacher
        self.log = log or (lambda line: None)
        self.adv = adv if adv is not None and adv.steps > 0 else None
        self.teacher_sha256 = teacher_sha256
        torch.manual_seed(0)  # initial weights
        self.G = StyleGAN2Generator(cfg.generator_config()).train().requires_grad_(True)
        # Noise and const buffers are drawn with torch's global generator at construction.
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt = self._generator_adam(cfg.lr, cfg.betas)
        self.step = 0
        self.adv_step = 0
        self.seconds = 0.0
        if self.adv is not None:
            torch.manual_seed(1)
            self.D = Discriminator(dcgan.RESOLUTION, self.adv.d_channel_base,
                                   self.adv.d_channel_max).train()
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.adv.d_lr,
                                          betas=self.adv.betas, eps=1e-8)
            self.opt_g = self._generator_adam(self.adv.lr, self.adv.betas)
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.out / "checkpoint.pt"
        if self.checkpoint_path.is_file():
            self._resume()

    def _generator_adam(self, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
        """Adam over G's parameters; the mapping network's group learns ``mapping_lr_boost``
        times faster (each group keeps its factor as ``boost``)."""
        mapping = [p for n, p in self.G.named_parameters() if n.startswith("mapping.")]
        synthesis = [p for n, p in self.G.named_parameters() if not n.startswith("mapping.")]
        opt = torch.optim.Adam([{"params": synthesis, "boost": 1.0},
                                {"params": mapping, "boost": self.cfg.mapping_lr_boost}],
                               lr=lr, betas=betas, eps=1e-8)
        for group in opt.param_groups:
            group["lr"] = lr * group["boost"]
        return opt

    def _resume(self) -> None:
        ck = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        if ck["config"] != self.cfg.to_dict():
            raise I2SError(f"{self.checkpoint_path} was made with other settings; "
                           "use the same options or another --out")
        self.G.load_state_dict(ck["G"])
        self.G_ema.load_state_dict(ck["G_ema"])
        self.opt.load_state_dict(ck["opt"])
        self.step, self.seconds = ck["step"], ck["seconds"]
        if "adv_config" in ck:
            if self.adv is None or ck["adv_config"] != self.adv.to_dict():
                raise I2SError(f"{self.checkpoint_path} was made with other adversarial "
                               "settings; use the same options or another --out")
            self.D.load_state_dict(ck["D"])
            self.opt_d.load_state_dict(ck["opt_d"])
            self.opt_g.load_state_dict(ck["opt_g"])
            self.adv_step = ck["adv_step"]
        self.log(f"resumed at step {self.step} + {self.adv_step} adversarial "
                 f"({self.seconds / 60:.1f} min done)")

    def _save_checkpoint(self) -> None:
        ck = {"config": self.cfg.to_dict(), "G": self.G.state_dict(),
              "G_ema": self.G_ema.state_dict(), "opt": self.opt.state_dict(),
              "step": self.step, "seconds": self.seconds}
        if self.adv is not None and self.adv_step > 0:
            ck.update(adv_config=self.adv.to_dict(),
                      D=self.D.state_dict(), opt_d=self.opt_d.state_dict(),
                      opt_g=self.opt_g.state_dict(), adv_step=self.adv_step)
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(ck, tmp)

    def train_step(self) -> dict[str, float]:
        cfg, G = self.cfg, self.G
        z = batch_z(self.step, cfg.batch)
        real = teacher_targets(self.teacher, z)
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(cfg, self.step) * group["boost"]
        ws = G.mapping(z)
        with torch.no_grad():  # running mean of w (StyleGAN2-ADA's w_avg tracking)
            G.mapping.w_avg.copy_(ws[:, 0].mean(0).lerp(G.mapping.w_avg, cfg.w_avg_beta))
        noise_gen = torch.Generator().manual_seed(NOISE_SEED_BASE + self.step)
        fake = G.synthesis(ws, noise_mode="random", generator=noise_gen)
        loss, stats = distillation_loss(fake, real, cfg.pyramid_levels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self._update_ema()
        self.step += 1
        return stats

    def _update_ema(self) -> None:
        update_ema(self.G_ema, self.G, self.step + self.adv_step + 1, self.cfg)

    def adversarial_step(self) -> dict[str, float]:
        """One stage-2 step: a discriminator update (with lazy R1), then a generator update
        with the distillation loss plus ``adv_weight`` x the non-saturating GAN loss."""
        cfg, adv, G, D = self.cfg, self.adv, self.G, self.D
        k = cfg.steps + self.adv_step
        z = batch_z(k, cfg.batch)
        real = teacher_targets(self.teacher, z)
        ws = G.mapping(z)
        with torch.no_grad():
            G.mapping.w_avg.copy_(ws[:, 0].mean(0).lerp(G.mapping.w_avg, cfg.w_avg_beta))
        noise_gen = torch.Generator().manual_seed(NOISE_SEED_BASE + k)
        fake = G.synthesis(ws, noise_mode="random", generator=noise_gen)
        # Discriminator.
        D.requires_grad_(True)
        r1_step = self.adv_step % adv.r1_every == 0
        real_in = real.detach().requires_grad_(r1_step)
        d_real = D(real_in)
        d_loss = F.softplus(D(fake.detach())).mean() + F.softplus(-d_real).mean()
        stats = {"d_loss": d_loss.item()}
        if r1_step:
            (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
            r1 = grad.square().sum(dim=(1, 2, 3)).mean()
            d_loss = d_loss + r1 * (adv.r1_gamma / 2 * adv.r1_every)
            stats["r1"] = r1.item()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        # Generator.
        D.requires_grad_(False)
        rec, rec_stats = distillation_loss(fake, real, cfg.pyramid_levels)
        g_adv = F.softplus(-D(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        (rec + adv.adv_weight * g_adv).backward()
        self.opt_g.step()
        self.adv_step += 1
        self._update_ema()
        return {**stats, "g_adv": g_adv.item(), **rec_stats}

    def _loop(self, stage: str, log_every: int, sample_every: int,
              checkpoint_every: int) -> None:
        """Run ``stage`` ('distillation' or 'adversarial') to its end: steps, log rows
        (means since the last row), sample grids and checkpoints."""
        distill = stage == "distillation"
        total = self.cfg.steps if distill else self.adv.steps
        step_fn = self.train_step if distill else self.adversarial_step
        log_path = self.out / "log.jsonl"
        acc: dict[str, float] = {}
        counts: dict[str, int] = {}
        t_last = time.perf_counter()
        while (n := self.step if distill else self.adv_step) < total:
            for key, v in step_fn().items():
                acc[key] = acc.get(key, 0.0) + v
                counts[key] = counts.get(key, 0) + 1
            now = time.perf_counter()
            self.seconds += now - t_last
            t_last = now
            n += 1
            if n % log_every == 0 or n == total:
                means = {key: v / counts[key] for key, v in acc.items()}
                if distill:
                    row = {"step": n, "kimg": n * self.cfg.batch / 1000,
                           "lr": learning_rate(self.cfg, n - 1), "minutes": self.seconds / 60,
                           **means}
                    line = (f"step {n}/{total}  {row['kimg']:.1f} kimg  l1 {row['l1']:.4f}  "
                            f"pyramid {row['pyramid']:.4f}")
                else:
                    row = {"stage": "adversarial", "adv_step": n,
                           "kimg": (self.step + n) * self.cfg.batch / 1000,
                           "minutes": self.seconds / 60, **means}
                    line = (f"adversarial {n}/{total}  d {row['d_loss']:.3f}  "
                            f"g_adv {row['g_adv']:.3f}  l1 {row['l1']:.4f}")
                with open(log_path, "a") as f:
                    f.write(json.dumps(row) + "\n")
                self.log(f"{line}  psnr {row['psnr']:.2f} dB  {row['minutes']:.1f} min")
                acc, counts = {}, {}
            if n % sample_every == 0 or n == total:
                name = f"step{n:06d}.png" if distill else f"adv{n:06d}.png"
                _sample_grid(self.G_ema, self.teacher, self.out / "samples" / name)
            if n % checkpoint_every == 0 or n == total:
                self._save_checkpoint()
                t_last = time.perf_counter()

    def run(self, log_every: int = 50, sample_every: int = 500,
            checkpoint_every: int = 250) -> Path:
        """Train to ``cfg.steps`` (then the adversarial stage, if any); returns the path of
        the final float16 generator."""
        self._loop("distillation", log_every, sample_every, checkpoint_every)
        if self.adv is not None:
            self._loop("adversarial", log_every, sample_every, checkpoint_every)
        return self.finish()

    def finish(self) -> Path:
        """Set the EMA generator's ``w_avg`` to an exact mean and write the float16 model."""
        self.G_ema.mapping.w_avg.copy_(compute_w_avg(self.G_ema))
        path = self.out / "demo.safetensors"
        provenance = {
            "model": "demo",
            "method": "distillation of the DigiFace DCGAN" + (
                ", then adversarial fine-tuning" if self.adv else "") + " (i2s.demo.train)",
            "teacher": dcgan.PACKAGE + " " + dcgan.PACKAGE_FILE,
            "teacher_sha256": self.teacher_sha256, "teacher_licence": dcgan.LICENCE,
            "train_config": self.cfg.to_dict(), "steps": self.step,
            "adversarial_config": self.adv.to_dict() if self.adv else None,
            "adversarial_steps": self.adv_step,
            "images_seen": (self.step + self.adv_step) * self.cfg.batch,
            "training_minutes": round(self.seconds / 60, 1),
            "threads": torch.get_num_threads(),
            **run_record(device=next(self.G_ema.parameters()).device),
        }
        save_generator(self.G_ema, path, dtype=torch.float16,
                       extra_metadata={"provenance": json.dumps(provenance)})
        provenance["sha256"] = sha256_file(path)
        write_text_atomic(self.out / "provenance.json", json.dumps(provenance, indent=2) + "\n")
        _sample_grid(self.G_ema, self.teacher, self.out / "samples" / "final.png")
        return path
