"""Training demo-3d on a tiny configuration: the losses fall, the model file loads, a resumed
run equals an uninterrupted one, other settings are refused."""

from __future__ import annotations

import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

import i2s
from i2s.demo import furniture
from i2s.demo.train3d import TrainDemo3DConfig, Trainer3D, batch_latents, sample_points
from i2s.errors import I2SError

TINY = dict(steps=6, batch=2, points_uniform=64, points_surface=64, z_dim=16, w_dim=32,
            mapping_layers=2, tri_plane_resolution=16, channel_base=256, channel_max=32,
            tet_res=16, image_resolution=64)


def trainer(path, **changes) -> Trainer3D:
    return Trainer3D(TrainDemo3DConfig(**{**TINY, **changes}), path, sample_seeds=[900],
                     sample_resolution=32)


def test_batches_are_reproducible_and_points_are_where_asked():
    a, b = batch_latents(5, 3, 16), batch_latents(5, 3, 16)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], a[1])
    cfg = TrainDemo3DConfig(**TINY)
    geo = furniture.geometry_params(a[0])
    uniform, near = sample_points(geo, cfg, torch.Generator().manual_seed(0))
    assert uniform.shape == (3, 64, 3) and near.shape == (3, 64, 3)
    assert uniform.abs().max() <= 0.5 and near.abs().max() <= 0.5
    # near-surface points are much closer to the surface than uniform ones
    assert furniture.sdf(geo, near).abs().mean() < 0.3 * furniture.sdf(geo, uniform).abs().mean()


def test_training_writes_a_loadable_model_and_resumes_exactly(tmp_path):
    full = trainer(tmp_path / "full")
    path = full.run(log_every=2, sample_every=100, checkpoint_every=100)
    rows = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all(r["sdf"] > 0 and 0 <= r["sign_accuracy"] <= 1 for r in rows)
    G = i2s.load_generator(path)
    assert isinstance(G, i2s.GET3DGenerator) and G.num_ws_geo == full.G.num_ws_geo
    prov = json.loads((tmp_path / "full" / "provenance.json").read_text())
    assert prov["model"] == "demo-3d" and prov["steps"] == 6
    assert (tmp_path / "full" / "samples" / "final.png").is_file()
    turn = imageio.mimread(tmp_path / "full" / "samples" / "final.gif")  # the turntable
    assert len(turn) == 12 and not np.array_equal(turn[0], turn[3])
    assert prov["machine"] and prov["versions"]["torch"] and prov["threads"] >= 1

    part = trainer(tmp_path / "part")
    assert part.run(log_every=2, sample_every=100, checkpoint_every=3,
                    max_minutes=1e-9) is None           # stops after one step, checkpointed
    assert part.step == 1
    resumed = trainer(tmp_path / "part")
    assert resumed.step == 1
    resumed.run(log_every=2, sample_every=100, checkpoint_every=100)
    for (name, a), b in zip(full.G_ema.state_dict().items(),
                            resumed.G_ema.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_resume_with_other_settings_is_refused(tmp_path):
    t = trainer(tmp_path)
    t.run(log_every=2, sample_every=100, checkpoint_every=100, max_minutes=1e-9)
    with pytest.raises(I2SError, match="other settings"):
        trainer(tmp_path, batch=3)


def test_losses_fall_on_a_fixed_batch(tmp_path):
    t = trainer(tmp_path, lr=0.01)
    z_geo, z_tex = batch_latents(0, 2, 16)
    first = None
    for i in range(25):
        loss, _ = t.losses(t.G, z_geo, z_tex, torch.Generator().manual_seed(i))
        first = first if first is not None else loss.item()
        t.opt.zero_grad()
        loss.backward()
        t.opt.step()
    assert loss.item() < 0.6 * first
