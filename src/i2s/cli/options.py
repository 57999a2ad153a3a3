"""The options several commands share: ``--model``, ``--device``, and the embedding options,
which map one to one onto the fields of :class:`i2s.EmbedConfig` (plus ``--vgg-weights``
and ``--align``, which say where the inputs come from)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click
from click.core import ParameterSource

from i2s.cli.common import (  # noqa: F401 (FiniteFloat, face_*: the commands')
    DEVICE_CHOICES,
    FACE_OPTIONS,
    FiniteFloat,
    face_choice,
    face_options,
)
from i2s.embedding import EmbedConfig
from i2s.embedding.config import MAX_STEPS, NOISE_MAP_MODES, OPTIMIZERS, PAPER
from i2s.embedding.latents import SPACES
from i2s.embedding.losses import LOSS_KINDS, VGG_TAPS
from i2s.embedding.recipes import RECIPES
from i2s.embedding.schedules import LR_SCHEDULES
from i2s.errors import I2SError
from i2s.faces.detect import FaceChoice
from i2s.models.common import NOISE_MODES

DEFAULT_MODEL = "demo"
_DEFAULTS = EmbedConfig()


@contextlib.contextmanager
def bad_value(option: str) -> Iterator[None]:
    """An :class:`I2SError` raised inside (a value the library refuses, e.g. layers a model does
    not have) is a bad value of ``option``: a usage error, exit code 2."""
    try:
        yield
    except I2SError as e:
        reason = str(e).removeprefix(f"{option} ")  # the option is named once, by click
        raise click.BadParameter(reason, ctx=click.get_current_context(silent=True),
                                 param_hint=option) from None


animate_option = click.option(
    "--animate", type=click.Choice(["gif", "mp4"]), default=None,
    help="Also write the --sweep as an animation (one labelled frame per strength).")


model_option = click.option(
    "--model", default=DEFAULT_MODEL, show_default=True,
    help="Generator: a registry name (i2s models list), an i2s .safetensors, or a "
         "StyleGAN2-ADA/TF .pkl or rosinality .pt (converted once and cached).")

def _set_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    """--threads: torch's CPU thread count for this process; without it, one note when the
    machine is already busy (torch would start one thread per core anyway), printed when the
    long work starts (the first progress bar), so a command that fails at once prints one
    line."""
    import torch  # noqa: PLC0415 (only commands that compute pay for it)

    from i2s.cli.messages import defer_note  # noqa: PLC0415
    from i2s.provenance import available_cpus, oversubscription  # noqa: PLC0415

    if value is not None:
        torch.set_num_threads(value)
        return
    busy = oversubscription()
    if busy is not None:
        load, suggest = busy
        defer_note(f"note: this machine is busy (load {load:.1f} on {available_cpus()} CPUs); "
                   f"--threads {suggest} may be much faster than torch's "
                   f"{torch.get_num_threads()} threads")


threads_option = click.option(
    "--threads", type=click.IntRange(1, 1024), default=None, expose_value=False,
    callback=_set_threads,
    help="CPU threads for PyTorch [default: torch's, one per core]. On a busy machine fewer "
         "is faster (a note says so).")


_device = click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto",
                       show_default=True)


def device_option(f: Callable) -> Callable:
    """--device and --threads: every command that computes has both."""
    return _device(threads_option(f))


def _config_option(field: str, help: str, off: bool = False, **kw: Any) -> tuple[str, Callable]:
    """``--<field>`` for one EmbedConfig field, with the config's default (the recipe's for
    the fields a recipe sets: shown as "recipe; paper: <value>")."""
    if field in PAPER:
        option = click.option("--" + field.replace("_", "-"), field, default=None,
                              show_default=f"recipe; paper: {PAPER[field]}", help=help, **kw)
        return field, option
    default = getattr(_DEFAULTS, field)
    shown = True if default is not None else "off" if off else "auto"
    option = click.option("--" + field.replace("_", "-"), field, default=default,
                          show_default=shown, help=help, **kw)
    return field, option


# (parameter name, option): the EmbedConfig fields, and the input options
_EMBED_OPTIONS: list[tuple[str, Callable]] = [
    _config_option("recipe", "paper (Image2StyleGAN), projector (StyleGAN2-ADA's), i2s++ "
                   "(W+ then noise maps), pti (pivot, then the generator tuned around it), "
                   "fast (i2s's: L-BFGS, a tenth of the paper's evaluations). A recipe sets "
                   "the options marked 'recipe'; options you give win.",
                   type=click.Choice(tuple(RECIPES))),
    _config_option("space", "Latent space to optimise.", type=click.Choice(SPACES)),
    _config_option("steps", "Adam steps on the latent.",
                   type=click.IntRange(min=1, max=MAX_STEPS)),
    _config_option("lr", "Adam learning rate (the schedule's peak; betas 0.9/0.999, eps 1e-8).",
                   type=FiniteFloat(min=0, min_open=True)),
    _config_option("optimizer", "adam (the paper), or lbfgs (quasi-Newton with a strong-Wolfe "
                   "line search; --steps counts loss evaluations; the fast recipe).",
                   type=click.Choice(OPTIMIZERS)),
    _config_option("lr_schedule", "constant; projector (5% warm-up, cosine ramp-down over "
                   "the last 25%); cosine (5% warm-up, cosine decay to 0).",
                   type=click.Choice(LR_SCHEDULES)),
    _config_option("init", "'mean' (w_avg), 'random' (seeded) or a latent.npz to start from."),
    _config_option("loss", "Pixel MSE + VGG-16 perceptual loss (paper), either alone, LPIPS "
                   "(needs i2s models download lpips-vgg) or MSE + LPIPS.",
                   type=click.Choice(LOSS_KINDS)),
    _config_option("lambda_mse", "Weight of the MSE term.", type=FiniteFloat(min=0)),
    _config_option("lambda_perceptual", "Weight of the VGG-16 or LPIPS term.",
                   type=FiniteFloat(min=0)),
    _config_option("w_noise", "Noise added to w while optimising: std this times w_std, "
                   "decaying quadratically to 0 at 75% of the steps (projector: 0.05).",
                   type=FiniteFloat(min=0)),
    _config_option("noise_maps", "Optimise the per-layer noise maps: off, joint (with the "
                   "latent, projector) or after (latent frozen, i2s++). Images are then "
                   "embedded one at a time.", type=click.Choice(NOISE_MAP_MODES)),
    _config_option("noise_steps", "Steps of the noise-map stage of --noise-maps after.",
                   type=click.IntRange(min=0, max=MAX_STEPS)),
    _config_option("noise_lr", "Learning rate of the noise-map stage.",
                   type=FiniteFloat(min=0, min_open=True)),
    _config_option("noise_regularize", "Weight of the noise maps' autocorrelation "
                   "regulariser (projector: 1e5; also renormalises them every step).",
                   type=FiniteFloat(min=0)),
    _config_option("tune_steps", "Pivotal tuning (PTI): steps tuning a copy of the generator "
                   "around the found latent (0: none; the pti recipe: 350). Writes "
                   "tuned.safetensors; edit commands take it with --tuned.",
                   type=click.IntRange(min=0, max=MAX_STEPS)),
    _config_option("tune_lr", "Learning rate of the pivotal tuning.",
                   type=FiniteFloat(min=0, min_open=True)),
    _config_option("tune_stop_lpips", "End the pivotal tuning once LPIPS is at most this "
                   "(with an LPIPS loss).", type=FiniteFloat(min=0)),
    _config_option("target_psnr", "Stop once the reconstruction reaches this PSNR (dB).",
                   type=FiniteFloat(min=0, min_open=True), off=True),
    _config_option("patience", "End a stage after this many steps without a 0.1% lower "
                   "loss.", type=click.IntRange(min=1), off=True),
    ("vgg_weights", click.option(
        "--vgg-weights", type=click.Path(dir_okay=False), default=None,
        help="torchvision's vgg16-397923af.pth (default: $I2S_VGG16, the download cache, "
             "~/.cache/torch/hub/checkpoints).")),
    ("lpips_weights", click.option(
        "--lpips-weights", type=click.Path(dir_okay=False), default=None,
        help="The lpips project's VGG calibration vgg.pth (default: $I2S_LPIPS, the download "
             "cache; i2s models download lpips-vgg). Also measures LPIPS in metrics.json.")),
    _config_option("vgg_taps", "Take conv1_1/1_2/3_2/4_2 after or before their ReLU.",
                   type=click.Choice(VGG_TAPS)),
    _config_option("seed", "Seed for --init random and --noise-mode random.",
                   type=click.IntRange(min=0, max=2**63 - 1)),
    _config_option("noise_mode", "Per-layer noise during the optimisation.",
                   type=click.Choice(NOISE_MODES)),
    _config_option("batch_size", "Images optimised together (each independently); auto: 16 "
                   "at 64 px, 4 at 128 px, 1 from 256 px.", type=click.IntRange(min=1)),
    ("align", click.option(
        "--align", is_flag=True, help="Detect the largest face (dlib) and FFHQ-align it first; "
        "the transform is kept as transform.json for paste-back.")),
    *[(name, opt) for name, opt in FACE_OPTIONS],
]
_INPUT_OPTIONS = ("vgg_weights", "lpips_weights", "align", *(n for n, _ in FACE_OPTIONS))


def embedding_options(skip: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorator adding the embedding options (see the module docstring), except the
    parameters named in ``skip`` (e.g. a study chooses its own space and start)."""
    def decorate(f: Callable) -> Callable:
        for name, opt in reversed(_EMBED_OPTIONS):
            if name not in skip:
                f = opt(f)
        return f
    return decorate


