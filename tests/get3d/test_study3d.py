"""The 3D study (``i2s experiment get3d``): every section runs and is reported, on a tiny
generator in the library and on demo-3d through the CLI (slow)."""

from __future__ import annotations

import json

import pytest
import torch

from i2s.experiments.get3d_study import (
    Get3DStudy,
    Get3DStudyOptions,
    fitted_views,
    run_get3d_study,
    self_object,
)
from i2s.get3d.config import GET3DConfig
from i2s.get3d.generator import GET3DGenerator

from ..cli_run import run


def test_fitted_views_are_spread_and_never_held_out():
    assert fitted_views(6) == [0, 2, 3, 4, 6, 7]
    assert fitted_views(2) == [0, 4] and fitted_views(1) == [0]


def tiny() -> GET3DGenerator:
    torch.manual_seed(0)
    return GET3DGenerator(GET3DConfig(z_dim=16, w_dim=32, mapping_layers=2,
                                      tri_plane_resolution=16, channel_base=256, channel_max=32,
                                      tet_res=16, image_resolution=64)).eval()


def test_one_study_inversion_is_recorded(tmp_path):
    G = tiny()
    opt = Get3DStudyOptions(quick=True, steps=2, resolution=32)
    study = Get3DStudy(G, tmp_path, opt)
    obj = self_object(G, 200, 32)
    assert obj.target.images.shape == (8, 4, 32, 32) and obj.target.cameras is not None
    run = study.invert(obj, views=fitted_views(2), chamfer_every=1, strategy="joint")
    row = run.row
    assert row["views"] == 2 and row["cameras"] == "known" and row["kind"] == "self"
    assert run.renders.shape == (8, 4, 32, 32) and run.azimuth_deg.shape == (8,)
    assert 0 <= row["heldout_iou"] <= 1 and row["chamfer"] >= 0
    assert [s for s, _ in row["drift"]] == [1, 2]
    assert study.runs == [row] and study.computed == 1
    # the same inversion again is not recomputed, in this study or in a resumed one
    assert study.invert(obj, views=fitted_views(2), chamfer_every=1, strategy="joint") is run
    again = Get3DStudy(G, tmp_path, opt)
    cached = again.invert(obj, views=fitted_views(2), chamfer_every=1, strategy="joint")
    assert again.computed == 0 and again.reused == 1 and cached.row == json.loads(
        json.dumps(row))
    assert torch.allclose(cached.renders, run.renders, atol=2e-3)
    assert torch.equal(cached.ws_geo, run.ws_geo) and torch.equal(cached.ws_tex, run.ws_tex)
    # a different setting is a different inversion; a damaged cache entry is recomputed
    for f in (tmp_path / "cache").glob("*.npz"):
        f.write_bytes(b"damaged")
    third = Get3DStudy(G, tmp_path, opt)
    third.invert(obj, views=fitted_views(2), chamfer_every=1, strategy="joint")
    third.invert(obj, views=fitted_views(1), strategy="joint")
    assert third.computed == 2 and third.reused == 0


def test_cache_keys_leave_out_later_settings_at_their_default(tmp_path):
    """An inversion cached before lambda_perceptual existed has the same key as one with it
    at 0; another weight is another inversion."""
    G = tiny()
    study = Get3DStudy(G, tmp_path, Get3DStudyOptions(quick=True, steps=2, resolution=32))
    obj = self_object(G, 200, 32)
    now = study.base.to_dict()
    before = {k: v for k, v in now.items() if k != "lambda_perceptual"}
    assert now["lambda_perceptual"] == 0.0
    assert study._key(obj, now) == study._key(obj, before)
    assert study._key(obj, {**now, "lambda_perceptual": 0.5}) != study._key(obj, before)


@pytest.mark.slow
def test_study_on_a_tiny_generator(tmp_path):
    G = tiny()
    opt = Get3DStudyOptions(quick=True, steps=2, resolution=32, self_seeds=(200, 201),
                            teacher_seeds=(0,), tune_steps=1, teacher_mesh_resolution=32)
    doc = run_get3d_study(G, tmp_path, opt)
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["results"]) == {"strategies", "views", "cameras", "drift", "tuning"}
    strategies = {r["strategy"] for r in res["results"]["strategies"]}
    assert strategies == {"joint", "staged", "alternating", "staged-joint"}
    # 12 strategies, 6 view counts, 3 estimated cameras, 1 tuned (the rest, drift and edits
    # included, are the same inversions as earlier sections')
    assert doc["meta"]["inversions"] == len(res["runs"]) == 22
    assert doc["meta"]["inversions_computed"] == 22
    assert "get3d_edits_self.png" in res["figures"]
    again = run_get3d_study(G, tmp_path, opt)            # resumed: everything from the cache
    assert again["meta"]["inversions_reused"] == 22 and again["meta"]["inversions_computed"] == 0
    assert again["results"] == json.loads(json.dumps(doc["results"], default=float))
    drift = res["results"]["drift"]
    assert len(drift) == 6 and all([s for s, _ in d["chamfer_by_step"]] == [1, 2] for d in drift)
    report = (tmp_path / "report.md").read_text()
    for title in ("Strategies (W+/W+) and spaces", "Number of views", "Known vs estimated cameras",
                  "drag the geometry", "Generator tuning"):
        assert title in report
    for name in res["figures"]:
        assert (tmp_path / name).is_file()
    assert "Edits between inverted objects" in report
    assert "varies one factor around one setting" in report and "Load average" in report
    assert len(doc["meta"]["load_average_start"]) == 3


@pytest.mark.slow
def test_quick_study_on_demo_3d_through_the_cli(tmp_path, capsys):
    code, out, err = run(["experiment", "get3d", "--quick", "--out", tmp_path, "-q"], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "results.json").read_text())
    best = max(r["heldout_iou"] for r in res["runs"] if r["kind"] == "self")
    assert best > 0.5


def test_cli_study_uses_the_study_steps_unless_given(tmp_path, capsys, monkeypatch):
    """Without --steps the 3D study runs its own 200 steps (not the 2D embedding default)."""
    import i2s.experiments.get3d_study as study_module

    seen = []

    def fake(G, out, options, log=None):
        seen.append(options)
        return {"meta": {"inversions": 0, "seconds": 0.0}}

    monkeypatch.setattr(study_module, "run_get3d_study", fake)
    for extra, steps in (([], 200), (["--steps", "7"], 7), (["--quick"], 24)):
        code, out, err = run(["experiment", "get3d", "--out", tmp_path / str(steps), "-q",
                              *extra], capsys)
        assert code == 0, err
        assert seen[-1].steps == steps
