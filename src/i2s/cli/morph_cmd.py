"""``i2s morph``: interpolate between two embedded images (paper, section 3)."""

from __future__ import annotations

import click
import torch

from i2s.cli.edit_session import EditSession, edit_options
from i2s.cli.options import FiniteFloat
from i2s.edits import morph
from i2s.media.video import VideoWriter, upscale_nearest

MAX_FRAMES = 1000


@click.command("morph")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--frames", type=click.IntRange(min=2, max=MAX_FRAMES), default=9,
              show_default=True, help="Frames from A to B, both included.")
@click.option("--format", "fmt", type=click.Choice(["mp4", "gif"]), default="mp4",
              show_default=True, help="Animation format.")
@click.option("--fps", type=FiniteFloat(min=0, min_open=True, max=240), default=8.0,
              show_default=True, help="Frames per second of the animation.")
@edit_options
def morph_command(a, b, frames, fmt, fps, model, out, device, quiet, **kwargs) -> int:
    """Morph from A to B (each a latent.npz from i2s embed, or an image embedded first).

    Writes OUT/frames/NNN.png and .npz (frame i has t = 1 - i/(frames-1) in
    t*w_A + (1-t)*w_B), OUT/strip.png (labelled with t), OUT/morph.mp4 (or .gif) and
    OUT/edit.json.
    """
    with EditSession(model, out, device, quiet, kwargs) as s:
        wa, wb = s.codes([a, b])
        t = [1 - i / (frames - 1) for i in range(frames)]
        ws = morph(wa, wb, torch.tensor(t, dtype=wa.dtype))          # [frames, num_ws, w_dim]
        images = s.render(ws)
        for i in range(frames):
            s.write(f"frames/{i:03d}", ws[i], images[i])
        s.write_strip("strip", images, [f"t = {v:.2f}" for v in t])
        with VideoWriter(s.path(f"morph.{fmt}"), fps=fps) as video:
            for im in images:
                video.add(upscale_nearest(im))
        s.write_json({"edit": "morph", "a": a, "b": b, "frames": frames, "t": t,
                      "formula": "t * w_a + (1 - t) * w_b", "animation": f"morph.{fmt}",
                      "fps": fps})
    click.echo(f"wrote {frames} frames, strip.png and morph.{fmt} to {s.out}")
    return 0
