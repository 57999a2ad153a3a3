"""What the edit commands share: their common options, turning inputs (latent files or
images) into W+ codes, rendering codes and writing results (image + latent) and edit.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import torch

import i2s
from i2s.cli.common import DEVICE_CHOICES, ensure_writable_dir, pick_device
from i2s.cli.embedding import EmbedOptions, embedding_options, latents_for_inputs, model_option
from i2s.fileio import write_text_atomic
from i2s.images import save_image, to_uint8
from i2s.latents import LatentFile, save_latent
from i2s.models import load_generator


def edit_options(f: Callable) -> Callable:
    """--model, --out, the embedding options (for image inputs), --device, --quiet."""
    for opt in reversed([
        model_option,
        click.option("--out", required=True, type=click.Path(file_okay=False),
                     help="Output folder."),
        embedding_options,
        click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto",
                     show_default=True),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars."),
    ]):
        f = opt(f)
    return f


class EditSession:
    """Loads the model, resolves the inputs to W+ codes and writes the results of one edit."""

    def __init__(self, model: str, out: str, device: str, quiet: bool, kwargs: dict) -> None:
        self.opts = EmbedOptions.pop(kwargs)
        self.model = model
        self.quiet = quiet
        self.out = ensure_writable_dir(out)
        self.device = pick_device(device)
        self.G = load_generator(model, device=self.device)

    def codes(self, inputs: list[str]) -> list[torch.Tensor]:
        """One W+ code [num_ws, w_dim] per input (images are embedded first)."""
        return latents_for_inputs(self.G, self.model, inputs, self.out, self.opts,
                                  self.device, quiet=self.quiet)

    @torch.no_grad()
    def render(self, ws: torch.Tensor, chunk: int = 8) -> np.ndarray:
        """W+ codes [T, num_ws, w_dim] -> uint8 images [T, R, R, 3] (constant noise)."""
        parts = [to_uint8(self.G.synthesis(c.to(self.device), noise_mode="const"))
                 for c in ws.split(chunk)]
        return np.concatenate(parts)

    def write(self, stem: str | Path, w: torch.Tensor, image: np.ndarray) -> None:
        """``OUT/<stem>.png`` and ``OUT/<stem>.npz`` (a W+ latent file of this model)."""
        path = self.out / stem
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(path.with_suffix(".png"), image)
        save_latent(path.with_suffix(".npz"), LatentFile(
            w=w.detach().cpu().numpy(), space="w+", model_sha256=self.G.sha256 or ""))

    def write_json(self, record: dict) -> None:
        record = {**record, "model": str(self.model), "model_sha256": self.G.sha256,
                  "num_ws": self.G.num_ws, "w_dim": self.G.w_dim,
                  "embedding": vars(self.opts), "i2s": i2s.__version__}
        write_text_atomic(self.out / "edit.json", json.dumps(record, indent=2) + "\n")
