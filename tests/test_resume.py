"""Resumable embeddings: a run interrupted and continued gives exactly the uninterrupted
result, for every kind of stage (Adam with schedules and noise on w, noise maps, generator
tuning, L-BFGS)."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time

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
    assert "aborted" not in err and err.count("interrupted") == 1    # said once, not twice
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


def _stderr_until(proc: subprocess.Popen, pattern: str, timeout: float) -> str:
    """What ``proc`` wrote on stderr up to the first match of ``pattern`` (it keeps running;
    tqdm's updates end in carriage returns, not lines, so the pipe is read in chunks)."""
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.05)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                break
            got += chunk
            if re.search(pattern, got.decode(errors="replace")):
                return got.decode(errors="replace")
    proc.kill()
    raise AssertionError(f"no {pattern!r} on stderr: {got.decode(errors='replace')[-500:]}")


def test_cli_sigterm_then_resume(tmp_path, model_file, capsys):
    """A real ``i2s embed`` process ended by SIGTERM (kill, a job scheduler) saves where it
    is, as on Ctrl-C, and exits 143; --resume then gives the uninterrupted result."""
    import json

    from PIL import Image

    from i2s.embedding.latents import load_latent
    from tests.cli_run import run

    G = i2s.load_generator(model_file)
    Image.fromarray(i2s.media.images.to_uint8(targets(G, n=1))[0]).save(tmp_path / "face.png")
    steps = 120
    common = ["--model", model_file, "--loss", "mse", "--steps", steps, "--threads", 1]
    out = tmp_path / "o"
    # --save-every 0: whatever is saved comes from the SIGTERM
    proc = subprocess.Popen(
        [str(a) for a in [sys.executable, "-m", "i2s", "embed", tmp_path / "face.png",
                          "--out", out, "--save-every", 0, *common]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        # step 2 under way (its bar update comes before its update of the latent): step 1 done
        _stderr_until(proc, rf"\b([2-9]|[1-9]\d+)/{steps}\b", timeout=300)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=120)
    finally:
        proc.kill()
    err = rest.decode(errors="replace")
    assert proc.returncode == 143, err[-500:]
    assert "terminated (SIGTERM)" in err and "--resume" in err and "Traceback" not in err
    partial = json.loads((out / "face" / "metrics.json").read_text())
    assert partial["partial"] is True and 0 < partial["step"] < steps
    assert any((out / ".resume").glob("*/*.safetensors"))

    threads = torch.get_num_threads()
    try:  # the same thread count as the process above, so that the sums are the same
        code, _, _ = run(["embed", tmp_path / "face.png", "--out", out, "--resume", "-q",
                          *common], capsys)
        assert code == 0
        code, _, _ = run(["embed", tmp_path / "face.png", "--out", tmp_path / "whole", "-q",
                          *common], capsys)
        assert code == 0
    finally:
        torch.set_num_threads(threads)
    done = json.loads((out / "face" / "metrics.json").read_text())
    assert "partial" not in done and done["steps"] == steps
    assert np.array_equal(load_latent(out / "face" / "latent.npz").w,
                          load_latent(tmp_path / "whole" / "face" / "latent.npz").w)
    assert not any((out / ".resume").glob("*/*"))


def test_ctrl_c_stops_at_the_next_step_and_a_second_one_at_once():
    from i2s.cli.common import Terminated, stop_signals

    before = signal.getsignal(signal.SIGINT)
    with stop_signals() as stops:
        step = stops.progress(None)("face.png", 10)
        os.kill(os.getpid(), signal.SIGINT)  # inside an update: nothing raised there...
        time.sleep(0.01)
        with pytest.raises(KeyboardInterrupt) as e:   # ...but at the next step, as Ctrl-C
            step(None)
        assert not isinstance(e.value, Terminated)
        with pytest.raises(KeyboardInterrupt):        # the user insists: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        step.close()
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_raises_at_once_or_at_the_next_step_and_is_restored():
    from i2s.cli.common import Terminated, stop_signals

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), stop_signals():
        os.kill(os.getpid(), signal.SIGTERM)  # no step loop: raised at once
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is before
    with stop_signals() as stops:
        step = stops.progress(None)("face.png", 10)
        os.kill(os.getpid(), signal.SIGTERM)  # inside the steps: raised by the next one
        time.sleep(0.01)
        with pytest.raises(Terminated):
            step(None)
        step.close()
        os.kill(os.getpid(), signal.SIGTERM)  # a second one changes nothing
        time.sleep(0.01)
        with pytest.raises(Terminated):  # nor does a next embedding start
            stops.progress(None)("next.png", 10)
    assert signal.getsignal(signal.SIGTERM) is before
