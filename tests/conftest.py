"""Fixtures: tiny generators built in code and a VGG-16 file in torchvision's layout.

Everything here is randomly initialised: test fixtures only, never presented as trained models.
"""

from __future__ import annotations

import pytest
import torch

import i2s
from i2s.models.vgg16 import VGG16Features


def make_generator(resolution: int = 16, seed: int = 0, dim: int = 32, channel_base: int = 256,
                   channel_max: int = 32, mapping_layers: int = 2,
                   noise_strength: float = 0.05) -> i2s.StyleGAN2Generator:
    """A small random StyleGAN2 with a realistic ``w_avg`` and non-zero noise strengths."""
    torch.manual_seed(seed)
    cfg = i2s.StyleGAN2Config(resolution=resolution, z_dim=dim, w_dim=dim,
                              channel_base=channel_base, channel_max=channel_max,
                              mapping_layers=mapping_layers)
    G = i2s.StyleGAN2Generator(cfg)
    with torch.no_grad():
        for m in G.modules():
            if hasattr(m, "noise_strength"):
                m.noise_strength.fill_(noise_strength)
        G.mapping.w_avg.copy_(G.mapping(torch.randn(1000, dim))[:, 0].mean(0))
    return G.eval().requires_grad_(False)


def make_vgg_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict with torchvision's VGG-16 keys (features.* at the real shapes;
    classifier.* present but tiny, since the loader ignores them)."""
    torch.manual_seed(seed)
    feats = VGG16Features()
    with torch.no_grad():
        for m in feats.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.bias.normal_(0, 0.01)
    state = dict(feats.state_dict())
    state["classifier.0.weight"] = torch.zeros(4, 8)
    state["classifier.0.bias"] = torch.zeros(4)
    return state


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test reaches the network: downloads fail at once unless a test mocks it."""
    monkeypatch.setenv("I2S_OFFLINE", "1")


@pytest.fixture
def tiny_G() -> i2s.StyleGAN2Generator:
    return make_generator()


@pytest.fixture
def model_file(tmp_path, tiny_G):
    path = tmp_path / "tiny.safetensors"
    i2s.save_generator(tiny_G, path)
    return path


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    torch.save(make_vgg_state(), path)
    return path
