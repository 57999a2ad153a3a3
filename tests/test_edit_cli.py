"""``i2s morph``, ``i2s style-transfer`` and ``i2s expression`` end to end on a tiny model."""

import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

import i2s
from i2s.embedding.latents import LatentFile, load_latent, save_latent
from i2s.media.files import sha256_file
from i2s.media.grid import labelled_strip
from tests.cli_run import run


@pytest.fixture
def latents(tmp_path, model_file):
    """Three latent files of the tiny model (6 style inputs of width 32)."""
    sha = sha256_file(model_file)
    paths = []
    for i in range(3):
        w = torch.randn(6, 32, generator=torch.Generator().manual_seed(i)).numpy() * 0.5
        p = tmp_path / f"l{i}.npz"
        save_latent(p, LatentFile(w=w, space="w+", model_sha256=sha))
        paths.append(p)
    return paths


def render(model_file, w):
    G = i2s.load_generator(model_file)
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(w)[None], noise_mode="const")
    return i2s.media.images.to_uint8(img)[0]


def strip_of(paths, labels):
    """The labelled strip the CLI must have written for these tiles."""
    return labelled_strip([np.asarray(Image.open(p)) for p in paths], labels)


def test_morph_frames_strip_video_and_endpoints(tmp_path, model_file, latents, capsys):
    out = tmp_path / "m"
    code, _, _ = run(["morph", latents[0], latents[1], "--frames", 5, "--model", model_file,
                      "--out", out], capsys)
    assert code == 0
    frames = sorted((out / "frames").glob("*.png"))
    assert len(frames) == 5 and len(list((out / "frames").glob("*.npz"))) == 5
    # Endpoints reproduce the inputs bit for bit (latents and images).
    a, b = load_latent(latents[0]).w, load_latent(latents[1]).w
    assert np.array_equal(load_latent(out / "frames" / "000.npz").w, a)
    assert np.array_equal(load_latent(out / "frames" / "004.npz").w, b)
    assert np.array_equal(np.asarray(Image.open(frames[0])), render(model_file, a))
    mid = load_latent(out / "frames" / "002.npz").w
    np.testing.assert_allclose(mid, (a + b) / 2, atol=1e-6)
    strip = np.asarray(Image.open(out / "strip.png"))
    assert np.array_equal(strip, strip_of(frames, ["t = 1.00", "t = 0.75", "t = 0.50",
                                                   "t = 0.25", "t = 0.00"]))
    reader = imageio.get_reader(out / "morph.mp4")
    n = sum(1 for _ in reader)
    assert n == 5 and reader.get_meta_data()["size"] == (256, 256)
    rec = json.loads((out / "edit.json").read_text())
    assert rec["edit"] == "morph" and rec["t"] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert rec["model_file_sha256"] == sha256_file(model_file)


def test_morph_gif_and_image_inputs_embedded(tmp_path, model_file, latents, capsys):
    img = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), np.uint8)).save(img)
    out = tmp_path / "m"
    code, _, _ = run(["morph", img, latents[1], "--frames", 3, "--format", "gif", "--model",
                      model_file, "--out", out, "--steps", 3, "--loss", "mse", "-q"], capsys)
    assert code == 0
    lat = load_latent(out / "inputs" / "photo" / "latent.npz")
    assert (out / "inputs" / "photo" / "reconstruction.png").is_file()
    assert np.array_equal(load_latent(out / "frames" / "000.npz").w, lat.w)
    assert len(imageio.mimread(out / "morph.gif")) == 3


def test_style_transfer_default_layers_and_sweep(tmp_path, model_file, latents, capsys):
    out = tmp_path / "s"
    code, _, _ = run(["style-transfer", latents[0], latents[1], "--sweep", "--model",
                      model_file, "--out", out], capsys)
    assert code == 0
    c, s = load_latent(latents[0]).w, load_latent(latents[1]).w
    res = load_latent(out / "result.npz").w
    assert np.array_equal(res[:3], c[:3]) and np.array_equal(res[3:], s[3:])
    rec = json.loads((out / "edit.json").read_text())
    assert rec["layers_from_style"] == [3, 4, 5]
    tiles = ["content", "style"] + [f"style {k}-5" for k in range(1, 6)]
    assert rec["sweep"]["tiles"] == tiles and rec["embedded_inputs"] is False
    assert "settings" not in rec  # nothing was embedded: no embedding settings recorded
    sweep = np.asarray(Image.open(out / "sweep.png"))
    assert sweep.shape == strip_of([out / "result.png"] * 7, tiles).shape
    k2 = load_latent(out / "sweep" / "k02.npz").w
    assert np.array_equal(k2[:2], c[:2]) and np.array_equal(k2[2:], s[2:])

    code, _, _ = run(["style-transfer", latents[0], latents[1], "--layers", "0,4-5",
                      "--model", model_file, "--out", tmp_path / "s2"], capsys)
    res = load_latent(tmp_path / "s2" / "result.npz").w
    assert code == 0 and np.array_equal(res[[0, 4, 5]], s[[0, 4, 5]])
    assert np.array_equal(res[1:4], c[1:4])


