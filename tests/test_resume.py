"""Resumable embeddings: a run interrupted and continued gives exactly the uninterrupted
result, for every kind of stage (Adam with schedules and noise on w, noise maps, generator
tuning, L-BFGS)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import i2s
from i2s.embedding.checkpoint import Checkpointing, load_checkpoint
from i2s.errors import I2SError


class Interrupt:
    """A step callback that presses Ctrl-C at step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, s) -> None:
        if s.step == self.at:
            raise KeyboardInterrupt


def targets(G, n=2, seed=3):
    with torch.no_grad():
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
        return G.synthesis(G.mapping(z), noise_mode="const")


CASES = {
    "paper": dict(loss="mse", steps=12),
    "projector": dict(recipe="projector", loss="mse", steps=12),           # w noise, maps
    "i2s++": dict(recipe="i2s++", loss="mse", steps=8, noise_steps=6),       # two stages
    "pti": dict(recipe="pti", loss="mse", steps=6, tune_steps=6),           # generator
    "fast": dict(recipe="fast", loss="mse", steps=15),                      # L-BFGS
    "patience": dict(loss="mse", steps=14, patience=3, lr=0.5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_interrupted_and_resumed_equals_uninterrupted(tiny_G, tmp_path, name):
    x = targets(tiny_G)
    kw = CASES[name]
    whole = i2s.embed(tiny_G, x, **kw)
    total = len(whole.history["loss"])
    ck = Checkpointing(tmp_path / "ck", every=4)
    saves = []
    ck.on_save = saves.append
    with pytest.raises(KeyboardInterrupt):
        i2s.embed(tiny_G, x, callback=Interrupt(total - 3), checkpoint=ck, **kw)
    assert ck.path(0).is_file() and saves
    assert saves[-1].latent.shape[1:] == whole.latent.shape[1:]
    ck.resume = True
    again = i2s.embed(tiny_G, x, checkpoint=ck, **kw)
    assert torch.equal(again.latent, whole.latent)
    assert torch.equal(again.image, whole.image)
    for k in whole.history:
        np.testing.assert_array_equal(again.history[k], whole.history[k])
    if whole.tuned is not None:
        for k, v in whole.tuned[0].items():
            assert torch.equal(again.tuned[0][k], v)
    if whole.noise is not None:
        for k, v in whole.noise.items():
            assert torch.equal(again.noise[k], v)
    assert not ck.path(0).exists()  # removed once finished


def test_periodic_saves_and_partial_state(tiny_G, tmp_path):
    x = targets(tiny_G, n=1)
    saves = []
    ck = Checkpointing(tmp_path / "ck", every=5, on_save=saves.append)
    with pytest.raises(KeyboardInterrupt):
        i2s.embed(tiny_G, x, loss="mse", steps=30, callback=Interrupt(13), checkpoint=ck)
    # every 5 steps, then at the interrupt (step 13 was under way: 12 finished)
    assert [s.step for s in saves] == [5, 10, 12]
    assert all(s.steps == 30 and np.isfinite(s.psnr).all() for s in saves)
    with pytest.raises(I2SError, match="other settings.*steps"):
        load_checkpoint(ck.path(0), "x" * 64, {**i2s.EmbedConfig(loss="mse").to_dict(),
                                               "steps": 31})


def test_resume_refuses_other_settings_or_images(tiny_G, tmp_path):
    x = targets(tiny_G, n=1)
    ck = Checkpointing(tmp_path / "ck", every=2)
    with pytest.raises(KeyboardInterrupt):
        i2s.embed(tiny_G, x, loss="mse", steps=10, callback=Interrupt(5), checkpoint=ck)
    ck.resume = True
    with pytest.raises(I2SError, match="other settings \\(lr\\)"):
        i2s.embed(tiny_G, x, loss="mse", steps=10, lr=0.02, checkpoint=ck)
    with pytest.raises(I2SError, match="other images"):
        i2s.embed(tiny_G, targets(tiny_G, n=1, seed=9), loss="mse", steps=10, checkpoint=ck)
    ck.path(0).write_bytes(b"garbage")
    with pytest.raises(I2SError, match="not a readable checkpoint"):
        i2s.embed(tiny_G, x, loss="mse", steps=10, checkpoint=ck)


def test_cli_interrupt_then_resume(tmp_path, model_file, capsys, monkeypatch):
    import json

    from PIL import Image

    import i2s.embedding.files as files
    from i2s.embedding.latents import load_latent
    from tests.cli_run import run

    G = i2s.load_generator(model_file)
    img = i2s.media.images.to_uint8(targets(G, n=1))[0]
    Image.fromarray(img).save(tmp_path / "face.png")
    common = ["--model", model_file, "--loss", "mse", "--steps", 30, "-q"]
    assert run(["embed", tmp_path / "face.png", "--out", tmp_path / "whole", *common],
               capsys)[0] == 0

    real = files.embed

    def interrupted(*a, callback=None, **kw):
        def cb(s):
            callback(s)
            if s.step == 17:
                raise KeyboardInterrupt
        return real(*a, callback=cb, **kw)

    monkeypatch.setattr(files, "embed", interrupted)
    out = tmp_path / "o"
    code, _, err = run(["embed", tmp_path / "face.png", "--out", out, "--save-every", 5,
                        *common], capsys)
    assert code == 130 and "--resume" in err
    partial = json.loads((out / "face" / "metrics.json").read_text())
    assert partial["partial"] is True and partial["step"] == 16 and partial["steps"] == 30
    assert load_latent(out / "face" / "latent.npz").w.shape == (G.num_ws, G.w_dim)
    monkeypatch.setattr(files, "embed", real)
    code, _, err = run(["embed", tmp_path / "face.png", "--out", out, "--steps", 31,
                        "--model", model_file, "--loss", "mse", "-q", "--resume"], capsys)
    assert code == 1 and "other settings (steps)" in err
    code, _, _ = run(["embed", tmp_path / "face.png", "--out", out, "--resume", *common], capsys)
    assert code == 0
    done = json.loads((out / "face" / "metrics.json").read_text())
    assert "partial" not in done and done["steps"] == 30
    assert np.array_equal(load_latent(out / "face" / "latent.npz").w,
                          load_latent(tmp_path / "whole" / "face" / "latent.npz").w)
    assert not any((out / ".resume").glob("*/*"))
    code, _, err = run(["embed", tmp_path / "face.png", "--out", out, "--resume", *common[:-1]],
                       capsys)
    assert code == 0 and "already done" in err
