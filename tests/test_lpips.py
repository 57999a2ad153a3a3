"""LPIPS-VGG: the module against the published formula computed by hand (float64) on random
VGG-16 and calibration weights, its properties, and the checks on weight files."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import i2s
from i2s.models.lpips import LPIPS
from i2s.models.vgg16 import VGG16Features
from i2s.weights.load import find_lpips_weights, load_lpips, read_lpips_lin
from i2s.weights.registry import get_entry
from tests.conftest import make_vgg_state

CHANNELS = (64, 128, 256, 512, 512)
KEYS = [f"lin{k}.model.1.weight" for k in range(5)]


def make_lin_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """Random non-negative calibration weights in the lpips project's layout."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(1, c, 1, 1, generator=g) for k, c in zip(KEYS, CHANNELS, strict=True)}


@pytest.fixture(scope="module")
def lin_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lpips") / "vgg.pth"
    torch.save(make_lin_state(), path)
    return path


def reference_lpips(x0, x1, vgg_state, lin_state):
    """The published LPIPS-VGG formula, step by step, in float64, from the raw state dicts."""
    shift = torch.tensor([-.030, -.088, -.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([.458, .448, .450], dtype=torch.float64).view(1, 3, 1, 1)

    def features(x):
        h = (x.double() - shift) / scale
        taps, conv = [], 0
        # VGG-16 "D": blocks of 2, 2, 3, 3, 3 convs; tap the last ReLU of each block.
        for block, n_convs in enumerate((2, 2, 3, 3, 3)):
            if block > 0:
                h = F.max_pool2d(h, 2)
            for _ in range(n_convs):
                idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28][conv]
                h = F.relu(F.conv2d(h, vgg_state[f"features.{idx}.weight"].double(),
                                    vgg_state[f"features.{idx}.bias"].double(), padding=1))
                conv += 1
            taps.append(h)
        return taps

    total = torch.zeros(x0.shape[0], dtype=torch.float64)
    for k, (f0, f1) in enumerate(zip(features(x0), features(x1), strict=True)):
        n0 = f0 / (torch.sqrt((f0 ** 2).sum(1, keepdim=True)) + 1e-10)
        n1 = f1 / (torch.sqrt((f1 ** 2).sum(1, keepdim=True)) + 1e-10)
        w = lin_state[KEYS[k]].double().view(1, -1, 1, 1)
        total += ((n0 - n1) ** 2 * w).sum(1).mean((1, 2))
    return total


@pytest.fixture(scope="module")
def model(vgg_file, lin_file):
    return load_lpips(lin_file, vgg_file)


def test_matches_the_published_formula(model):
    torch.manual_seed(0)
    x0, x1 = torch.rand(3, 3, 48, 40) * 2 - 1, torch.rand(3, 3, 48, 40) * 2 - 1
    ref = reference_lpips(x0, x1, make_vgg_state(), make_lin_state())
    out = model(x0, x1)
    assert out.shape == (3,) and out.dtype == torch.float32
    assert torch.allclose(out.double(), ref, rtol=1e-4, atol=1e-7)
    assert (out > 0).all()
    # In float64 the agreement is to rounding (the shift and scale are float32 constants).
    out64 = copy.deepcopy(model).double()(x0.double(), x1.double())
    assert torch.allclose(out64, ref, rtol=1e-7, atol=1e-12)
    # The per-tap terms sum to the distance; [0, 1] inputs with normalize=True are the same.
    assert torch.allclose(torch.stack(model.per_tap(x0, x1)).sum(0), out)
    assert torch.allclose(model((x0 + 1) / 2, (x1 + 1) / 2, normalize=True), out, rtol=1e-5)


def test_identical_images_symmetry_and_batch_independence(model):
    torch.manual_seed(1)
    x0, x1 = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    assert torch.equal(model(x0, x0), torch.zeros(4))
    d = model(x0, x1)
    assert torch.allclose(d, model(x1, x0), rtol=1e-6)
    assert torch.allclose(model(x0[2:3], x1[2:3]), d[2:3], rtol=1e-5)


def test_gradients_reach_the_input_not_the_weights(model):
    torch.manual_seed(2)
    x0 = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    x1 = torch.rand(2, 3, 32, 32) * 2 - 1
    model(x0, x1).sum().backward()
    assert x0.grad is not None and torch.isfinite(x0.grad).all() and x0.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.parameters())
    # A few descent steps on the input reduce the distance: usable as a loss.
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    start = model(x, x1).sum().item()
    for _ in range(5):
        opt.zero_grad()
        loss = model(x, x1).sum()
        loss.backward()
        opt.step()
    assert model(x, x1).sum().item() < start


