"""Quality against wall time for every embedding recipe (issue: recipes).

Parts:

* ``a``: 8 held-out demo faces (``examples/images/faces``, seeds 100-107) at 64 px;
* ``b``: a 256 px StyleGAN2 with FFHQ's widths and random weights (seeded; a test fixture,
  not a trained model) embedding its own images from random codes (seeds 0-3), where an
  exact answer exists;
* ``c``: seconds per step of every stage at 1024 px (FFHQ widths, random weights;
  ``--resolution 256 --step-rounds 6`` times part b's generator, the recipes taking turns).

Every image is embedded on its own (batch 1), so every recipe is timed the same way. Each
recipe's curve is the mean over the images of the PSNR (of the float image at each step,
dB) against the mean wall time at that step; the final PSNR, SSIM (and LPIPS with the VGG
and LPIPS weights) are of the 8-bit reconstruction. Without VGG-16 weights the perceptual
losses cannot run: ``--loss mse`` (the default here) replaces each recipe's loss, and the
README says so. ``fast`` reaches ``paper`` when its mean PSNR first comes within 0.1 dB of
``paper``'s final PSNR.

Editability: for image pairs (0, 1), (2, 3), ..., the 50% morph of the two latents is
rendered with the first image's noise (its optimised maps for the noise recipes, the model's
otherwise) and generator (its tuned copy for ``pti``), and compared with its reconstruction:
``morph_psnr`` is how close the edited image stays to the unedited one (higher = the edit
moved it less) and ``noise_effect_db`` the PSNR between the morph rendered that way and with
the plain model (low = the maps or the tuning hold much of the image).

    python benchmarks/time_to_quality.py --part a [--recipes paper,fast,projector,i2s++]
        [--loss mse] [--steps-scale 1.0] [--threads N] [--out DIR]

Writes ``results.json``, ``time_to_quality_<part>.png`` and prints a table.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import i2s
from i2s.embedding.checkpoint import Checkpointing
from i2s.embedding.noise_maps import synthesis_with_noise
from i2s.embedding.stages import plan, total_steps
from i2s.experiments.image_set import packaged_examples
from i2s.media.images import load_image, save_image, to_tensor, to_uint8
from i2s.media.metrics import mse, psnr, ssim
from i2s.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from i2s.provenance import describe_machine

FACE_SEEDS = list(range(100, 108))
RECIPES = ("paper", "fast", "projector", "i2s++", "pti")


def demo_targets() -> tuple[object, torch.Tensor]:
    G = i2s.load_generator("demo").eval()
    ex = packaged_examples()
    faces = np.stack([load_image(ex / "faces" / f"face_seed{s}.png", 64) for s in FACE_SEEDS])
    return G, to_tensor(faces)


def ffhq_width_generator(resolution: int, seed: int = 0) -> StyleGAN2Generator:
    """FFHQ's StyleGAN2 widths (channel_base 32768, max 512, 8 mapping layers) with random
    weights and a measured w_avg: a fixture for timing and for known-answer inversions."""
    torch.manual_seed(seed)
    G = StyleGAN2Generator(StyleGAN2Config(resolution=resolution, z_dim=512, w_dim=512,
                                           mapping_layers=8, channel_base=32768,
                                           channel_max=512)).eval()
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(2000, 512))[:, 0].mean(0))
    return G


def own_targets(G, n: int) -> torch.Tensor:
    with torch.no_grad():
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1))
        return G.synthesis(G.mapping(z), noise_mode="const").clamp(-1, 1)


def run_recipe(G, targets: torch.Tensor, recipe: str, overrides: dict,
               cache: Path | None = None) -> dict:
    """Embed each target alone with ``recipe``; curves, finals and latents. With ``cache``,
    each finished image is kept there and every embedding saves resumable state every 100
    steps, so an interrupted benchmark continues where it stopped (see :func:`embed_one`)."""
    cfg = i2s.EmbedConfig(recipe=recipe, **overrides)
    steps = total_steps(cfg)
    times = np.full((len(targets), steps), np.nan)
    curve = np.full((len(targets), steps), np.nan)
    results = []
    for j, x in enumerate(targets):
        times[j], curve[j], r = embed_one(G, x, cfg, steps,
                                          None if cache is None else cache / f"{recipe}-{j}")
        results.append(r)
    recon = np.concatenate([to_uint8(r.image) for r in results])
    tgt = to_uint8(targets)
    final = {"psnr": float(np.mean(psnr(mse(recon, tgt)))),
             "ssim": float(np.mean(ssim(recon, tgt))),
             "seconds": float(np.mean([r.seconds for r in results]))}
    if all("lpips" in r.final for r in results):
        final["lpips"] = float(np.mean([r.final["lpips"][0] for r in results]))
    return {"config": cfg.to_dict(), "stages": [s.to_dict() for s in plan(cfg)],
            "time": np.nanmean(times, axis=0), "psnr": np.nanmean(curve, axis=0),
            "final": final, "results": results, "recon": recon}


def embed_one(G, x: torch.Tensor, cfg, steps: int, cache: Path | None):
    """One target: (wall time at each step [steps], PSNR at each step [steps], the result).

    With ``cache`` (a path stem), a finished run is read back from ``<cache>.safetensors``
    (latent, image, curves, noise maps, tuned weights) and an unfinished one continues from
    ``<cache>.resume/``; the wall times of the steps run before an interruption are
    interpolated linearly over the earlier runs' seconds (``r.seconds`` counts them)."""
    done = None if cache is None else cache.with_suffix(".safetensors")
    if done is not None and done.exists():
        return _read_cached(done)
    times, curve = np.full(steps, np.nan), np.full(steps, np.nan)
    first = []                                          # the first step this process runs

    def cb(s):
        if not first:
            first.append(s.step)
        times[s.step - 1] = time.perf_counter() - t0
        curve[s.step - 1] = float(s.psnr.mean())

    ck = None if cache is None else \
        Checkpointing(cache.with_suffix(".resume"), every=100, resume=True)
    t0 = time.perf_counter()
    r = i2s.embed(G, x[None], cfg, callback=cb, checkpoint=ck)
    if first and first[0] > 1:   # resumed: r.seconds includes the earlier runs' time
        before = max(0.0, r.seconds - (time.perf_counter() - t0))
        times += before
        times[:first[0] - 1] = np.linspace(0, before, first[0])[1:]
    curve = np.where(np.isnan(curve), r.history["psnr"][:, 0], curve)
    if done is not None:
        tensors = {"latent": r.latent, "image": r.image, "times": torch.from_numpy(times),
                   "curve": torch.from_numpy(curve),
                   "seconds": torch.tensor([r.seconds], dtype=torch.float64)}
        tensors.update({f"noise.{k}": v for k, v in (r.noise or {}).items()})
        tensors.update({f"tuned.{k}": v for k, v in (r.tuned[0] if r.tuned else {}).items()})
        tensors.update({f"final.{k}": torch.from_numpy(np.asarray(v, dtype=np.float64))
                        for k, v in r.final.items()})
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(done))
    return times, curve, r


