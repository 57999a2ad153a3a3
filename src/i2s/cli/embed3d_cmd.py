"""``i2s embed-3d``: invert images (with or without cameras) or a mesh into a GET3D model's
two latent branches and write latent, mesh, renders, novel views and metrics."""

from __future__ import annotations

import math

import click

from i2s.cli.common import ensure_writable_dir, pick_device
from i2s.cli.generate3d_cmd import load_3d_generator
from i2s.cli.messages import flush_notes
from i2s.cli.options import FiniteFloat, device_option
from i2s.embedding3d import Embed3DConfig, StepInfo3D, embed_3d
from i2s.embedding3d.config import MAX_STEPS_3D, SILHOUETTE_LOSSES, SPACES_3D, STRATEGIES
from i2s.embedding3d.losses import load_vgg
from i2s.embedding3d.targets import MAX_VIEWS, load_image_target, load_mesh_target
from i2s.get3d.cameras import Cameras
from i2s.media.files import output_lock
from i2s.progress import progress_bar

DEFAULT_MODEL_3D = "demo-3d"
_D = Embed3DConfig()


class Embed3DBar:
    """The progress bar of one inversion: phase, loss, silhouette IoU and PSNR."""

    def __init__(self, steps: int, desc: str, every: int = 5) -> None:
        flush_notes()
        self.bar = progress_bar(steps, desc, "step")
        self.every = every

    def __call__(self, s: StepInfo3D) -> None:
        self.bar.update(1)
        if s.step % self.every == 0 or s.step == s.steps:
            post = {"phase": s.phase, "loss": f"{s.loss:.4f}", "iou": f"{s.iou:.3f}"}
            if math.isfinite(s.psnr):
                post["psnr"] = f"{s.psnr:.1f}"
            self.bar.set_postfix(post)

    def close(self) -> None:
        self.bar.close()