def test_expression_result_and_sweep(tmp_path, model_file, latents, capsys):
    out = tmp_path / "e"
    code, _, _ = run(["expression", "--target", latents[0], "--neutral", latents[1],
                      "--expressive", latents[2], "--strength", 0.5, "--threshold", 0,
                      "--sweep", "--strengths", "0,0.5,1.5", "--animate", "gif",
                      "--normalise", "source", "--model", model_file, "--out", out], capsys)
    assert code == 0
    t, n, e = (load_latent(p).w for p in latents)
    np.testing.assert_allclose(load_latent(out / "result.npz").w, t + 0.5 * (e - n), atol=1e-5)
    assert np.array_equal(load_latent(out / "sweep" / "00_strength0.npz").w, t)
    # fractional strengths keep their names (no "strength0"/"strength1" clash)
    names = sorted(p.name for p in (out / "sweep").glob("*.npz"))
    assert names == ["00_strength0.npz", "01_strength0.5.npz", "02_strength1.5.npz"]
    np.testing.assert_allclose(load_latent(out / "sweep" / "02_strength1.5.npz").w,
                               t + 1.5 * (e - n), atol=1e-5)
    labels = ["target", "strength 0", "strength 0.5", "strength 1.5"]
    sweep_tiles = [out / "sweep" / f"{n}.png" for n in ("00_strength0",) * 2] + \
        [out / "sweep" / "01_strength0.5.png", out / "sweep" / "02_strength1.5.png"]
    assert np.array_equal(np.asarray(Image.open(out / "sweep.png")),
                          strip_of(sweep_tiles, labels))  # target == strength 0
    assert len(imageio.mimread(out / "sweep.gif")) == 4
    rec = json.loads((out / "edit.json").read_text())
    assert rec["kept_layers"] == list(range(6)) and len(rec["layer_norms"]) == 6
    assert rec["sweep"]["tiles"] == labels and rec["normalise"] == "source"
    assert rec["sweep"]["files"] == ["sweep.png", "sweep.gif"]


def test_expression_unit_normalisation_default(tmp_path, model_file, latents, capsys):
    out = tmp_path / "u"
    code, _, _ = run(["expression", "--target", latents[0], "--neutral", latents[1],
                      "--expressive", latents[2], "--strength", 2, "--threshold", 0,
                      "--model", model_file, "--out", out], capsys)
    assert code == 0
    t, n, e = (load_latent(p).w for p in latents)
    d = e - n
    np.testing.assert_allclose(load_latent(out / "result.npz").w,
                               t + 2 * d / np.linalg.norm(d), atol=1e-5)
    rec = json.loads((out / "edit.json").read_text())
    assert rec["normalise"] == "unit" and rec["cleaned_norm"] == pytest.approx(np.linalg.norm(d))


def test_expression_same_neutral_and_expressive_is_identity(tmp_path, model_file, latents,
                                                            capsys):
    out = tmp_path / "e"
    code, _, err = run(["expression", "--target", latents[0], "--neutral", latents[1],
                        "--expressive", latents[1], "--model", model_file, "--out", out], capsys)
    assert code == 0 and "unchanged" in err
    assert np.array_equal(load_latent(out / "result.npz").w, load_latent(latents[0]).w)


def test_edit_bad_inputs(tmp_path, model_file, latents, capsys):
    other = tmp_path / "other.npz"
    save_latent(other, LatentFile(w=np.zeros((8, 32), np.float32), space="w+", model_sha256=""))
    foreign = tmp_path / "foreign.npz"
    save_latent(foreign, LatentFile(w=np.zeros((6, 32), np.float32), space="w+",
                                    model_sha256="ab" * 32))
    m = ["--model", model_file, "--out", tmp_path / "o"]
    cases = [
        (["morph", latents[0], other, *m], 1, "different model"),
        (["morph", latents[0], foreign, *m], 1, "another model"),
        (["morph", latents[0], tmp_path / "missing.npz", *m], 1, "no such file"),
        (["morph", latents[0], tmp_path / "missing.png", *m, "--loss", "mse"], 1, "no such file"),
        (["morph", latents[0], latents[1], "--frames", 1, *m], 2, "--frames"),
        (["style-transfer", latents[0], latents[1], "--layers", "3-6", *m], 2, "0 <= a <= b < 6"),
        (["style-transfer", latents[0], latents[1], "--layers", "x", *m], 2, "expected"),
        (["expression", "--target", latents[0], "--neutral", latents[1], "--expressive",
          latents[2], "--strength", "strong", *m], 2, "strength"),
        (["expression", "--target", latents[0], "--neutral", latents[1], "--expressive",
          latents[2], "--strength", "nan", *m], 2, "finite"),
        (["expression", "--target", latents[0], "--neutral", latents[1], "--expressive",
          latents[2], "--sweep", "--strengths", "1,a", *m], 2, "strengths"),
    ]
    for argv, want_code, msg in cases:
        code, _, err = run(argv, capsys)
        assert code == want_code, (argv, err)
        assert msg in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err