def _read_cached(path: Path):
    with safe_open(str(path), "pt") as f:
        t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not iterable)

    def part(prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}

    noise, tuned = part("noise."), part("tuned.")
    r = SimpleNamespace(latent=t["latent"], image=t["image"], seconds=float(t["seconds"][0]),
                        final={k: v.numpy() for k, v in part("final.").items()},
                        noise={k: v for k, v in noise.items()} or None,
                        tuned=[tuned] if tuned else None)
    return t["times"].numpy(), t["curve"].numpy(), r


def editability(G, run: dict) -> dict:
    """50% morphs of pairs (see the module docstring)."""
    rs = run["results"]
    close, effect = [], []
    dev = G.w_avg.device                         # cached results come back on the CPU
    for a, b in zip(rs[0::2], rs[1::2], strict=False):
        mid = 0.5 * (a.latent.to(dev) + b.latent.to(dev))
        Ga = G
        if a.tuned is not None:                   # PTI: the edit runs on a's tuned generator
            Ga = copy.deepcopy(G)
            Ga.load_state_dict(a.tuned[0], strict=False)
        with torch.no_grad():
            plain = G.synthesis(mid, noise_mode="const")
            edited = Ga.synthesis(mid, noise_mode="const") if a.noise is None else \
                synthesis_with_noise(Ga, mid, {k: v[0].to(dev) for k, v in a.noise.items()})
        close.append(float(psnr(mse(to_uint8(edited), to_uint8(a.image)))[0]))
        effect.append(float(psnr(mse(to_uint8(edited), to_uint8(plain)))[0]))
    # None (null in results.json) without a pair, and for the noise effect when the edit is the
    # plain model's exactly (no maps, no tuning: an infinite PSNR)
    finite = [e for e in effect if np.isfinite(e)]
    return {"morph_psnr": float(np.mean(close)) if close else None,
            "noise_effect_db": float(np.mean(finite)) if finite else None}


