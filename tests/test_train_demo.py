"""The DigiFace DCGAN teacher and the demo-model distillation (on tiny, random networks)."""

import json
from pathlib import Path

import pytest
import torch

from i2s.demo import teacher as dcgan
from i2s.demo.train import (
    AdversarialConfig,
    TrainDemoConfig,
    Trainer,
    distillation_loss,
    learning_rate,
    pyramid_l1,
)
from i2s.errors import I2SError
from i2s.weights.generator_file import load_generator_file
from tests.cli_run import run

SHARED_TEACHER = Path(__file__).resolve().parents[2] / "shared" / "data" / "digiface_dcgan64.pt"


@pytest.fixture
def teacher_file(tmp_path):
    """A randomly initialised DCGAN saved in the package's format (a fixture, not a model)."""
    torch.manual_seed(0)
    net = dcgan.DCGANGenerator()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    p = tmp_path / "weights.tar"
    torch.save({"netG_state_dict": net.state_dict()}, p)
    return p


def test_teacher_loads_and_renders(teacher_file):
    T = dcgan.load_teacher(teacher_file)
    z = dcgan.teacher_z([3, 4])
    assert torch.equal(z[0], dcgan.teacher_z([3])[0])  # a seed is the same face anywhere
    img = T(z)
    assert img.shape == (2, 3, 64, 64) and img.abs().max() <= 1
    assert not any(p.requires_grad for p in T.parameters())


@pytest.mark.skipif(not SHARED_TEACHER.is_file(), reason="shared teacher weights absent")
def test_real_teacher_file_matches_published_digest():
    from i2s.media.files import sha256_file

    assert sha256_file(SHARED_TEACHER) == dcgan.SHA256
    img = dcgan.load_teacher(SHARED_TEACHER)(dcgan.teacher_z([0]))
    assert img.shape == (1, 3, 64, 64) and img.std() > 0.2