def test_edits_work_on_a_stylegan1_model(tmp_path, capsys):
    """The three commands on a tiny StyleGAN (v1) file: images embedded on the fly, latents
    chained from one command to the next, the default crossover split scaled to num_ws=6."""
    torch.manual_seed(0)
    G = i2s.StyleGANGenerator(resolution=16, fmap_base=256, fmap_max=16, z_dim=16, w_dim=16,
                              mapping_layers=2).eval()
    model = tmp_path / "v1.safetensors"
    i2s.save_generator(G, model)
    images = []
    with torch.no_grad():
        for i in range(2):
            p = tmp_path / f"img{i}.png"
            Image.fromarray(i2s.media.images.to_uint8(G.synthesis(G.mapping(torch.randn(1, 16))))[0]
                            ).save(p)
            images.append(p)
    common = ["--model", model, "--loss", "mse", "--steps", 3, "-q"]
    assert run(["morph", *images, "--frames", 3, "--out", tmp_path / "m", *common], capsys)[0] == 0
    a = tmp_path / "m" / "inputs" / "img0" / "latent.npz"
    b = tmp_path / "m" / "inputs" / "img1" / "latent.npz"
    assert load_latent(a).w.shape == (6, 16)
    assert run(["style-transfer", a, b, "--out", tmp_path / "s", *common], capsys)[0] == 0
    res, c, s = (load_latent(p).w for p in (tmp_path / "s" / "result.npz", a, b))
    assert np.array_equal(res[:3], c[:3]) and np.array_equal(res[3:], s[3:])
    assert run(["expression", "--target", tmp_path / "s" / "result.npz", "--neutral", a,
                "--expressive", b, "--out", tmp_path / "e", *common], capsys)[0] == 0
    assert np.asarray(Image.open(tmp_path / "e" / "result.png")).shape == (16, 16, 3)


def test_edits_render_with_the_first_inputs_fitted_noise_maps(tmp_path, model_file, latents,
                                                               capsys):
    """A latent with fitted noise maps (i2s++, projector) is edited with its maps, which the
    result's latent keeps; --noise-from model renders with the model's noise instead."""
    from i2s.embedding.noise_maps import initial_noise_maps, synthesis_with_noise

    G = i2s.load_generator(model_file)
    lat = load_latent(latents[0])
    maps = {k: 3.0 * v.numpy() for k, v in initial_noise_maps(G, "random", 7).items()}
    fitted = tmp_path / "fitted.npz"
    save_latent(fitted, LatentFile(w=lat.w, space="w+", model_sha256=lat.model_sha256,
                                   noise=maps))
    code, _, err = run(["morph", fitted, latents[1], "--frames", 3, "--model", model_file,
                        "--out", tmp_path / "m", "--format", "gif"], capsys)
    assert code == 0, err
    mid = load_latent(tmp_path / "m" / "frames" / "001.npz")
    assert mid.noise is not None and all(np.array_equal(mid.noise[k], maps[k]) for k in maps)
    with torch.no_grad():
        want = synthesis_with_noise(G, torch.from_numpy(mid.w)[None],
                                    {k: torch.from_numpy(v) for k, v in maps.items()})
    got = np.asarray(Image.open(tmp_path / "m" / "frames" / "001.png"))
    assert np.array_equal(got, i2s.media.images.to_uint8(want)[0])
    assert not np.array_equal(got, render(model_file, mid.w))
    record = json.loads((tmp_path / "m" / "edit.json").read_text())
    assert record["noise_maps_from"] == str(fitted)
    # the model's noise on request, and for a first input without maps
    code, _, err = run(["morph", fitted, latents[1], "--frames", 3, "--model", model_file,
                        "--out", tmp_path / "n", "--format", "gif", "--noise-from", "model"],
                       capsys)
    assert code == 0, err
    plain = load_latent(tmp_path / "n" / "frames" / "001.npz")
    assert plain.noise is None
    assert np.array_equal(np.asarray(Image.open(tmp_path / "n" / "frames" / "001.png")),
                          render(model_file, plain.w))
    assert json.loads((tmp_path / "n" / "edit.json").read_text())["noise_maps_from"] == "model"
    code, _, err = run(["style-transfer", latents[1], fitted, "--model", model_file,
                        "--out", tmp_path / "s"], capsys)
    assert code == 0, err
    assert load_latent(tmp_path / "s" / "result.npz").noise is None   # the content has none


def test_noise_maps_that_do_not_fit_the_model_are_one_line(tmp_path, model_file, latents,
                                                          capsys):
    lat = load_latent(latents[0])
    bad = tmp_path / "bad.npz"
    save_latent(bad, LatentFile(w=lat.w, space="w+", model_sha256=lat.model_sha256,
                                noise={"b4.conv1.noise_const": np.zeros((8, 8), np.float32)}))
    code, _, err = run(["morph", bad, latents[1], "--frames", 2, "--model", model_file,
                        "--out", tmp_path / "m", "--format", "gif"], capsys)
    assert code == 1 and err.count("\n") == 1 and "does not fit this model" in err
    assert not (tmp_path / "m" / "strip.png").exists()
