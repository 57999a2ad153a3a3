"""EmbedConfig (every embedding setting in one place), EmbedResult.save (the files of
``i2s embed``), the run record, and what the library leaves alone (no process-wide change,
no printing)."""

import json
import logging

import numpy as np
import pytest
import torch

import i2s
from i2s.embedding.config import auto_batch_size
from i2s.media.images import load_image, to_tensor
from i2s.provenance import run_record
from tests.cli_run import run


def test_defaults_are_the_papers():
    c = i2s.EmbedConfig()
    assert (c.space, c.steps, c.lr, c.betas, c.eps, c.init) == ("w+", 5000, 0.01, (0.9, 0.999),
                                                                1e-8, "mean")
    assert (c.loss, c.lambda_mse, c.lambda_perceptual, c.vgg_taps) == ("mse+vgg", 1, 1,
                                                                       "post-relu")
    assert c.vgg_layers == ("conv1_1", "conv1_2", "conv3_2", "conv4_2")
    assert (c.vgg_resolution, c.noise_mode, c.batch_size) == (256, "const", None)
    assert c.needs_vgg and c.mse_weight == 1 and c.perceptual_weight == 1
    mse = c.replace(loss="mse")
    assert not mse.needs_vgg and mse.perceptual_weight == 0


def test_json_round_trip_and_overrides():
    c = i2s.EmbedConfig(space="w", steps=7, betas=(0.5, 0.9), vgg_layers=("conv2_2",),
                        batch_size=3, vgg_resolution=None)
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d and d["betas"] == [0.5, 0.9]
    assert i2s.EmbedConfig.from_dict(json.loads(json.dumps(d))) == c
    assert c.replace(steps=9).steps == 9 and c.steps == 7
    with pytest.raises(i2s.I2SError, match="unknown embedding setting"):
        c.replace(stpes=9)
    with pytest.raises(i2s.I2SError, match="unknown embedding setting"):
        i2s.EmbedConfig.from_dict({**d, "vgg_after_relu": True})


@pytest.mark.parametrize("field,value,match", [
    ("space", "x", "unknown space"), ("loss", "l1", "unknown loss"),
    ("vgg_taps", "mid", "unknown vgg_taps"), ("noise_mode", "loud", "unknown noise_mode"),
    ("steps", 0, "steps"), ("lr", 0.0, "lr"), ("lr", float("nan"), "lr"),
    ("betas", (1.0, 0.9), "betas"), ("eps", 0.0, "eps"), ("seed", -1, "seed"),
    ("lambda_mse", -1.0, "lambda_mse"), ("lambda_perceptual", float("inf"), "lambda_perc"),
    ("vgg_layers", ("conv9_9",), "vgg_layers"), ("vgg_resolution", 4, "vgg_resolution"),
    ("batch_size", 0, "batch_size"), ("init", "", "init"),
])
def test_bad_values_are_one_line_errors(field, value, match):
    with pytest.raises(i2s.I2SError, match=match) as e:
        i2s.EmbedConfig(**{field: value})
    assert "\n" not in str(e.value)


def test_a_loss_without_a_positive_term_is_refused():
    with pytest.raises(i2s.I2SError, match="no positive term"):
        i2s.EmbedConfig(loss="mse", lambda_mse=0.0)


def test_auto_batch_size_by_resolution():
    assert [auto_batch_size(r) for r in (16, 64, 128, 256, 1024)] == [16, 16, 4, 1, 1]
    assert i2s.EmbedConfig().batch_for(128) == 4
    assert i2s.EmbedConfig(batch_size=2).batch_for(64) == 2


def test_config_object_and_keyword_overrides_give_the_same_embedding(tiny_G):
    x = tiny_G.synthesis(tiny_G.mapping(torch.randn(2, 32)))
    a = i2s.embed(tiny_G, x, i2s.EmbedConfig(steps=4, loss="mse", seed=3))
    b = i2s.embed(tiny_G, x, steps=4, loss="mse", seed=3)
    c = i2s.embed(tiny_G, x, i2s.EmbedConfig(steps=99, loss="mse"), steps=4, seed=3)
    assert torch.equal(a.latent, b.latent) and torch.equal(a.latent, c.latent)
    assert a.config == b.config == c.config
    assert a.record["settings"] == a.config.to_dict()


