import json

import pytest
import torch
from safetensors.torch import save_file

import i2s
from i2s.media.files import sha256_file
from tests.conftest import make_generator


def test_save_load_same_image(tmp_path, tiny_G):
    path = tmp_path / "g.safetensors"
    i2s.save_generator(tiny_G, path)
    G2 = i2s.load_generator(path)
    assert G2.cfg == tiny_G.cfg
    assert G2.sha256 == sha256_file(path)
    assert not any(p.requires_grad for p in G2.parameters())
    ws = tiny_G.mapping(torch.randn(2, 32))
    assert torch.equal(G2.synthesis(ws), tiny_G.synthesis(ws))
    assert torch.equal(G2.w_avg, tiny_G.w_avg)


def test_float16_file_loads_as_float32(tmp_path, tiny_G):
    path = tmp_path / "g16.safetensors"
    i2s.save_generator(tiny_G, path, dtype=torch.float16)
    G2 = i2s.load_generator(path)
    assert all(p.dtype == torch.float32 for p in G2.parameters())
    ws = tiny_G.mapping(torch.randn(1, 32))
    assert (G2.synthesis(ws) - tiny_G.synthesis(ws)).abs().max() < 0.05


def test_official_state_dict_loads_strict(tmp_path):
    """A state dict with NVIDIA's names (as taken from G_ema.state_dict()) loads strictly."""
    src = make_generator(resolution=32, seed=1)
    G = i2s.StyleGAN2Generator(src.cfg)
    G.load_state_dict({k: v.clone() for k, v in src.state_dict().items()}, strict=True)
    ws = src.mapping(torch.randn(1, 32))
    with torch.no_grad():  # same evaluation path for both (trainable weights take another)
        assert torch.equal(G.synthesis(ws), src.synthesis(ws))


def test_bad_files(tmp_path, tiny_G):
    with pytest.raises(i2s.I2SError, match="not found"):
        i2s.load_generator(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(i2s.I2SError, match="safetensors"):
        i2s.load_generator(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(1)}, str(foreign))
    with pytest.raises(i2s.I2SError, match="not an i2s generator"):
        i2s.load_generator(foreign)
    # Right metadata, wrong weights: strict loading refuses.
    meta = {"format": "i2s-generator", "version": "1", "architecture": "stylegan2",
            "config": json.dumps(tiny_G.cfg.to_dict())}
    partial = tmp_path / "partial.safetensors"
    sd = {k: v.contiguous() for k, v in tiny_G.state_dict().items() if "b16" not in k}
    save_file(sd, str(partial), metadata=meta)
    with pytest.raises(i2s.I2SError, match="do not match"):
        i2s.load_generator(partial)
    arch = tmp_path / "arch.safetensors"
    save_file({"x": torch.zeros(1)}, str(arch), metadata={**meta, "architecture": "gpt"})
    with pytest.raises(i2s.I2SError, match="unknown architecture"):
        i2s.load_generator(arch)


def test_save_is_atomic_on_failure(tmp_path, tiny_G, monkeypatch):
    path = tmp_path / "g.safetensors"
    path.write_bytes(b"previous contents")

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("i2s.weights.generator_file.save_file", boom)
    with pytest.raises(RuntimeError):
        i2s.save_generator(tiny_G, path)
    assert path.read_bytes() == b"previous contents"
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]
