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
    row, res = study.invert(obj, views=fitted_views(2), chamfer_every=1, strategy="joint")
    assert row["views"] == 2 and row["cameras"] == "known" and row["kind"] == "self"
    assert res.held_out == [1, 2, 3, 5, 6, 7]
    assert 0 <= row["heldout_iou"] <= 1 and row["chamfer"] >= 0
    assert [s for s, _ in row["drift"]] == [1, 2]
    assert study.runs == [row]


@pytest.mark.slow
def test_study_on_a_tiny_generator(tmp_path):
    G = tiny()
    opt = Get3DStudyOptions(quick=True, steps=2, resolution=32, self_seeds=(200,),
                            teacher_seeds=(0,), tune_steps=1, teacher_mesh_resolution=32)
    doc = run_get3d_study(G, tmp_path, opt)
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["results"]) == {"strategies", "views", "cameras", "drift", "tuning"}
    strategies = {r["strategy"] for r in res["results"]["strategies"]}
    assert strategies == {"joint", "staged", "alternating", "staged-joint"}
    assert doc["meta"]["inversions"] == len(res["runs"]) == 20
    assert all(r["drift"] for r in res["runs"] if r["object"] and r["drift"])
    report = (tmp_path / "report.md").read_text()
    for title in ("Strategies and spaces", "Number of views", "Known vs estimated cameras",
                  "drag the geometry", "Generator tuning"):
        assert title in report
    for name in res["figures"]:
        assert (tmp_path / name).is_file()


@pytest.mark.slow
def test_quick_study_on_demo_3d_through_the_cli(tmp_path, capsys):
    code, out, err = run(["experiment", "get3d", "--quick", "--out", tmp_path, "-q"], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "results.json").read_text())
    best = max(r["heldout_iou"] for r in res["runs"] if r["kind"] == "self")
    assert best > 0.5