@dataclass(frozen=True)
class EmbeddingArgs:
    """What the embedding options gave: the config, and where the inputs come from."""

    config: EmbedConfig
    vgg_weights: str | None = None
    align: FaceChoice | bool = False   # the face to align (--align), or False
    lpips_weights: str | None = None


def pop_embedding_args(kwargs: dict, **defaults: Any) -> EmbeddingArgs:
    """Take the embedding options out of a command's keyword arguments. ``defaults`` replace
    EmbedConfig's for options the user did not give (e.g. fewer steps for a quick run)."""
    ctx = click.get_current_context()
    values = {name: kwargs.pop(name) for name, _ in _EMBED_OPTIONS
              if name not in _INPUT_OPTIONS and name in kwargs}
    # Options left at their default are not passed: the recipe's defaults then apply.
    values = {k: v for k, v in values.items()
              if ctx.get_parameter_source(k) not in (None, ParameterSource.DEFAULT)}
    for name, value in defaults.items():
        if ctx.get_parameter_source(name) in (None, ParameterSource.DEFAULT):
            values[name] = value
    config = EmbedConfig(**values)
    inputs = {k: kwargs.pop(k) for k in _INPUT_OPTIONS if k in kwargs}
    align = bool(inputs.get("align", False))
    given = [f"--{n.replace('_', '-')}" for n, _ in FACE_OPTIONS
             if ctx.get_parameter_source(n) not in (None, ParameterSource.DEFAULT)]
    if given and not align:
        raise click.UsageError(f"{given[0]} chooses the face for --align; add --align")
    return EmbeddingArgs(config, inputs.get("vgg_weights"),
                         face_choice(inputs) if align else False, inputs.get("lpips_weights"))
