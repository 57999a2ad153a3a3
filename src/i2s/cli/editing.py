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
from i2s.align import AlignTransform, paste_back
from i2s.cli.common import DEVICE_CHOICES, ensure_writable_dir, pick_device
from i2s.cli.embedding import (
    EmbedOptions,
    embedding_options,
    is_latent_path,
    latents_for_inputs,
    model_option,
)
from i2s.errors import I2SError
from i2s.fileio import write_text_atomic
from i2s.images import read_rgb, save_image, to_uint8
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
        click.option("--paste-back", "paste_into", type=click.Path(), default=None,
                     help="Also paste every result into this original photo (<name>_pasted.png)."),
        click.option("--transform", type=click.Path(), default=None,
                     help="Alignment transform for --paste-back (default: transform.json beside "
                          "the first input's latent, or the first image's i2s align .json)."),
    ]):
        f = opt(f)
    return f


class EditSession:
    """Loads the model, resolves the inputs to W+ codes and writes the results of one edit."""

    def __init__(self, model: str, out: str, device: str, quiet: bool, kwargs: dict) -> None:
        self.paste_into = kwargs.pop("paste_into")
        self.transform_path = kwargs.pop("transform")
        self.original: np.ndarray | None = None
        self.transform: AlignTransform | None = None
        if self.paste_into is not None:
            self.original = read_rgb(self.paste_into)
            if self.transform_path is not None:
                self.transform = AlignTransform.load(self.transform_path)
        self.opts = EmbedOptions.pop(kwargs)
        self.model = model
        self.quiet = quiet
        self.out = ensure_writable_dir(out)
        self.device = pick_device(device)
        self.G = load_generator(model, device=self.device)

    def codes(self, inputs: list[str]) -> list[torch.Tensor]:
        """One W+ code [num_ws, w_dim] per input (images are embedded first)."""
        if self.original is not None and self.transform is None:
            self._check_transform_findable(inputs[0])
        codes, folders = latents_for_inputs(self.G, self.model, inputs, self.out, self.opts,
                                            self.device, quiet=self.quiet)
        if self.original is not None and self.transform is None:
            self.transform = AlignTransform.load(self._transform_candidate(inputs[0],
                                                                           folders[0]))
        return codes

    def _transform_candidate(self, first: str, folder: Path | None) -> Path:
        if folder is not None and (folder / "transform.json").is_file():
            return folder / "transform.json"
        return Path(first).with_suffix(".json")  # i2s align writes <stem>.json

    def _check_transform_findable(self, first: str) -> None:
        """Fail before any slow embedding if --paste-back will have no transform."""
        folder = Path(first).parent if is_latent_path(first) else None
        will_align = self.opts.align and not is_latent_path(first)
        if not will_align and not self._transform_candidate(first, folder).is_file():
            raise I2SError("--paste-back needs the alignment transform: pass --transform "
                           "T.json (from i2s align), use a latent made by i2s embed --align, "
                           "or --align the input images")

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
        if self.original is not None:
            pasted, _ = paste_back(image, self.original, self.transform)
            save_image(path.with_name(path.name + "_pasted.png"), pasted)
        save_latent(path.with_suffix(".npz"), LatentFile(
            w=w.detach().cpu().numpy(), space="w+", model_sha256=self.G.sha256 or ""))

    def write_json(self, record: dict) -> None:
        record = {**record, "model": str(self.model), "model_sha256": self.G.sha256,
                  "num_ws": self.G.num_ws, "w_dim": self.G.w_dim,
                  "embedding": vars(self.opts), "i2s": i2s.__version__,
                  "paste_back": None if self.original is None else {
                      "original": str(self.paste_into), "transform": self.transform.to_dict()}}
        write_text_atomic(self.out / "edit.json", json.dumps(record, indent=2) + "\n")