def _held_out(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise click.UsageError(f"--held-out {text!r}: give view numbers like 6,7") from None


def _config(**fields) -> Embed3DConfig:
    return Embed3DConfig(**{k: v for k, v in fields.items() if v is not None})


@click.command("embed-3d")
@click.argument("images", nargs=-1, type=click.Path())
@click.option("--cameras", "cameras_path", type=click.Path(dir_okay=False), default=None,
              help="cameras.json with one view per image, in order (the format generate-3d "
                   "writes). Without it the cameras are estimated.")
@click.option("--mesh", "mesh_path", type=click.Path(dir_okay=False), default=None,
              help="Invert a mesh (OBJ/GLB/PLY with texture or vertex colours) instead of "
                   "images: i2s renders it from --views orbit views (or --cameras).")
@click.option("--mask", "masks", multiple=True, type=click.Path(dir_okay=False),
              help="A silhouette file per image (repeat, in the order of the images).")
@click.option("--background", default="auto", show_default=True,
              help="Background of RGB images without alpha or masks: auto (the border's "
                   "colour), black, white, R,G,B or #rrggbb.")
@click.option("--model", default=DEFAULT_MODEL_3D, show_default=True,
              help="A GET3D model: registry name, official GET3D .pt or i2s .safetensors.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=_D.strategy,
              show_default=True, help="How the two branches are optimised.")
@click.option("--space-geo", type=click.Choice(SPACES_3D), default=_D.space_geo,
              show_default=True, help="Geometry latent space.")
@click.option("--space-tex", type=click.Choice(SPACES_3D), default=_D.space_tex,
              show_default=True, help="Texture latent space.")
@click.option("--steps", type=click.IntRange(1, MAX_STEPS_3D), default=_D.steps,
              show_default=True, help="Adam steps over all phases.")
@click.option("--resolution", type=click.IntRange(16, 1024), default=_D.resolution,
              show_default=True, help="Render side while optimising (views are resized).")
@click.option("--views", type=click.IntRange(1, MAX_VIEWS), default=8, show_default=True,
              help="Orbit views a --mesh is rendered from (elevation 20, radius 1.5).")
@click.option("--held-out", default=None,
              help="Views (0-based, comma-separated) only measured, never fitted, e.g. 6,7.")
@click.option("--estimate-cameras", is_flag=True,
              help="Estimate the fitted views' cameras even when --cameras is given (those "
                   "of held-out views are still used to measure).")
@click.option("--init", default=_D.init, show_default=True,
              help="Start: mean (w_avg), random (--seed), or a latent.npz of this model.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=_D.seed, show_default=True)
@click.option("--lr-geo", type=FiniteFloat(min=0, min_open=True), default=_D.lr_geo,
              show_default=True)
@click.option("--lr-tex", type=FiniteFloat(min=0, min_open=True), default=_D.lr_tex,
              show_default=True)
@click.option("--tex-to-geo", type=FiniteFloat(min=0, min_open=True, max=1),
              default=_D.tex_to_geo, show_default=True,
              help="staged-joint: weight of the texture loss on ws_geo in the joint phase.")
@click.option("--silhouette-loss", type=click.Choice(SILHOUETTE_LOSSES),
              default=_D.silhouette_loss, show_default=True)
@click.option("--lambda-silhouette", type=FiniteFloat(min=0), default=_D.lambda_silhouette,
              show_default=True)
@click.option("--lambda-rgb", type=FiniteFloat(min=0), default=_D.lambda_rgb,
              show_default=True)
@click.option("--lambda-perceptual", type=FiniteFloat(min=0), default=_D.lambda_perceptual,
              show_default=True,
              help="VGG-16 perceptual term on the RGB inside both silhouettes (as i2s "
                   "embed's; needs VGG-16 weights, see --vgg-weights). 0: off.")
@click.option("--vgg-weights", type=click.Path(dir_okay=False), default=None,
              help="torchvision's vgg16-397923af.pth for --lambda-perceptual (default: "
                   "$I2S_VGG16, the download cache, ~/.cache/torch/hub/checkpoints).")
@click.option("--lambda-depth", type=FiniteFloat(min=0), default=_D.lambda_depth,
              show_default=True, help="Depth term (mesh inputs).")
@click.option("--lambda-normal", type=FiniteFloat(min=0), default=_D.lambda_normal,
              show_default=True,
              help="Normal term, 1 - |cos| of world normals (mesh inputs only: image views "
                   "have no normals, so it does nothing for them).")
@click.option("--lambda-chamfer", type=FiniteFloat(min=0), default=_D.lambda_chamfer,
              show_default=True, help="3D Chamfer term (mesh inputs).")
@click.option("--lambda-reg-geo", type=FiniteFloat(min=0), default=_D.lambda_reg_geo,
              show_default=True, help="Pull of ws_geo towards w_avg.")
@click.option("--lambda-reg-tex", type=FiniteFloat(min=0), default=_D.lambda_reg_tex,
              show_default=True, help="Pull of ws_tex towards w_avg.")
@click.option("--coarse-fraction", type=FiniteFloat(min=0, max=1), default=_D.coarse_fraction,
              show_default=True, help="Share of the steps rendered at half resolution first.")
@click.option("--tune-steps", type=click.IntRange(0, MAX_STEPS_3D), default=_D.tune_steps,
              show_default=True,
              help="Then tune the tri-plane network around the latents (PTI); writes "
                   "generator.safetensors.")
@click.option("--tune-lr", type=FiniteFloat(min=0, min_open=True), default=_D.tune_lr,
              show_default=True)
@click.option("--fit-mesh", is_flag=True,
              help="Centre the --mesh and scale it into the model's box (else its "
                   "coordinates are kept).")
@click.option("--novel-views", type=click.IntRange(0, MAX_VIEWS), default=8,
              show_default=True, help="Views between and above the inputs, in OUT/novel/.")
@click.option("--texture-size", type=click.IntRange(64, 8192), default=1024,
              show_default=True, help="Side of the mesh's texture atlas (needs xatlas).")
@click.option("--no-atlas", is_flag=True, help="Vertex colours instead of a texture atlas.")
@click.option("--video", is_flag=True, help="Also a turntable video (turntable.mp4).")
@device_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def embed_3d_command(images, cameras_path, mesh_path, masks, background, model, out, views,
                     held_out, estimate_cameras, fit_mesh, novel_views, texture_size, no_atlas,
                     video, device, quiet, vgg_weights, **settings) -> int:
    """Invert IMAGE... (or --mesh FILE) into a GET3D model's geometry and texture latents.

    Writes OUT/latent.npz, mesh.obj (+ mesh.mtl, mesh_texture.png) and mesh.glb,
    cameras.json, views/<name>_input.png beside views/<name>_render.png, views.png,
    novel/NNN.png, metrics.json (and turntable.mp4 with --video, generator.safetensors with
    --tune-steps). Nothing is written when an input is wrong.
    """
    if bool(images) == bool(mesh_path):
        raise click.UsageError("give IMAGE... or --mesh FILE (one of the two)")
    if mesh_path and masks:
        raise click.UsageError("--mask applies to images, not to --mesh")
    held = _held_out(held_out)
    cfg = _config(**settings)
    dev = pick_device(device)
    G = load_3d_generator(model, dev)
    if mesh_path:
        cams = Cameras.from_json(cameras_path) if cameras_path else None
        target = load_mesh_target(mesh_path, cfg.resolution, views, cameras=cams,
                                  seed=cfg.seed, fit=0.9 * G.shape_length if fit_mesh else None)
    else:
        target = load_image_target(list(images), cfg.resolution, cameras=cameras_path,
                                   background=background, masks=list(masks) or None)
    if held and max(held) >= len(target):
        raise click.BadParameter(f"{held_out}: there are only {len(target)} views "
                                 f"(0..{len(target) - 1})", param_hint="--held-out")
    if held and target.cameras is None:
        raise click.UsageError("--held-out needs --cameras (held-out views are only measured)")
    if estimate_cameras and target.cameras is None:
        estimate_cameras = False  # estimated anyway
    vgg = load_vgg(vgg_weights, dev) if cfg.lambda_perceptual > 0 else None
    out_dir = ensure_writable_dir(out)
    with output_lock(out_dir):
        desc = mesh_path or (images[0] if len(images) == 1 else f"{len(images)} views")
        bar = None if quiet else Embed3DBar(cfg.steps + cfg.tune_steps, str(desc))
        try:
            result = embed_3d(G, target, cfg, held_out=held,
                              estimate_cameras=True if estimate_cameras else None,
                              callback=bar, vgg=vgg)
        finally:
            if bar is not None:
                bar.close()
        names = result.save(out_dir, model=G, video=video, novel_views=novel_views,
                            atlas=not no_atlas, texture_size=texture_size)
    m = result.metrics()
    line = (f"wrote {out_dir}: {', '.join(n for n in names if n != 'metrics.json')}, "
            f"metrics.json; fitted views IoU {m['fitted']['iou']:.3f}")
    if m["fitted"]["psnr"] is not None:
        line += f" PSNR {m['fitted']['psnr']:.2f} dB"
    if held:
        line += f"; held-out IoU {m['held_out']['iou']:.3f}"
        if m["held_out"]["psnr"] is not None:
            line += f" PSNR {m['held_out']['psnr']:.2f} dB"
    if result.chamfer is not None:
        line += f"; Chamfer {result.chamfer:.4f}"
    click.echo(line + f" ({result.seconds:.0f} s)")
    return 0