def test_vgg_features_apply_no_normalisation_of_their_own(vgg_file, model):
    """LPIPS's scaling replaces the ImageNet normalisation: VGG16Features takes its input as is."""
    x = torch.randn(1, 3, 16, 16)
    state = make_vgg_state()
    ref = F.conv2d(x, state["features.0.weight"], state["features.0.bias"], padding=1)
    assert torch.allclose(model.vgg(x, ["conv1_1"], after_relu=False)[0], ref, atol=1e-5)


def test_shape_mismatch_and_wrong_lin_are_refused(model):
    with pytest.raises(ValueError):
        model(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 8))
    with pytest.raises(ValueError):
        LPIPS(VGG16Features(), [torch.ones(1, 64, 1, 1)] * 5)


def test_legacy_torch_format_loads(tmp_path):
    """The published vgg.pth is in torch's legacy (non-zip) serialisation."""
    p = tmp_path / "legacy.pth"
    torch.save(make_lin_state(), p, _use_new_zipfile_serialization=False)
    got = read_lpips_lin(p)
    assert all(torch.equal(a, b) for a, b in zip(got, make_lin_state().values(), strict=True))


def _bad(state):
    s = make_lin_state()
    state(s)
    return s


@pytest.mark.parametrize("case, match", [
    (lambda s: s.pop("lin3.model.1.weight"), "missing keys"),
    (lambda s: s.update({"lin5.model.1.weight": torch.ones(1, 8, 1, 1)}), "unexpected keys"),
    (lambda s: s.update({"lin1.model.1.weight": torch.ones(1, 64, 1, 1)}), "shape"),
    (lambda s: s.update({"lin0.model.1.weight": -torch.ones(1, 64, 1, 1)}), "negative"),
    (lambda s: s["lin2.model.1.weight"].view(-1).__setitem__(3, float("nan")), "non-finite"),
    (lambda s: s.update({"lin4.model.1.weight": torch.ones(1, 512, 1, 1, dtype=torch.int64)}),
     "floating-point"),
])
def test_bad_weight_files_are_refused_in_one_line(tmp_path, case, match):
    p = tmp_path / "bad.pth"
    torch.save(_bad(case), p)
    with pytest.raises(i2s.I2SError, match=match) as e:
        read_lpips_lin(p)
    assert "\n" not in str(e.value)


def test_files_that_are_not_state_dicts_are_refused(tmp_path):
    cases = {"garbage.pth": None, "list.pth": [torch.ones(1)], "object.pth": torch.nn.Linear(2, 2)}
    for name, obj in cases.items():
        p = tmp_path / name
        if obj is None:
            p.write_bytes(b"not a torch file")
        else:
            torch.save(obj, p)
        with pytest.raises(i2s.I2SError) as e:
            read_lpips_lin(p)
        assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_where_weights_are_looked_for(tmp_path, monkeypatch, lin_file):
    monkeypatch.setenv("I2S_HOME", str(tmp_path))
    monkeypatch.delenv("I2S_LPIPS", raising=False)
    with pytest.raises(i2s.I2SError, match="i2s models download lpips-vgg") as e:
        find_lpips_weights()
    assert "\n" not in str(e.value)
    with pytest.raises(i2s.I2SError, match="not found"):
        find_lpips_weights(tmp_path / "nope.pth")
    monkeypatch.setenv("I2S_LPIPS", str(lin_file))
    assert find_lpips_weights() == lin_file
    monkeypatch.delenv("I2S_LPIPS")
    # A file in the download cache is checked against the registry's size and SHA-256.
    cached = tmp_path / "downloads" / get_entry("lpips-vgg").filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(lin_file.read_bytes())
    with pytest.raises(i2s.I2SError, match="lpips-vgg") as e:
        find_lpips_weights()
    assert "\n" not in str(e.value)


def test_registry_entry():
    e = get_entry("lpips-vgg")
    assert e.kind == "lpips" and e.architecture == "vgg16"
    assert e.urls == ("https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/"
                      "weights/v0.1/vgg.pth",)
    assert e.licence.startswith("BSD-2-Clause")
    assert e.size == 7289 and len(e.sha256) == 64
    assert not e.packaged