def test_batches_inside_embed_equal_one_batch(tiny_G):
    x = tiny_G.synthesis(tiny_G.mapping(torch.randn(3, 32)))
    seen = []
    one = i2s.embed(tiny_G, x, steps=3, loss="mse", batch_size=3)
    split = i2s.embed(tiny_G, x, steps=3, loss="mse", batch_size=2,
                      callback=lambda s: seen.append((s.step, s.images)))
    assert split.latent.shape == (3, tiny_G.num_ws, tiny_G.w_dim)
    assert torch.allclose(one.latent, split.latent, atol=1e-5)
    assert split.history["psnr"].shape == (3, 3) and list(split.batch_sizes) == [2, 2, 1]
    assert seen == [(1, range(0, 2)), (2, range(0, 2)), (3, range(0, 2)),
                    (1, range(2, 3)), (2, range(2, 3)), (3, range(2, 3))]


def test_start_latent_in_code(tiny_G):
    x = tiny_G.synthesis(tiny_G.mapping(torch.randn(1, 32)))
    w0 = tiny_G.w_avg.expand(1, tiny_G.num_ws, -1) + 0.1
    r = i2s.embed(tiny_G, x, steps=1, loss="mse", init=w0)
    assert r.config.init == "latent"
    r2 = i2s.embed(tiny_G, x, i2s.EmbedConfig(steps=1, loss="mse"), start=w0)
    assert torch.equal(r.latent, r2.latent)


def test_save_writes_what_the_cli_writes(tmp_path, tiny_G, model_file, capsys):
    """The same image and settings through ``i2s embed`` and through ``embed`` + ``save``:
    byte-identical latent and images, the same metrics apart from the timing and date."""
    G = i2s.load_generator(model_file)
    img = tmp_path / "face.png"
    from PIL import Image
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)).save(img)
    code, _, err = run(["embed", img, "--model", model_file, "--out", tmp_path / "cli",
                        "--steps", "3", "--loss", "mse", "-q"], capsys)
    assert code == 0, err
    target = to_tensor(load_image(img, G.resolution))
    result = i2s.embed(G, target, steps=3, loss="mse")
    folders = result.save(tmp_path / "api", names=["face"], model=G, sources=[str(img)])
    assert folders == [tmp_path / "api" / "face"]
    for name in ("latent.npz", "target.png", "reconstruction.png"):
        assert (tmp_path / "api/face" / name).read_bytes() == (tmp_path / "cli/face" / name
                                                               ).read_bytes(), name
    a = json.loads((tmp_path / "api/face/metrics.json").read_text())
    b = json.loads((tmp_path / "cli/face/metrics.json").read_text())
    for k in ("seconds", "date"):
        a.pop(k), b.pop(k)
    assert a == b
    assert a["model_sha256"] == G.sha256 and a["model"] == str(model_file)
    assert a["settings"] == i2s.EmbedConfig(steps=3, loss="mse").to_dict()
    other = i2s.load_generator(model_file)
    other.sha256 = "0" * 64
    with pytest.raises(i2s.I2SError, match="another model"):
        result.save(tmp_path / "x", model=other)
    with pytest.raises(i2s.I2SError, match="names"):
        result.save(tmp_path / "x", names=["a", "b"])


def test_run_record(tiny_G):
    tiny_G.source, tiny_G.sha256 = "tiny", "ab" * 32
    r = run_record(tiny_G, {"steps": 1})
    assert {"model", "model_sha256", "resolution", "num_ws", "w_dim", "settings", "device",
            "machine", "versions", "date"} <= set(r)
    assert r["model"] == "tiny" and r["versions"]["i2s"] == i2s.__version__
    assert r["device"] == "cpu" and r["resolution"] == tiny_G.resolution


def test_the_library_leaves_the_process_alone(tiny_G, monkeypatch, capsys):
    """embed() neither sets the allocator (the CLI does, explicitly) nor prints."""
    import i2s.ops.cpu_allocator as allocator

    def forbidden():
        raise AssertionError("the library changed glibc's malloc settings")

    monkeypatch.setattr(allocator, "keep_freed_memory", forbidden)
    monkeypatch.setattr(i2s, "keep_freed_memory", forbidden)
    x = tiny_G.synthesis(tiny_G.mapping(torch.randn(1, 32)))
    i2s.embed(tiny_G, x, steps=2, loss="mse")
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_cli_shows_library_notes_as_one_line(capsys, tmp_path):
    from i2s.cli.main import _set_up_process

    _set_up_process()
    logging.getLogger("i2s.ops.cpu_kernels").warning("compiling %s", "kernels")
    assert capsys.readouterr().err == "note: compiling kernels\n"
