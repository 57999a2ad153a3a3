"""What the edit commands share: their common options, turning inputs (latent files or
images) into W+ codes (:func:`i2s.embedding.files.latents_for_inputs`), rendering codes and
writing results (image + latent) and edit.json."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import torch

from i2s.cli.common import StepBar, ensure_writable_dir, load_2d_generator, pick_device
from i2s.cli.options import device_option, embedding_options, model_option, pop_embedding_args
from i2s.embedding import LatentFile, load_latent, save_latent
from i2s.embedding.files import is_latent_path, latents_for_inputs
from i2s.embedding.local_edit import local_edit
from i2s.embedding.noise_maps import with_noise_maps
from i2s.embedding.stages import total_steps
from i2s.embedding.tuned import apply_tuned
from i2s.errors import I2SError
from i2s.faces import AlignTransform, paste_back
from i2s.media.files import output_lock, staged_outputs, write_json_atomic
from i2s.media.grid import labelled_strip
from i2s.media.images import read_rgb, save_image
from i2s.media.video import write_animation
from i2s.models import render
from i2s.provenance import run_record


def edit_options(f: Callable) -> Callable:
    """--model, --out, the embedding options (for image inputs), --device, --quiet,
    --paste-back, --tuned, --noise-from, --transform."""
    for opt in reversed([
        model_option,
        click.option("--out", required=True, type=click.Path(file_okay=False),
                     help="Output folder."),
        embedding_options(),
        device_option,
        click.option("--quiet", "-q", is_flag=True, help="No progress bars."),
        click.option("--paste-back", "paste_into", type=click.Path(), default=None,
                     help="Also paste every result into this original photo (<name>_pasted.png)."),
        click.option("--tuned", type=click.Path(dir_okay=False), default=None,
                     help="Edit on a PTI-tuned generator: the tuned.safetensors that "
                          "i2s embed --recipe pti wrote beside the latent."),
        click.option("--noise-from", type=click.Choice(["input", "model"]), default="input",
                     show_default=True,
                     help="Noise maps the results are rendered with: the first input's own "
                          "fitted maps when its latent has them (recipes i2s++ and "
                          "projector), else the model's; 'model': always the model's."),
        click.option("--transform", type=click.Path(), default=None,
                     help="Alignment transform for --paste-back (default: transform.json beside "
                          "the first input's latent, or the first image's i2s align .json)."),
    ]):
        f = opt(f)
    return f


class EditSession:
    """Loads the model, resolves the inputs to W+ codes and writes the results of one edit.

    Use as a context manager: it holds the output folder's lock (one run per folder) and
    stages the edit's files, which appear in OUT only when the edit succeeds."""

    def __init__(self, model: str, out: str, device: str, quiet: bool, kwargs: dict) -> None:
        self.model, self.device, self.quiet = model, device, quiet
        self.paste_into = kwargs.pop("paste_into")
        self.transform_path = kwargs.pop("transform")
        self.tuned = kwargs.pop("tuned")
        self.noise_from = kwargs.pop("noise_from")
        self.noise_maps_of: str | None = None   # the latent file whose noise maps render
        self.noise_maps: dict[str, np.ndarray] | None = None
        self.args = pop_embedding_args(kwargs)
        self.out = ensure_writable_dir(out)
        self._stack = contextlib.ExitStack()
        self.embedded = False  # did any input need embedding (then edit.json has its settings)

    def __enter__(self) -> EditSession:
        with contextlib.ExitStack() as stack:
            stack.enter_context(output_lock(self.out))
            self.original: np.ndarray | None = None
            self.transform: AlignTransform | None = None
            if self.paste_into is not None:
                self.original = read_rgb(self.paste_into)
                if self.transform_path is not None:
                    self.transform = AlignTransform.load(self.transform_path)
            self.G = load_2d_generator(self.model, pick_device(self.device))
            if self.tuned is not None:
                self.G = apply_tuned(self.G, self.tuned)
            self.stage = stack.enter_context(staged_outputs(self.out))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc) -> bool | None:
        return self._stack.__exit__(*exc)

    def path(self, name: str | Path) -> Path:
        """Where the edit writes its output ``name`` (renamed to ``OUT/name`` at the end)."""
        p = self.stage / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def codes(self, inputs: list[str]) -> list[torch.Tensor]:
        """One W+ code [num_ws, w_dim] per input (images are embedded first). With
        ``--noise-from input`` and a first input whose latent holds fitted noise maps, every
        later render uses those maps."""
        if self.original is not None and self.transform is None:
            self._check_transform_findable(inputs[0])
        self.embedded = self.embedded or not all(is_latent_path(raw) for raw in inputs)
        codes, paths = latents_for_inputs(
            self.G, inputs, self.out, self.args.config, aligned=self.args.align,
            vgg_weights=self.args.vgg_weights, lpips_weights=self.args.lpips_weights,
            progress=None if self.quiet else StepBar)
        if self.original is not None and self.transform is None:
            self.transform = AlignTransform.load(self._transform_candidate(inputs[0],
                                                                           paths[0].parent))
        maps = load_latent(paths[0]).noise if self.noise_from == "input" else None
        if maps:
            self.G = with_noise_maps(self.G, maps)
            self.noise_maps, self.noise_maps_of = maps, str(paths[0])
        return codes

    def _transform_candidate(self, first: str, folder: Path | None) -> Path:
        if folder is not None and (folder / "transform.json").is_file():
            return folder / "transform.json"
        return Path(first).with_suffix(".json")  # i2s align writes <stem>.json

    def _check_transform_findable(self, first: str) -> None:
        """Fail before any slow embedding if --paste-back will have no transform."""
        folder = Path(first).parent if is_latent_path(first) else None
        will_align = self.args.align and not is_latent_path(first)
        if not will_align and not self._transform_candidate(first, folder).is_file():
            raise I2SError("--paste-back needs the alignment transform: pass --transform "
                           "T.json (from i2s align), use a latent made by i2s embed --align, "
                           "or --align the input images")

    def local_edit(self, original: torch.Tensor, edited: torch.Tensor, mask: np.ndarray):
        """:func:`i2s.embedding.local_edit.local_edit` of two W+ codes [num_ws, w_dim] with the
        session's embedding settings and a progress bar; returns (result, composite)."""
        cfg = self.args.config
        with torch.no_grad():
            pair = self.G.synthesis(torch.stack([original, edited]), noise_mode="const")
        bar = None if self.quiet else StepBar("local edit", total_steps(cfg))
        try:
            return local_edit(self.G, pair[:1], pair[1:], mask, edited, cfg,
                              vgg_weights=self.args.vgg_weights,
                              lpips_weights=self.args.lpips_weights, callback=bar)
        finally:
            if bar is not None:
                bar.close()

    def render(self, ws: torch.Tensor) -> np.ndarray:
        """W+ codes [T, num_ws, w_dim] -> uint8 images [T, R, R, 3] (constant noise: the
        model's, or the first input's fitted maps, see :meth:`codes`)."""
        return render(self.G, ws)

    def write(self, stem: str | Path, w: torch.Tensor, image: np.ndarray) -> None:
        """``OUT/<stem>.png`` and ``OUT/<stem>.npz`` (a W+ latent file of this model, with
        the noise maps the image was rendered with when they are an input's)."""
        path = self.path(stem)  # the stem may hold dots ("strength0.5"): append, never replace
        save_image(path.with_name(path.name + ".png"), image)
        if self.original is not None:
            pasted, _ = paste_back(image, self.original, self.transform)
            save_image(path.with_name(path.name + "_pasted.png"), pasted)
        save_latent(path.with_name(path.name + ".npz"), LatentFile(
            w=w.detach().cpu().numpy(), space="w+", model_sha256=self.G.sha256 or "",
            noise=self.noise_maps))

    def write_strip(self, name: str, images: np.ndarray, labels: list[str],
                    animation: str | None = None, fps: float = 4.0) -> list[str]:
        """``OUT/<name>.png``: the images [N, R, R, 3] side by side, each labelled; with
        ``animation`` ("gif" or "mp4") also ``OUT/<name>.<animation>`` with one labelled frame
        per image. Returns the file names written."""
        save_image(self.path(f"{name}.png"), labelled_strip(images, labels))
        written = [f"{name}.png"]
        if animation is not None:
            write_animation(self.path(f"{name}.{animation}"), images, labels, fps=fps)
            written.append(f"{name}.{animation}")
        return written

    def write_json(self, record: dict) -> None:
        """``OUT/edit.json``: the edit's own record, what was pasted back, and the run record
        (its ``settings`` are the embedding settings used for image inputs; None when every
        input was a latent file, since nothing was embedded)."""
        record = {**record, "embedded_inputs": self.embedded, "aligned_inputs": (
                      self.args.align.to_dict() if self.args.align else False),
                  "tuned_generator": self.tuned,
                  "noise_maps_from": self.noise_maps_of or "model",
                  "paste_back": None if self.original is None else {
                      "original": str(self.paste_into), "transform": self.transform.to_dict()},
                  **run_record(self.G, self.args.config.to_dict() if self.embedded else None)}
        write_json_atomic(self.path("edit.json"), record)
