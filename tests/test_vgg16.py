import pytest
import torch

import i2s
from i2s.models.vgg16 import CONV_INDEX, VGG16Features
from i2s.weights.load import find_vgg16_weights, load_vgg16
from tests.conftest import make_vgg_state


def test_tap_indices_match_torchvision():
    assert CONV_INDEX["conv1_1"] == 0
    assert CONV_INDEX["conv1_2"] == 2
    assert CONV_INDEX["conv3_2"] == 12
    assert CONV_INDEX["conv4_2"] == 19
    feats = VGG16Features().features
    assert [i for i, m in enumerate(feats) if isinstance(m, torch.nn.MaxPool2d)] == \
        [4, 9, 16, 23, 30]
    convs = [i for i, m in enumerate(feats) if isinstance(m, torch.nn.Conv2d)]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def test_loads_torchvision_layout_and_taps(vgg_file):
    vgg = load_vgg16(vgg_file)
    x = torch.randn(1, 3, 64, 64)
    post = vgg(x, ["conv1_1", "conv1_2", "conv3_2", "conv4_2"])
    assert [tuple(t.shape) for t in post] == [(1, 64, 64, 64), (1, 64, 64, 64),
                                              (1, 256, 16, 16), (1, 512, 8, 8)]
    pre = vgg(x, ["conv1_1"], after_relu=False)[0]
    assert (pre < 0).any() and (post[0] >= 0).all()
    assert torch.allclose(pre.clamp(min=0), post[0])
    # conv1_1 by hand from the stored weights.
    state = make_vgg_state()
    ref = torch.nn.functional.conv2d(x, state["features.0.weight"], state["features.0.bias"],
                                     padding=1)
    assert torch.allclose(pre, ref, atol=1e-5)


def test_missing_weights_message_says_where_and_how_to_avoid(tmp_path, monkeypatch):
    monkeypatch.setenv("I2S_HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("I2S_VGG16", raising=False)
    with pytest.raises(i2s.I2SError) as e:
        load_vgg16()
    msg = str(e.value)
    assert "vgg16-397923af.pth" in msg and "--loss mse" in msg and "\n" not in msg
    with pytest.raises(i2s.I2SError, match="--loss mse"):
        load_vgg16(tmp_path / "nope.pth")


def test_default_locations_are_found(tmp_path, monkeypatch, vgg_file):
    """The download cache ($I2S_HOME/downloads), then torch's hub cache."""
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("I2S_VGG16", raising=False)
    hub = tmp_path / "torch" / "hub" / "checkpoints" / vgg_file.name
    hub.parent.mkdir(parents=True)
    hub.write_bytes(vgg_file.read_bytes())
    assert find_vgg16_weights() == hub
    cached = tmp_path / "home" / "downloads" / vgg_file.name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(vgg_file.read_bytes())
    assert find_vgg16_weights() == cached
    assert isinstance(load_vgg16(), VGG16Features)


def test_wrong_files_are_refused(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    with pytest.raises(i2s.I2SError, match="cannot read"):
        load_vgg16(bad)
    other = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, other)
    with pytest.raises(i2s.I2SError, match="layout"):
        load_vgg16(other)