def reach_time(run: dict, level: float) -> float | None:
    """Wall time at which the mean PSNR first reaches ``level``."""
    hit = np.nonzero(run["psnr"] >= level)[0]
    return float(run["time"][hit[0]]) if len(hit) else None


def plot(path: Path, runs: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name, r in runs.items():
        ax.plot(r["time"], r["psnr"], label=name, linewidth=1.5)
    ax.set_xscale("log")
    ax.set_xlabel("wall time per image (s, log)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def quality_part(name: str, G, targets: torch.Tensor, recipes: list[str], overrides_for,
                 out: Path, title: str) -> dict:
    runs = {}
    cache = out / "cache" / name
    cache.mkdir(parents=True, exist_ok=True)
    for recipe in recipes:
        runs[recipe] = run_recipe(G, targets, recipe, overrides_for(recipe), cache)
        f = runs[recipe]["final"]
        print(f"[{name}] {recipe:10s} PSNR {f['psnr']:.2f} dB  SSIM {f['ssim']:.4f}  "
              f"{f['seconds']:.1f} s per image", flush=True)
    plot(out / f"time_to_quality_{name}.png", runs, title)
    save_image(out / f"recon_{name}.png", np.concatenate(
        [np.concatenate(list(to_uint8(targets)), axis=1)] +
        [np.concatenate(list(r["recon"]), axis=1) for r in runs.values()], axis=0))
    summary = {}
    paper = runs.get("paper")
    for recipe, r in runs.items():
        s = {**r["final"], "stages": r["stages"], **editability(G, r)}
        if paper is not None:
            level = float(paper["psnr"][-1]) - 0.1
            s["reaches_paper_at_s"] = reach_time(r, level)
            s["paper_seconds"] = float(paper["time"][-1])
            if s["reaches_paper_at_s"] is not None:
                s["fraction_of_paper_time"] = s["reaches_paper_at_s"] / s["paper_seconds"]
        s["curve"] = {"time": r["time"][::10].tolist(), "psnr": r["psnr"][::10].tolist()}
        summary[recipe] = s
    return summary


def combine(files: list[str], out: Path) -> None:
    """One plot of part a's curves from several results.json files (first file wins on a
    recipe in several)."""
    runs = {}
    for f in files:
        for recipe, r in json.loads(Path(f).read_text())["parts"]["a"].items():
            runs.setdefault(recipe, {"time": np.array(r["curve"]["time"]),
                                     "psnr": np.array(r["curve"]["psnr"])})
    out.mkdir(parents=True, exist_ok=True)
    plot(out / "time_to_quality_a.png", runs, "demo: held-out faces at 64 px (mean PSNR)")


def step_times(resolution: int, recipes: list[str], overrides: dict, steps: int = 3,
               rounds: int = 1, device: str = "cpu") -> dict:
    """Seconds per step of every stage of every recipe at ``resolution`` (FFHQ widths, random
    weights): each stage shortened to ``steps + 1`` steps, the first not counted. With
    ``rounds`` > 1 the recipes take turns ``rounds`` times in this one process (A/B on a
    noisy machine) and each stage's figure is the median over the rounds' means; the
    per-round means are kept under ``rounds``."""
    G = ffhq_width_generator(resolution)
    x = own_targets(G, 1)
    G = G.to(device)
    sync = torch.cuda.synchronize if G.w_avg.is_cuda else (lambda: None)
    per_round: dict[str, list[float]] = {}
    for _ in range(rounds):
        for recipe in recipes:
            cfg = i2s.EmbedConfig(recipe=recipe, **overrides)
            short = cfg.replace(steps=steps + 1,
                                noise_steps=steps + 1 if cfg.noise_steps else 0,
                                tune_steps=steps + 1 if cfg.tune_steps else 0,
                                tune_stop_lpips=None)
            marks: list[tuple[str, float]] = []
            t0 = time.perf_counter()
            i2s.embed(G, x, short, callback=lambda s, m=marks: (sync(), m.append(
                (s.stage, time.perf_counter()))))
            previous = t0
            per_stage: dict[str, list[float]] = {}
            for stage, t in marks:
                per_stage.setdefault(stage, []).append(t - previous)
                previous = t
            for stage, ts in per_stage.items():
                key = f"{recipe}/{stage}"
                per_round.setdefault(key, []).append(
                    float(np.mean(ts[1:] if len(ts) > 1 else ts)))
                print(f"[c] {resolution} px {key}: {per_round[key][-1]:.3f} s per step",
                      flush=True)
    out: dict = {key: float(np.median(v)) for key, v in per_round.items()}
    if rounds > 1:
        out["rounds"] = per_round
    out["resolution"] = resolution
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("a", "b", "c", "all"), default="a")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--loss", default="mse", help="replaces every recipe's loss ('recipe': "
                    "keep each recipe's own; needs VGG-16 and LPIPS weights)")
    ap.add_argument("--steps-scale", type=float, default=1.0,
                    help="multiply every recipe's step counts (for a quicker look)")
    ap.add_argument("--images", type=int, default=None, help="fewer images")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--resolution", type=int, default=1024, help="part c's resolution")
    ap.add_argument("--step-rounds", type=int, default=1,
                    help="part c: the recipes take turns this many times (median kept)")
    ap.add_argument("--timed-steps", type=int, default=3,
                    help="part c: steps timed per stage and round")
    ap.add_argument("--out", default="out/time_to_quality")
    ap.add_argument("--combine", nargs="+", metavar="RESULTS_JSON", default=None,
                    help="only plot part a of these results.json files together into "
                         "OUT/time_to_quality_a.png (runs split over processes)")
    args = ap.parse_args()
    if args.combine:
        combine(args.combine, Path(args.out))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recipes = args.recipes.split(",")
    overrides = {} if args.loss == "recipe" else {"loss": args.loss}
    doc = {"machine": describe_machine(args.device), "device": args.device,
           "threads": torch.get_num_threads(), "loss": args.loss,
           "steps_scale": args.steps_scale, "parts": {}}

    def scaled(recipe: str) -> dict:
        cfg = i2s.EmbedConfig(recipe=recipe)
        o = dict(overrides)
        if args.steps_scale != 1.0:
            o["steps"] = max(1, round(cfg.steps * args.steps_scale))
            if cfg.noise_steps:
                o["noise_steps"] = max(1, round(cfg.noise_steps * args.steps_scale))
        return o

    def part(name, G, targets, title):
        return quality_part(name, G, targets, recipes, scaled, out, title)

    if args.part in ("a", "all"):
        G, targets = demo_targets()
        G = G.to(args.device)
        n = len(targets[:args.images])
        doc["parts"]["a"] = part("a", G, targets[:args.images],
                                 f"demo, {n} held-out faces, 64 px")
    if args.part in ("b", "all"):
        G = ffhq_width_generator(256)
        targets = own_targets(G, args.images or 4)
        doc["parts"]["b"] = part("b", G.to(args.device), targets,
                                 "256 px, FFHQ widths (random weights), own images")
    if args.part in ("c", "all"):
        doc["parts"]["c"] = step_times(args.resolution, recipes, overrides,
                                          args.timed_steps, args.step_rounds,
                                          args.device)
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=float))
    for name, p in doc["parts"].items():
        if name == "c":
            continue
        print(f"\npart {name}")
        for recipe, s in p.items():
            frac = s.get("fraction_of_paper_time")
            reach = ("paper not run" if "paper" not in p else "never" if frac is None
                     else f"{100 * frac:.1f}% of its time")
            morph, effect = (("n/a" if v is None else f"{v:.2f} dB")
                             for v in (s["morph_psnr"], s["noise_effect_db"]))
            print(f"  {recipe:10s} {s['psnr']:6.2f} dB  SSIM {s['ssim']:.4f}  "
                  f"{s['seconds']:7.1f} s  reaches paper at {reach}  "
                  f"morph {morph}, noise effect {effect}")


if __name__ == "__main__":
    main()
