"""Embedding recipes (paper, projector, i2s++, fast): their settings, schedules, the noise-map
regulariser, optimised noise maps, LPIPS as a loss, masks and early stopping."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import i2s
from i2s.embedding.config import PAPER
from i2s.embedding.latents import LatentFile, load_latent, save_latent
from i2s.embedding.losses import EmbedLoss, LPIPSLoss, masked_mse_per_sample, mse_per_sample
from i2s.embedding.noise_maps import (
    initial_noise_maps,
    noise_map_names,
    noise_regularizer,
    renormalise_,
    synthesis_with_noise,
)
from i2s.embedding.recipes import RECIPES
from i2s.embedding.schedules import lr_factor, w_noise_factor, w_std
from i2s.embedding.stages import plan, total_steps
from i2s.media.images import save_image
from i2s.models.lpips import LPIPS
from tests.cli_run import run
from tests.conftest import make_generator, make_vgg_state
from tests.test_lpips import make_lin_state

# -- settings ------------------------------------------------------------------------------------


def test_recipes_bring_their_defaults_and_explicit_settings_win():
    assert i2s.EmbedConfig().recipe == "paper" and i2s.EmbedConfig().steps == 5000
    p = i2s.EmbedConfig(recipe="projector")
    assert (p.space, p.steps, p.lr, p.loss, p.lr_schedule, p.w_noise, p.noise_maps,
            p.noise_regularize) == ("w", 1000, 0.1, "lpips", "projector", 0.05, "joint", 1e5)
    mine = i2s.EmbedConfig(recipe="projector", steps=10, space="w+")
    assert mine.steps == 10 and mine.space == "w+" and mine.lr == 0.1
    # a new recipe re-resolves what was never given, keeps what was
    fast = mine.replace(recipe="fast")
    assert fast.steps == 10 and fast.space == "w+" and fast.lr == RECIPES["fast"]["lr"]
    assert fast.noise_maps == "off" and fast.loss == "mse+vgg" and fast.optimizer == "lbfgs"
    assert i2s.EmbedConfig.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert set(PAPER) >= {k for r in RECIPES.values() for k in r}


@pytest.mark.parametrize("bad, match", [
    (dict(recipe="nope"), "unknown recipe"),
    (dict(noise_maps="after", noise_steps=0), "noise_steps > 0"),
    (dict(noise_maps="joint", noise_mode="none"), "noise_mode"),
    (dict(target_psnr=-1.0), "target_psnr"),
    (dict(target_psnr=float("nan")), "target_psnr"),
    (dict(patience=0), "patience"),
    (dict(w_noise=float("inf")), "w_noise"),
    (dict(lr_schedule="step"), "lr_schedule"),
])
def test_bad_settings_are_one_line_errors(bad, match):
    with pytest.raises(i2s.I2SError, match=match):
        i2s.EmbedConfig(**bad)


def test_stages_of_each_recipe():
    assert [s.name for s in plan(i2s.EmbedConfig())] == ["latent"]
    (s,) = plan(i2s.EmbedConfig(recipe="projector", loss="mse"))
    assert s.name == "latent+noise" and s.noise and s.latent and s.noise_regularize == 1e5
    a, b = plan(i2s.EmbedConfig(recipe="i2s++"))
    assert (a.name, a.latent, a.noise, a.steps) == ("latent", True, False, 5000)
    assert (b.name, b.latent, b.noise, b.steps, b.perceptual_weight) == ("noise", False, True,
                                                                          1000, 0.0)
    assert total_steps(i2s.EmbedConfig(recipe="i2s++")) == 6000
    assert i2s.EmbedConfig(recipe="i2s++").batch_for(64) == 1


# -- schedules -----------------------------------------------------------------------------------


def test_schedules_known_values():
    assert lr_factor("constant", 0.7) == 1.0
    assert lr_factor("projector", 0.0) == 0.0
    assert lr_factor("projector", 0.025) == pytest.approx(0.5)       # half-way up the warm-up
    assert lr_factor("projector", 0.5) == pytest.approx(1.0)
    assert lr_factor("projector", 0.875) == pytest.approx(0.5)       # half-way down the ramp
    assert lr_factor("cosine", 0.5) == pytest.approx(0.5)
    assert lr_factor("cosine", 0.05) == pytest.approx(0.5 * (1 + math.cos(0.05 * math.pi)))
    assert w_noise_factor(0.0) == 1.0 and w_noise_factor(0.375) == pytest.approx(0.25)
    assert w_noise_factor(0.75) == 0.0 and w_noise_factor(0.9) == 0.0


def test_w_std_is_the_rms_distance_to_w_avg():
    G = make_generator()
    gen = torch.Generator().manual_seed(123)
    z = torch.randn(10_000, G.z_dim, generator=gen)
    w = G.mapping(z)[:, 0]
    want = math.sqrt(float((w - G.w_avg).square().sum()) / 10_000)
    assert w_std(G) == pytest.approx(want, rel=1e-5)


# -- noise maps ----------------------------------------------------------------------------------


def test_noise_regularizer_known_values():
    assert float(noise_regularizer({"a": torch.ones(8, 8)})) == pytest.approx(2.0)
    assert float(noise_regularizer({"a": torch.ones(16, 16)})) == pytest.approx(4.0)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None]) % 2 * 2.0 - 1.0
    # shifted by one pixel it is its own negative (2 at 16 px); pooled to 8 px it is 0
    assert float(noise_regularizer({"a": checker})) == pytest.approx(2.0)
    maps = {"a": torch.randn(32, 32) * 3 + 1}
    renormalise_(maps)
    assert float(maps["a"].mean()) == pytest.approx(0, abs=1e-6)
    assert float(maps["a"].square().mean()) == pytest.approx(1, abs=1e-5)


def stylegan1(resolution=16):
    torch.manual_seed(0)
    G = i2s.StyleGANGenerator(i2s.StyleGANConfig(resolution=resolution, z_dim=16, w_dim=16,
                                                 fmap_base=64, fmap_max=16,
                                                 mapping_layers=2))
    with torch.no_grad():
        for m in G.modules():
            if hasattr(m, "noise_strength"):
                m.noise_strength.fill_(0.1)
    return G.eval().requires_grad_(False)


@pytest.mark.parametrize("arch", ["stylegan2", "stylegan1"])
def test_synthesis_with_noise_maps_matches_and_gets_gradients(arch):
    # 32 px and 8 channels: the 32 px layers take the folded path for one sample
    G = make_generator(resolution=32, channel_base=64, channel_max=8) if arch == "stylegan2" \
        else stylegan1()
    ws = G.w_avg.expand(1, G.num_ws, -1)
    maps = initial_noise_maps(G, "model", 0)
    assert list(maps) == noise_map_names(G) and len(maps) == 2 * len(
        G.synthesis.block_resolutions) - (arch == "stylegan2")
    assert torch.equal(synthesis_with_noise(G, ws, maps), G.synthesis(ws, noise_mode="const"))
    for m in maps.values():
        m.requires_grad_(True)
    synthesis_with_noise(G, ws, maps).square().sum().backward()
    got = {k: m.grad.clone() for k, m in maps.items()}
    assert all(g is not None and g.abs().sum() > 0 for g in got.values())
    for m in maps.values():
        m.grad = None
    synthesis_with_noise(G, ws, maps, reference=True).square().sum().backward()
    for k, m in maps.items():
        torch.testing.assert_close(got[k], m.grad, rtol=1e-4, atol=1e-6)
    # the model's own buffers are untouched
    assert not any(b.requires_grad for b in G.buffers())


def test_random_noise_init_is_seeded():
    G = make_generator()
    a, b = initial_noise_maps(G, "random", 3), initial_noise_maps(G, "random", 3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(next(iter(a.values())), next(iter(
        initial_noise_maps(G, "model", 3).values())))


# -- recipes run ---------------------------------------------------------------------------------


def own_image(G, seed=1):
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.synthesis(G.mapping(z)).clamp(-1, 1)


def test_i2s_plus_plus_fits_the_noise_after_the_latent():
    G = make_generator(noise_strength=0.5)
    x = own_image(G)
    base = i2s.embed(G, x, steps=30, lr=0.05, loss="mse")
    pp = i2s.embed(G, x, recipe="i2s++", steps=30, lr=0.05, loss="mse", noise_steps=40,
                   noise_lr=0.05)
    assert pp.history["psnr"].shape == (70, 1) and pp.steps_run.tolist() == [70]
    torch.testing.assert_close(pp.latent, base.latent)     # the noise stage leaves w alone
    assert pp.final["psnr"][0] > base.final["psnr"][0] + 0.5
    assert set(pp.noise) == set(noise_map_names(G))
    assert all(v.shape == (1, *G.synthesis.get_buffer(k).shape) for k, v in pp.noise.items())
    assert pp.record["stages"][1]["name"] == "noise"
    assert base.noise is None


def test_projector_recipe_runs_and_keeps_the_maps_normalised():
    G = make_generator()
    x = own_image(G)
    seen = []
    r = i2s.embed(G, x, recipe="projector", loss="mse", steps=20,
                  callback=lambda s: seen.append(s.stage))
    assert seen == ["latent+noise"] * 20 and r.latent.shape == (1, G.num_ws, G.w_dim)
    assert torch.equal(r.latent[0, 0], r.latent[0, -1])               # space w
    for m in r.noise.values():
        assert abs(float(m.mean())) < 1e-4 and abs(float(m.square().mean()) - 1) < 1e-3
    assert np.isfinite(r.final["psnr"]).all()


def test_target_psnr_and_patience_stop_early():
    G = make_generator()
    x = own_image(G)
    r = i2s.embed(G, x, steps=500, lr=0.05, loss="mse", target_psnr=1.0)
    assert r.steps_run.tolist() == [1] and r.history["psnr"].shape == (1, 1)
    r = i2s.embed(G, x, steps=500, lr=1e-9, loss="mse", patience=5)
    assert r.steps_run.tolist() == [6]
    # batches that stop at different steps: the shorter history is padded with NaN
    two = torch.cat([x, own_image(G, 2)])
    r = i2s.embed(G, two, steps=50, lr=0.05, loss="mse", batch_size=1, patience=3,
                  lr_schedule="cosine")
    assert r.history["psnr"].shape[0] == max(r.steps_run)


def test_fast_recipe_is_lbfgs_with_a_tenth_of_the_evaluations():
    cfg = i2s.EmbedConfig(recipe="fast")
    assert cfg.space == "w+" and cfg.loss == "mse+vgg" and cfg.optimizer == "lbfgs"
    assert cfg.steps * 10 <= i2s.EmbedConfig().steps
    (stage,) = plan(cfg)
    assert stage.optimizer == "lbfgs" and stage.lr == 1.0
    G = make_generator()
    x = own_image(G)
    seen = []
    fast = i2s.embed(G, x, recipe="fast", loss="mse", steps=60, callback=seen.append)
    adam = i2s.embed(G, x, loss="mse", steps=60)
    # every evaluation (line-search trials included) is one recorded step
    assert len(seen) == fast.steps_run[0] <= 60 and [s.step for s in seen] == list(
        range(1, len(seen) + 1))
    assert fast.final["psnr"][0] > adam.final["psnr"][0] + 3
    # the same batch twice gives the same result (deterministic line search)
    again = i2s.embed(G, x, recipe="fast", loss="mse", steps=60)
    assert torch.equal(again.latent, fast.latent)


def test_lbfgs_needs_a_deterministic_loss():
    with pytest.raises(i2s.I2SError, match="deterministic"):
        i2s.EmbedConfig(recipe="fast", w_noise=0.05)
    with pytest.raises(i2s.I2SError, match="deterministic"):
        i2s.EmbedConfig(optimizer="lbfgs", noise_mode="random")


# -- masks ---------------------------------------------------------------------------------------


def test_masked_mse_known_value():
    x, y = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    y[..., :2, :] = 2.0                   # differs by 2 (= 1 on the [0, 1] scale) on the top half
    top = torch.zeros(1, 1, 4, 4)
    top[..., :2, :] = 1
    assert float(masked_mse_per_sample(x, y, top)) == pytest.approx(1.0)
    assert float(masked_mse_per_sample(x, y, 1 - top)) == 0.0
    assert float(masked_mse_per_sample(x, y, torch.ones(1, 1, 4, 4))) == pytest.approx(
        float(mse_per_sample(x, y)))


def test_a_painted_region_under_the_mask_is_ignored():
    """Two targets that differ only where the mask is black embed to the same latent."""
    G = make_generator()
    x = own_image(G)
    mask = torch.ones(16, 16)
    mask[4:12, 4:12] = 0
    painted = x.clone()
    painted[..., 4:12, 4:12] = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)  # red square
    a = i2s.embed(G, x, steps=40, lr=0.05, loss="mse", mask=mask)
    b = i2s.embed(G, painted, steps=40, lr=0.05, loss="mse", mask=mask)
    torch.testing.assert_close(a.latent, b.latent)
    c = i2s.embed(G, painted, steps=40, lr=0.05, loss="mse")
    assert not torch.allclose(c.latent, b.latent)


@pytest.mark.parametrize("mask, match", [
    (torch.ones(8, 8), "mask must be"),
    (torch.zeros(16, 16), "empty"),
    (torch.full((16, 16), 2.0), r"\[0, 1\]"),
])
def test_bad_masks(mask, match):
    G = make_generator()
    with pytest.raises(i2s.I2SError, match=match):
        i2s.embed(G, own_image(G), steps=1, loss="mse", mask=mask)


# -- LPIPS as the loss ---------------------------------------------------------------------------


def lpips_model():
    from i2s.models.vgg16 import VGG16Features
    vgg = VGG16Features()
    state = make_vgg_state()
    vgg.features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()
                                  if k.startswith("features.")})
    lin = [make_lin_state()[f"lin{k}.model.1.weight"] for k in range(5)]
    return LPIPS(vgg.eval().requires_grad_(False), lin)


def test_lpips_loss_is_the_lpips_distance():
    lp = lpips_model()
    torch.manual_seed(0)
    x0, x1 = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    loss = LPIPSLoss(lp, resolution=256)
    torch.testing.assert_close(loss(x0, loss.features(x1)), lp(x0, x1), rtol=1e-5, atol=1e-6)
    # larger images are area-downsampled first
    small = LPIPSLoss(lp, resolution=16)
    want = lp(torch.nn.functional.avg_pool2d(x0, 2), torch.nn.functional.avg_pool2d(x1, 2))
    torch.testing.assert_close(small(x0, small.features(x1)), want, rtol=1e-5, atol=1e-6)
    crit = EmbedLoss(x1, loss, lambda_mse=0.0)
    torch.testing.assert_close(crit(x0)["loss"], lp(x0, x1), rtol=1e-5, atol=1e-6)


def test_embed_with_the_lpips_loss_measures_lpips():
    G = make_generator(resolution=32, channel_base=64, channel_max=8)
    lp = lpips_model()
    x = own_image(G)
    r = i2s.embed(G, x, steps=5, loss="mse+lpips", lr=0.05, vgg=lp.vgg, lpips=lp)
    assert r.final["lpips"][0] == pytest.approx(float(lp(r.image, x)), rel=1e-4)
    assert r.final["perceptual"][0] == pytest.approx(r.final["lpips"][0], rel=1e-4)


def test_lpips_loss_without_weights_is_one_clear_error(monkeypatch, tmp_path, vgg_file):
    monkeypatch.setenv("I2S_HOME", str(tmp_path))
    monkeypatch.delenv("I2S_LPIPS", raising=False)
    G = make_generator()
    with pytest.raises(i2s.I2SError, match="lpips-vgg"):
        i2s.embed(G, own_image(G), steps=1, loss="lpips", vgg_weights=str(vgg_file))


# -- files and CLI -------------------------------------------------------------------------------


def test_latent_files_keep_the_noise_maps(tmp_path):
    noise = {"b4.conv1.noise_const": np.random.rand(4, 4).astype(np.float32)}
    save_latent(tmp_path / "l.npz", LatentFile(np.zeros((4, 8), np.float32), "w+", "", None,
                                               noise))
    back = load_latent(tmp_path / "l.npz")
    assert np.array_equal(back.noise["b4.conv1.noise_const"], noise["b4.conv1.noise_const"])
    assert load_latent_none(tmp_path).noise is None
    bad = {"x": np.full((4, 4), np.nan, np.float32)}
    save_latent(tmp_path / "bad.npz", LatentFile(np.zeros((4, 8), np.float32), "w+", "", None,
                                                 bad))
    with pytest.raises(i2s.I2SError, match="noise map"):
        load_latent(tmp_path / "bad.npz")


def load_latent_none(tmp_path):
    save_latent(tmp_path / "plain.npz", LatentFile(np.zeros((4, 8), np.float32), "w+", ""))
    return load_latent(tmp_path / "plain.npz")


def test_cli_recipes_masks_and_stages(tmp_path, capsys, model_file, tiny_G, monkeypatch):
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))       # no LPIPS weights there
    monkeypatch.delenv("I2S_LPIPS", raising=False)
    img = tmp_path / "a.png"
    save_image(img, (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8))
    mask = tmp_path / "m.png"
    m = np.full((16, 16, 3), 255, np.uint8)
    m[:8] = 0
    save_image(mask, m)
    code, out, err = run(["embed", img, "--model", model_file, "--out", tmp_path / "o",
                          "--recipe", "i2s++", "--loss", "mse", "--steps", "3",
                          "--noise-steps", "2", "--mask", mask, "-q"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "o" / "a" / "metrics.json").read_text())
    assert metrics["recipe"] == "i2s++" and metrics["steps"] == 5
    assert [s["name"] for s in metrics["stages"]] == ["latent", "noise"]
    assert metrics["settings"]["lr"] == 0.01 and metrics["lpips"] is None
    assert "lpips-vgg" in metrics["lpips_metric"]
    assert load_latent(tmp_path / "o" / "a" / "latent.npz").noise is not None
    assert (tmp_path / "o" / "a" / "mask.png").is_file()
    code, out, err = run(["embed", img, "--model", model_file, "--out", tmp_path / "p",
                          "--recipe", "projector", "--loss", "mse", "--steps", "2", "-q"],
                         capsys)
    assert code == 0, err
    s = json.loads((tmp_path / "p" / "a" / "metrics.json").read_text())["settings"]
    assert s["space"] == "w" and s["lr"] == 0.1 and s["noise_maps"] == "joint"
    code, out, err = run(["embed", img, "--model", model_file, "--out", tmp_path / "q",
                          "--loss", "mse", "--steps", "2", "--mask", tmp_path / "nope.png"],
                         capsys)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "nope.png" in err


# -- inpainting ----------------------------------------------------------------------------------


def test_inpaint_keeps_the_known_pixels_and_fills_the_hole(tmp_path):
    from i2s.embedding.inpaint import inpaint
    from i2s.media.images import to_uint8

    G = make_generator()
    x = to_uint8(own_image(G))[0]
    mask = np.ones((16, 16), np.float32)
    mask[4:12, 4:12] = 0
    holed = x.copy()
    holed[4:12, 4:12] = (255, 0, 0)                               # a painted square
    res = inpaint(G, holed, mask, steps=60, lr=0.05, loss="mse")
    assert np.array_equal(res.inpainted[mask == 1], holed[mask == 1])
    assert np.array_equal(res.inpainted[mask == 0], res.fill[mask == 0])
    # the fill is the generator's guess: far nearer the hidden truth than the paint
    hole = mask == 0
    err_fill = np.abs(res.fill[hole].astype(int) - x[hole]).mean()
    err_paint = np.abs(holed[hole].astype(int) - x[hole]).mean()
    assert err_fill < err_paint / 2
    assert res.known_psnr > 20
    res.save(tmp_path / "o", source="holed.png")
    names = {p.name for p in (tmp_path / "o").iterdir()}
    assert names == {"latent.npz", "target.png", "mask.png", "fill.png", "inpainted.png",
                     "metrics.json"}
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["edit"] == "inpaint" and m["hole_fraction"] == pytest.approx(0.25)
    with pytest.raises(i2s.I2SError, match="no hole"):
        inpaint(G, holed, np.ones((16, 16)), steps=1, loss="mse")


def test_inpaint_cli(tmp_path, capsys, model_file):
    img, mask = tmp_path / "a.png", tmp_path / "m.png"
    save_image(img, (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8))
    m = np.full((16, 16, 3), 255, np.uint8)
    m[4:12, 4:12] = 0
    save_image(mask, m)
    code, out, err = run(["inpaint", img, "--mask", mask, "--model", model_file, "--out",
                          tmp_path / "o", "--loss", "mse", "--steps", "3", "-q"], capsys)
    assert code == 0, err
    assert "known pixels" in out and (tmp_path / "o" / "inpainted.png").is_file()
    assert not list((tmp_path / "o").glob(".i2s-partial-*"))
    white = tmp_path / "w.png"
    save_image(white, np.full((16, 16, 3), 255, np.uint8))
    code, out, err = run(["inpaint", img, "--mask", white, "--model", model_file, "--out",
                          tmp_path / "p", "--loss", "mse", "--steps", "3", "-q"], capsys)
    assert code == 1 and err.strip().startswith("error:") and "no hole" in err
    assert not (tmp_path / "p" / "inpainted.png").exists()


# -- pivotal tuning (PTI) ------------------------------------------------------------------------


def test_pti_tunes_a_copy_and_the_tuned_file_round_trips(tmp_path):
    from i2s.embedding.tuned import apply_tuned, read_tuned

    G = make_generator()
    G.sha256 = "ab" * 32
    before = {k: v.clone() for k, v in G.state_dict().items()}
    x = torch.cat([own_image(G, 1), own_image(G, 2)])
    cfg = i2s.EmbedConfig(recipe="pti", loss="mse", steps=20, tune_steps=25)
    assert [s.name for s in plan(cfg)] == ["latent", "generator"] and cfg.batch_for(16) == 1
    r = i2s.embed(G, x, cfg)
    pivot = i2s.embed(G, x, cfg.replace(tune_steps=0))
    torch.testing.assert_close(r.latent, pivot.latent)          # tuning leaves the pivot alone
    assert (r.final["psnr"] > pivot.final["psnr"] + 0.5).all()
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # G untouched
    assert len(r.tuned) == 2 and r.steps_run.tolist() == [45, 45]
    folders = r.save(tmp_path / "o", names=["a", "b"])
    weights, base = read_tuned(folders[0] / "tuned.safetensors")
    assert base == G.sha256 and set(weights) == {f"synthesis.{k}" for k, _ in
                                                 G.synthesis.named_parameters()}
    Gt = apply_tuned(G, folders[0] / "tuned.safetensors")
    with torch.no_grad():
        again = Gt.synthesis(r.latent[:1])
    torch.testing.assert_close(again, r.image[:1], rtol=1e-4, atol=1e-5)
    # another model, a foreign file and a damaged tensor are refused in one line
    other = make_generator(seed=1)
    other.sha256 = "cd" * 32
    with pytest.raises(i2s.I2SError, match="another model"):
        apply_tuned(other, folders[0] / "tuned.safetensors")
    G.save(tmp_path / "g.safetensors")
    with pytest.raises(i2s.I2SError, match="not an i2s tuned-generator"):
        apply_tuned(G, tmp_path / "g.safetensors")
    from i2s.embedding.tuned import save_tuned
    bad = dict(weights)
    bad[next(iter(bad))] = torch.full_like(bad[next(iter(bad))], float("nan"))
    save_tuned(tmp_path / "bad.safetensors", bad, G.sha256)
    with pytest.raises(i2s.I2SError, match="NaN"):
        apply_tuned(G, tmp_path / "bad.safetensors")


def recipe_case(arch: str, recipe: str):
    """A tiny model of ``arch``, one of its own images and ``recipe`` shortened to a few steps
    of each stage: (G, image [1, 3, 16, 16], config)."""
    G = make_generator(noise_strength=0.5) if arch == "stylegan2" else stylegan1()
    G.sha256 = "ab" * 32
    cfg = i2s.EmbedConfig(recipe=recipe, loss="mse", steps=4, noise_steps=3, tune_steps=3)
    return G, own_image(G), cfg


@pytest.mark.parametrize("arch", ["stylegan2", "stylegan1"])
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_runs_on_both_architectures(arch, recipe, tmp_path):
    G, x, cfg = recipe_case(arch, recipe)
    r = i2s.embed(G, x, cfg)
    stages = [s.name for s in plan(cfg)]
    assert [s["name"] for s in r.record["stages"]] == stages
    assert r.steps_run.tolist() == [total_steps(cfg)]
    assert np.isfinite(r.final["psnr"]).all() and torch.isfinite(r.image).all()
    folder = r.save(tmp_path / "o", names=["x"], model=G)[0]
    assert (folder / "latent.npz").is_file()
    if recipe == "pti":                               # the tuned copy reproduces the result
        from i2s.embedding.tuned import apply_tuned
        with torch.no_grad():
            again = apply_tuned(G, folder / "tuned.safetensors").synthesis(r.latent,
                                                                            noise_mode="const")
        torch.testing.assert_close(again, r.image, rtol=1e-4, atol=1e-5)


def test_pti_stops_at_the_lpips_threshold():
    G = make_generator(resolution=32, channel_base=64, channel_max=8)
    lp = lpips_model()
    x = own_image(G)
    r = i2s.embed(G, x, recipe="pti", steps=3, tune_steps=50, tune_stop_lpips=1e9, vgg=lp.vgg,
                  lpips=lp)
    assert r.steps_run.tolist() == [4]          # 3 pivot steps, then one tuning step: LPIPS <= 1e9


def test_edit_commands_take_a_tuned_generator(tmp_path, capsys, model_file):
    img = tmp_path / "a.png"
    save_image(img, (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8))
    code, out, err = run(["embed", img, "--model", model_file, "--out", tmp_path / "o",
                          "--recipe", "pti", "--loss", "mse", "--steps", "3", "--tune-steps",
                          "3", "-q"], capsys)
    assert code == 0, err
    lat, tuned = tmp_path / "o" / "a" / "latent.npz", tmp_path / "o" / "a" / "tuned.safetensors"
    assert tuned.is_file()
    code, out, err = run(["morph", lat, lat, "--model", model_file, "--out", tmp_path / "m",
                          "--steps", "3", "--tuned", tuned, "-q"], capsys)
    assert code == 0, err
    record = json.loads((tmp_path / "m" / "edit.json").read_text())
    assert record["tuned_generator"] == str(tuned)
    code, out, err = run(["morph", lat, lat, "--model", model_file, "--out", tmp_path / "n",
                          "--steps", "3", "--tuned", img, "-q"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "a.png" in err


def test_noise_on_w_does_not_depend_on_the_batch():
    G = make_generator()
    x = torch.cat([own_image(G, 1), own_image(G, 2)])
    kw = dict(loss="mse", steps=15, lr=0.05, w_noise=0.05, lr_schedule="projector")
    both = i2s.embed(G, x, batch_size=2, **kw)
    one = i2s.embed(G, x, batch_size=1, **kw)
    torch.testing.assert_close(both.latent, one.latent, rtol=1e-4, atol=1e-5)


# -- local edits ---------------------------------------------------------------------------------


def test_local_edit_follows_the_edit_inside_the_mask_only():
    from i2s.edits import crossover
    from i2s.embedding.local_edit import local_edit

    G = make_generator()
    wc = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(1)))[0]
    wst = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(2)))[0]
    w = crossover(wc, wst, range(0, G.num_ws))                 # the whole style: a big edit
    with torch.no_grad():
        orig, edit = G.synthesis(wc[None]), G.synthesis(w[None])
    mask = np.zeros((16, 16), np.float32)
    mask[:, :8] = 1                                            # edit the left half only
    res, composite = local_edit(G, orig, edit, mask, w, steps=80, lr=0.05, loss="mse")
    left, right = (slice(None), slice(None), slice(None), slice(0, 8)), \
        (slice(None), slice(None), slice(None), slice(8, 16))
    assert torch.equal(composite[left], edit[left]) and torch.equal(composite[right],
                                                                    orig[right])
    err = (res.image - orig).abs()
    err_global = (edit - orig).abs()
    assert err[right].mean() < 0.5 * err_global[right].mean()      # the right half came back
    assert (res.image - edit).abs()[left].mean() < err_global[left].mean()
    with pytest.raises(i2s.I2SError, match="all black"):
        local_edit(G, orig, edit, np.zeros((16, 16)), w, steps=1, loss="mse")


def test_style_transfer_with_a_mask(tmp_path, capsys, model_file, tiny_G):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for path, seed in ((a, 1), (b, 2)):
        w = tiny_G.mapping(torch.randn(1, tiny_G.z_dim, generator=torch.Generator(
        ).manual_seed(seed)))[0]
        save_latent(path, LatentFile(w.numpy(), "w+", ""))
    mask = tmp_path / "m.png"
    m = np.zeros((16, 16, 3), np.uint8)
    m[:, :8] = 255
    save_image(mask, m)
    code, out, err = run(["style-transfer", a, b, "--mask", mask, "--model", model_file,
                          "--out", tmp_path / "o", "--loss", "mse", "--steps", "5", "-q"],
                         capsys)
    assert code == 0, err
    assert (tmp_path / "o" / "composite.png").is_file()
    rec = json.loads((tmp_path / "o" / "edit.json").read_text())
    assert rec["mask"]["steps"] == 5 and load_latent(tmp_path / "o" / "result.npz").w.shape == (
        tiny_G.num_ws, tiny_G.w_dim)


@pytest.mark.parametrize("steps", [2, 3, 5])
def test_lbfgs_never_evaluates_past_its_budget(tiny_G, steps):
    """torch's strong-Wolfe line search may ask for one evaluation past max_eval: the stage
    ends at its budget instead (this crashed with 3 steps), keeping the best point seen."""
    with torch.no_grad():
        x = tiny_G.synthesis(tiny_G.mapping(torch.randn(1, 32)), noise_mode="const")
    r = i2s.embed(tiny_G, x, recipe="fast", loss="mse", steps=steps)
    h = r.history["loss"][:, 0]
    assert len(h) <= steps and int(r.steps_run[0]) <= steps
    assert r.final["loss"][0] <= h.min() + 1e-6


def test_w_std_is_computed_once_per_model(tiny_G, monkeypatch):
    from i2s.embedding import schedules
    calls = []
    real = schedules._w_std
    monkeypatch.setattr(schedules, "_w_std", lambda *a: calls.append(a) or real(*a))
    first = schedules.w_std(tiny_G, samples=200)
    assert schedules.w_std(tiny_G, samples=200) == first and len(calls) == 1
    schedules.w_std(tiny_G, samples=300)
    assert len(calls) == 2