def test_teacher_bad_files(tmp_path, monkeypatch):
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("I2S_DIGIFACE", raising=False)
    with pytest.raises(I2SError, match="not found"):
        dcgan.find_teacher_weights(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"netG_state_dict": {"main.0.weight": torch.zeros(3)}}, bad)
    with pytest.raises(I2SError, match="not the DigiFace DCGAN"):
        dcgan.load_teacher(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(I2SError, match="cannot read"):
        dcgan.load_teacher(junk)


def test_pyramid_loss_known_answers():
    x = torch.rand(2, 3, 16, 16)
    assert pyramid_l1(x, x, 3).item() == pytest.approx(0.0, abs=1e-8)
    # A constant offset lives only in the low-pass residual.
    assert pyramid_l1(x + 0.25, x, 3).item() == pytest.approx(0.25, abs=1e-6)
    loss, stats = distillation_loss(x + 0.2, x, 3)
    assert stats["l1"] == pytest.approx(0.2, abs=1e-6)
    assert stats["psnr"] == pytest.approx(20.0, abs=1e-3)  # (0.2 / 2)^2 on a [0, 1] scale


def test_learning_rate_schedule():
    cfg = TrainDemoConfig(steps=100, lr=0.002, lr_final_fraction=0.05)
    assert learning_rate(cfg, 0) == learning_rate(cfg, 49) == 0.002
    assert learning_rate(cfg, 75) == pytest.approx(0.002 * (0.05 + 0.95 * 0.5))
    assert learning_rate(cfg, 100) == pytest.approx(0.0001)


TINY = dict(batch=2, channel_base=256, channel_max=16, w_dim=16, mapping_layers=2,
            pyramid_levels=2, ema_kimg=0.01)


def _train(out, teacher_file, steps, stop_at=None, adv_steps=0, adv_stop_at=None):
    T = dcgan.load_teacher(teacher_file)
    cfg = TrainDemoConfig(steps=steps, **TINY)
    adv = AdversarialConfig(steps=adv_steps, r1_every=2, d_channel_base=256, d_channel_max=16)
    tr = Trainer(cfg, out, T, "t" * 64, log=lambda s: None, adv=adv)
    if stop_at is not None:  # simulate an interruption after a checkpoint
        while tr.step < stop_at:
            tr.train_step()
        while adv_stop_at is not None and tr.adv_step < adv_stop_at:
            tr.adversarial_step()
        tr._save_checkpoint()
        return None
    return tr.run(log_every=1, sample_every=2, checkpoint_every=2)


def test_training_writes_model_and_resumes_exactly(tmp_path, teacher_file):
    full = _train(tmp_path / "a", teacher_file, 4)
    G = load_generator_file(full)
    assert G.resolution == 64 and G.z_dim == 100 and G.w_dim == 16
    prov = json.loads((tmp_path / "a" / "provenance.json").read_text())
    assert prov["steps"] == 4 and prov["images_seen"] == 8 and prov["sha256"] == G.file_sha256
    assert len((tmp_path / "a" / "log.jsonl").read_text().splitlines()) == 4
    assert (tmp_path / "a" / "samples" / "step000002.png").is_file()
    # Interrupted at step 2 and resumed: the same weights as the uninterrupted run.
    _train(tmp_path / "b", teacher_file, 4, stop_at=2)
    resumed = load_generator_file(_train(tmp_path / "b", teacher_file, 4))
    for (k, a), (_, b) in zip(G.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_adversarial_stage_trains_and_resumes_exactly(tmp_path, teacher_file):
    full = _train(tmp_path / "a", teacher_file, 2, adv_steps=3)
    G = load_generator_file(full)
    prov = json.loads((tmp_path / "a" / "provenance.json").read_text())
    assert prov["adversarial_steps"] == 3 and prov["images_seen"] == 10
    assert "adversarial" in prov["method"] and prov["adversarial_config"]["steps"] == 3
    rows = [json.loads(r) for r in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    adv_rows = [r for r in rows if r.get("stage") == "adversarial"]
    assert len(adv_rows) == 3 and {"d_loss", "g_adv", "l1", "r1"} <= set(adv_rows[0])
    assert (tmp_path / "a" / "samples" / "adv000002.png").is_file()
    # The stage changed the weights the distillation alone gives.
    plain = load_generator_file(_train(tmp_path / "p", teacher_file, 2))
    assert not torch.equal(plain.state_dict()["synthesis.b64.torgb.weight"],
                           G.state_dict()["synthesis.b64.torgb.weight"])
    # Interrupted in the adversarial stage and resumed: bit-identical weights.
    _train(tmp_path / "b", teacher_file, 2, stop_at=2, adv_steps=3, adv_stop_at=1)
    resumed = load_generator_file(_train(tmp_path / "b", teacher_file, 2, adv_steps=3))
    for (k, a), (_, b) in zip(G.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    with pytest.raises(I2SError, match="other adversarial settings"):
        _train(tmp_path / "b", teacher_file, 2, adv_steps=4)


def test_discriminator_shapes_and_gradients():
    from i2s.demo.discriminator import Discriminator

    D = Discriminator(64, channel_base=256, channel_max=16)
    x = torch.randn(6, 3, 64, 64, requires_grad=True)
    out = D(x)
    assert out.shape == (6,)
    out.sum().backward()
    assert x.grad.abs().sum() > 0 and all(p.grad is not None for p in D.parameters())
    with pytest.raises(ValueError):
        Discriminator(48)


def test_resume_with_other_settings_is_refused(tmp_path, teacher_file):
    _train(tmp_path / "a", teacher_file, 4, stop_at=1)
    with pytest.raises(I2SError, match="other settings"):
        _train(tmp_path / "a", teacher_file, 5)


def test_train_demo_cli_bad_teacher(tmp_path, capsys):
    code, _, err = run(["train-demo", "--out", tmp_path / "o", "--teacher",
                        tmp_path / "missing.pt"], capsys)
    assert code == 1 and "teacher weights not found" in err
