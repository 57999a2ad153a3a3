import json
import shutil
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

import i2s
from tests.cli_run import run


@pytest.fixture
def face(tmp_path, tiny_G):
    """A 20x24 RGB image (non-square, so it is cropped and resized to 16 px)."""
    a = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    p = tmp_path / "face.png"
    Image.fromarray(a).save(p)
    return p


def test_embed_end_to_end(tmp_path, model_file, face, vgg_file, capsys):
    out = tmp_path / "out"
    code, _, err = run(["embed", face, "--model", model_file, "--out", out, "--steps", 12,
                        "--vgg-weights", vgg_file, "--video", "--seed", 5], capsys)
    assert code == 0, err
    d = out / "face"
    assert sorted(p.name for p in d.iterdir()) == ["comparison.png", "latent.npz", "metrics.json",
                                                   "optimisation.mp4", "reconstruction.png",
                                                   "target.png"]
    m = json.loads((d / "metrics.json").read_text())
    for key in ("mse", "psnr", "steps", "seconds", "space", "model", "seed", "loss_terms"):
        assert key in m
    assert m["steps"] == 12 and m["space"] == "w+" and m["seed"] == 5
    assert m["loss_terms"]["perceptual"] > 0
    lat = i2s.load_latent(d / "latent.npz")
    assert lat.w.shape == (6, 32) and lat.space == "w+" and len(lat.model_sha256) == 64
    assert Image.open(d / "target.png").size == (16, 16)
    frames = imageio.mimread(d / "optimisation.mp4")
    assert len(frames) == 13  # every step (< 200 steps), then the final reconstruction
    assert frames[0].shape == (256, 512, 3)  # target | reconstruction, upscaled x16
    assert not list(d.glob(".*"))  # no temporary files left behind


def test_embed_z_space_writes_z(tmp_path, model_file, face, capsys):
    code, _, _ = run(["embed", face, "--model", model_file, "--out", tmp_path / "o",
                      "--steps", 2, "--loss", "mse", "--space", "z", "-q"], capsys)
    assert code == 0
    lat = i2s.load_latent(tmp_path / "o" / "face" / "latent.npz")
    assert lat.space == "z" and lat.z.shape == (32,) and lat.w.shape == (6, 32)
    # ... and that latent can start a new Z embedding.
    code, _, _ = run(["embed", face, "--model", model_file, "--out", tmp_path / "o2",
                      "--steps", 1, "--loss", "mse", "--space", "z", "-q",
                      "--init", tmp_path / "o" / "face" / "latent.npz"], capsys)
    assert code == 0


def test_other_inputs_complete_when_some_fail(tmp_path, model_file, face, capsys):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    sub = tmp_path / "b"
    sub.mkdir()
    shutil.copy(face, sub / "face.png")
    code, _, err = run(["embed", tmp_path / "missing.png", empty, text, face, sub / "face.png",
                        "--model", model_file, "--out", tmp_path / "o", "--steps", 2,
                        "--loss", "mse", "-q", "--batch-size", 2], capsys)
    assert code == 1
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 3
    assert "missing.png: no such file" in lines[0] and "empty file" in lines[1]
    assert "not an image" in lines[2]
    assert (tmp_path / "o" / "face" / "latent.npz").exists()
    assert (tmp_path / "o" / "face-2" / "latent.npz").exists()  # same stem, other folder


@pytest.mark.parametrize("case", ["model", "vgg", "out", "init", "device", "cuda_gen"])
def test_bad_setup_gives_one_line(tmp_path, model_file, face, capsys, monkeypatch, case):
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("I2S_VGG16", raising=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    base = ["embed", face, "--model", model_file, "--out", tmp_path / "o", "--steps", 1]
    argv = {
        "model": ["embed", face, "--model", tmp_path / "nope.safetensors", "--out",
                  tmp_path / "o", "--loss", "mse"],
        "vgg": base,  # default loss needs VGG weights, none installed here
        "out": ["embed", face, "--model", model_file, "--out", blocker / "sub", "--loss", "mse"],
        "init": base + ["--loss", "mse", "--init", tmp_path / "nope.npz"],
        "device": base + ["--loss", "mse", "--device", "cuda"],
        "cuda_gen": ["generate", "--model", model_file, "--seed", 1, "--out", tmp_path / "x.png",
                     "--device", "cuda"],
    }[case]
    if case.startswith(("device", "cuda")):
        monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code, _, err = run(argv, capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:")
    if case == "vgg":
        assert "--loss mse" in err and "vgg16-397923af.pth" in err
    assert not (tmp_path / "o" / "face").exists()


def test_usage_errors_exit_2(tmp_path, model_file, face, capsys):
    for argv in (["embed", face, "--model", model_file, "--out", tmp_path, "--steps", 0],
                 ["embed", face, "--model", model_file, "--out", tmp_path, "--space", "q"],
                 ["embed", "--model", model_file, "--out", tmp_path],
                 ["generate", "--model", model_file, "--out", tmp_path / "x.png"],
                 ["generate", "--model", model_file, "--out", tmp_path / "x.png", "--seed", 1,
                  "--latent", tmp_path / "l.npz"]):
        code, _, err = run(argv, capsys)
        assert code == 2, argv
        assert err.startswith("error: ") and "--help" in err and len(err.splitlines()) == 1


def test_generate_seed_and_latent(tmp_path, model_file, tiny_G, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run(["generate", "--model", model_file, "--seed", 3, "--out", a], capsys)[0] == 0
    assert run(["generate", "--model", model_file, "--seed", 3, "--out", b], capsys)[0] == 0
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    # The documented seed -> z rule (tiny_G has no gradients).
    z3 = tiny_G.synthesis(tiny_G.mapping(i2s.models.common.seed_z([3], tiny_G.z_dim)))
    assert np.array_equal(np.asarray(Image.open(a)), i2s.media.images.to_uint8(z3)[0])
    t = tmp_path / "t.png"
    assert run(["generate", "--model", model_file, "--seed", 3, "--out", t, "--truncation",
                "0"], capsys)[0] == 0
    avg = i2s.media.images.to_uint8(tiny_G.synthesis(tiny_G.w_avg.expand(1, 6, -1)))[0]
    assert np.array_equal(np.asarray(Image.open(t)), avg)
    lat = tmp_path / "l.npz"
    i2s.save_latent(lat, i2s.LatentFile(w=tiny_G.w_avg.expand(6, -1).numpy(), space="w+",
                                        model_sha256=""))
    c = tmp_path / "c.png"
    assert run(["generate", "--model", model_file, "--latent", lat, "--out", c], capsys)[0] == 0
    assert np.array_equal(np.asarray(Image.open(c)), avg)
    wrong = tmp_path / "wrong.npz"
    i2s.save_latent(wrong, i2s.LatentFile(w=np.zeros((4, 32), np.float32), space="w+",
                                          model_sha256=""))
    code, _, err = run(["generate", "--model", model_file, "--latent", wrong, "--out", c],
                       capsys)
    assert code == 1 and "different model" in err


def test_console_script_runs(tmp_path, model_file, face):
    exe = shutil.which("i2s") or f"{sys.executable} -m i2s.cli.main"
    r = subprocess.run([*exe.split(), "embed", str(face), "--model", str(model_file), "--out",
                        str(tmp_path / "o"), "--steps", "3", "--loss", "mse"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "psnr" in r.stderr and (tmp_path / "o" / "face" / "reconstruction.png").exists()
