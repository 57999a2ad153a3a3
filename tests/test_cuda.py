"""On a CUDA GPU: every recipe, masks, LPIPS, PTI's tuned file and the CLI (the recipes issue).

Every test here is marked ``cuda`` and skipped without a CUDA device; on a GPU machine
``pytest -m cuda`` runs them (``benchmarks/gpu.sh`` runs them with the GPU benchmarks). The
random draws of a run (starts, noise on w, initial noise maps) come from CPU generators, so a
GPU run follows the CPU run up to floating-point rounding (TF32 convolutions included); the
tolerances below allow for that and nothing more.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

import i2s
from i2s.embedding.recipes import RECIPES
from i2s.embedding.stages import total_steps
from i2s.media.images import save_image
from tests.cli_run import run
from tests.conftest import make_generator
from tests.test_recipes import lpips_model, own_image, recipe_case

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def on_cuda(G):
    return copy.deepcopy(G).cuda()


@pytest.mark.parametrize("arch", ["stylegan2", "stylegan1"])
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_on_cuda_follows_the_cpu_run(arch, recipe, tmp_path):
    G, x, cfg = recipe_case(arch, recipe)
    cpu = i2s.embed(G, x, cfg)
    Gc = on_cuda(G)
    gpu = i2s.embed(Gc, x, cfg)
    assert gpu.latent.device.type == "cuda" and gpu.steps_run.tolist() == [total_steps(cfg)]
    torch.testing.assert_close(gpu.latent.cpu(), cpu.latent, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(gpu.final["psnr"], cpu.final["psnr"], atol=0.2)
    assert torch.isfinite(gpu.image).all()
    folder = gpu.save(tmp_path / "o", names=["x"], model=Gc)[0]
    assert (folder / "latent.npz").is_file() and (folder / "reconstruction.png").is_file()
    if recipe == "pti":                  # the tuned file from a GPU run loads on the CPU
        from i2s.embedding.tuned import apply_tuned
        with torch.no_grad():
            again = apply_tuned(G, folder / "tuned.safetensors").synthesis(
                gpu.latent.cpu(), noise_mode="const")
        torch.testing.assert_close(again, gpu.image.cpu(), rtol=1e-2, atol=1e-2)


def test_masked_embedding_on_cuda_ignores_the_painted_region():
    G = make_generator()
    x = own_image(G)
    mask = torch.ones(16, 16)
    mask[4:12, 4:12] = 0
    painted = x.clone()
    painted[..., 4:12, 4:12] = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    Gc = on_cuda(G)
    a = i2s.embed(Gc, x, steps=40, lr=0.05, loss="mse", mask=mask)
    b = i2s.embed(Gc, painted, steps=40, lr=0.05, loss="mse", mask=mask)
    torch.testing.assert_close(a.latent, b.latent)


def test_lpips_on_cuda_matches_the_cpu():
    lp = lpips_model()
    torch.manual_seed(0)
    x0, x1 = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    want = lp(x0, x1)
    lpc = copy.deepcopy(lp).cuda()
    torch.testing.assert_close(lpc(x0.cuda(), x1.cuda()).cpu(), want, rtol=1e-2, atol=1e-3)
    G = make_generator(resolution=32, channel_base=64, channel_max=8)
    r = i2s.embed(on_cuda(G), own_image(G), steps=3, loss="lpips", vgg=lpc.vgg, lpips=lpc)
    assert np.isfinite(r.final["lpips"]).all()


def test_cli_on_cuda_embeds_tunes_edits_and_inpaints(tmp_path, capsys, model_file):
    img, mask = tmp_path / "a.png", tmp_path / "m.png"
    save_image(img, (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8))
    m = np.full((16, 16, 3), 255, np.uint8)
    m[4:12, 4:12] = 0
    save_image(mask, m)
    code, out, err = run(["embed", img, "--model", model_file, "--out", tmp_path / "o",
                          "--recipe", "pti", "--loss", "mse", "--steps", "3", "--tune-steps",
                          "3", "--device", "cuda", "-q"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "o" / "a" / "metrics.json").read_text())
    assert metrics["device"].startswith("cuda") and np.isfinite(metrics["psnr"])
    lat, tuned = tmp_path / "o" / "a" / "latent.npz", tmp_path / "o" / "a" / "tuned.safetensors"
    code, out, err = run(["morph", lat, lat, "--model", model_file, "--out", tmp_path / "m",
                          "--steps", "3", "--tuned", tuned, "--device", "cuda", "-q"], capsys)
    assert code == 0, err
    for recipe in ("fast", "i2s++", "projector"):
        code, out, err = run(["embed", img, "--model", model_file, "--out", tmp_path / recipe,
                              "--recipe", recipe, "--loss", "mse", "--steps", "3",
                              "--noise-steps", "2", "--device", "cuda", "-q"], capsys)
        assert code == 0, (recipe, err)
    code, out, err = run(["inpaint", img, "--mask", mask, "--model", model_file, "--out",
                          tmp_path / "i", "--loss", "mse", "--steps", "3", "--device", "cuda",
                          "-q"], capsys)
    assert code == 0, err
    assert (tmp_path / "i" / "inpainted.png").is_file()
