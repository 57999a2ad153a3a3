import json

import pytest
import torch
from safetensors.torch import save_file

import i2s
from i2s.media.files import sha256_file


def test_save_load_same_image(tmp_path, tiny_G):
    path = tmp_path / "g.safetensors"
    i2s.save_generator(tiny_G, path)
    G2 = i2s.load_generator(path)
    assert G2.cfg == tiny_G.cfg
    assert G2.file_sha256 == sha256_file(path) and len(G2.sha256) == 64
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


# NVIDIA's StyleGAN2-ADA ``G_ema`` layout, written out by hand from the documented names
# (the G_ema names listed in NVIDIA's stylegan2-ada-pytorch networks.py; summarised in
# the project brief's shared/docs/formats.md, outside this repository) for resolution 16,
# z_dim 12, w_dim 10,
# channel_base 128, channel_max 16 (channels min(128 // r, 16): 16 at 4 and 8 px, 8 at 16 px),
# 2 mapping layers, 3 image channels. fc weights are [out, in]; affine layers map w to the
# conv's *input* channels ([in, w_dim]); conv weights are [out, in, k, k]; noise_strength is
# 0-d; noise_const is [R, R]; every conv layer and every block (b4 included) holds a [4, 4]
# resample_filter; ToRGB holds none; b4 has conv1 only.
ADA_G_EMA_16 = {
    "mapping.fc0.weight": (10, 12),
    "mapping.fc0.bias": (10,),
    "mapping.fc1.weight": (10, 10),
    "mapping.fc1.bias": (10,),
    "mapping.w_avg": (10,),
    "synthesis.b4.const": (16, 4, 4),
    "synthesis.b4.resample_filter": (4, 4),
    "synthesis.b4.conv1.weight": (16, 16, 3, 3),
    "synthesis.b4.conv1.bias": (16,),
    "synthesis.b4.conv1.affine.weight": (16, 10),
    "synthesis.b4.conv1.affine.bias": (16,),
    "synthesis.b4.conv1.noise_const": (4, 4),
    "synthesis.b4.conv1.noise_strength": (),
    "synthesis.b4.conv1.resample_filter": (4, 4),
    "synthesis.b4.torgb.weight": (3, 16, 1, 1),
    "synthesis.b4.torgb.bias": (3,),
    "synthesis.b4.torgb.affine.weight": (16, 10),
    "synthesis.b4.torgb.affine.bias": (16,),
    "synthesis.b8.resample_filter": (4, 4),
    "synthesis.b8.conv0.weight": (16, 16, 3, 3),
    "synthesis.b8.conv0.bias": (16,),
    "synthesis.b8.conv0.affine.weight": (16, 10),
    "synthesis.b8.conv0.affine.bias": (16,),
    "synthesis.b8.conv0.noise_const": (8, 8),
    "synthesis.b8.conv0.noise_strength": (),
    "synthesis.b8.conv0.resample_filter": (4, 4),
    "synthesis.b8.conv1.weight": (16, 16, 3, 3),
    "synthesis.b8.conv1.bias": (16,),
    "synthesis.b8.conv1.affine.weight": (16, 10),
    "synthesis.b8.conv1.affine.bias": (16,),
    "synthesis.b8.conv1.noise_const": (8, 8),
    "synthesis.b8.conv1.noise_strength": (),
    "synthesis.b8.conv1.resample_filter": (4, 4),
    "synthesis.b8.torgb.weight": (3, 16, 1, 1),
    "synthesis.b8.torgb.bias": (3,),
    "synthesis.b8.torgb.affine.weight": (16, 10),
    "synthesis.b8.torgb.affine.bias": (16,),
    "synthesis.b16.resample_filter": (4, 4),
    "synthesis.b16.conv0.weight": (8, 16, 3, 3),
    "synthesis.b16.conv0.bias": (8,),
    "synthesis.b16.conv0.affine.weight": (16, 10),
    "synthesis.b16.conv0.affine.bias": (16,),
    "synthesis.b16.conv0.noise_const": (16, 16),
    "synthesis.b16.conv0.noise_strength": (),
    "synthesis.b16.conv0.resample_filter": (4, 4),
    "synthesis.b16.conv1.weight": (8, 8, 3, 3),
    "synthesis.b16.conv1.bias": (8,),
    "synthesis.b16.conv1.affine.weight": (8, 10),
    "synthesis.b16.conv1.affine.bias": (8,),
    "synthesis.b16.conv1.noise_const": (16, 16),
    "synthesis.b16.conv1.noise_strength": (),
    "synthesis.b16.conv1.resample_filter": (4, 4),
    "synthesis.b16.torgb.weight": (3, 8, 1, 1),
    "synthesis.b16.torgb.bias": (3,),
    "synthesis.b16.torgb.affine.weight": (8, 10),
    "synthesis.b16.torgb.affine.bias": (8,),
}


def _ada_state_16() -> dict[str, torch.Tensor]:
    """Random tensors at the hand-written shapes; FIR buffers are the normalised [1,3,3,1]."""
    gen = torch.Generator().manual_seed(7)
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    fir = torch.outer(taps, taps) / 64.0
    return {k: fir.clone() if k.endswith("resample_filter") else torch.randn(shape, generator=gen)
            for k, shape in ADA_G_EMA_16.items()}


def _g16() -> i2s.StyleGAN2Generator:
    cfg = i2s.StyleGAN2Config(resolution=16, z_dim=12, w_dim=10, channel_base=128,
                              channel_max=16, mapping_layers=2, img_channels=3)
    return i2s.StyleGAN2Generator(cfg)


def test_state_dict_matches_nvidia_g_ema_layout():
    """i2s's names and shapes are exactly NVIDIA's G_ema ones (independent, hand-written list)."""
    own = {k: tuple(v.shape) for k, v in _g16().state_dict().items()}
    assert sorted(set(own) - set(ADA_G_EMA_16)) == []  # nothing i2s-only
    assert sorted(set(ADA_G_EMA_16) - set(own)) == []  # nothing of NVIDIA's missing
    bad_shapes = {k: (own[k], s) for k, s in ADA_G_EMA_16.items() if own[k] != s}
    assert bad_shapes == {}


def test_official_state_dict_loads_strict():
    """A state dict built from the hand-written G_ema layout loads with strict=True, every value
    lands under its own name, and the generator runs on it."""
    sd = _ada_state_16()
    G = _g16()
    G.load_state_dict(sd, strict=True)
    got = G.state_dict()
    for k, v in sd.items():
        assert torch.equal(got[k], v), k
    with torch.no_grad():
        img = G(torch.randn(2, 12))
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()


@pytest.mark.parametrize("change", [
    ("rename", "synthesis.b8.conv0.noise_strength", "synthesis.b8.conv0.noise.strength"),
    ("rename", "mapping.w_avg", "mapping.dlatent_avg"),
    ("drop", "synthesis.b4.resample_filter", None),
    ("extra", "synthesis.b4.conv0.weight", (16, 16, 3, 3)),
    ("shape", "synthesis.b16.conv0.affine.weight", (10, 16)),   # transposed affine
    ("shape", "synthesis.b16.conv0.weight", (16, 8, 3, 3)),     # in/out swapped
    ("shape", "synthesis.b8.torgb.bias", (1, 3, 1, 1)),         # rosinality's ToRGB bias
])
def test_layout_deviations_are_refused(change):
    kind, key, arg = change
    sd = _ada_state_16()
    if kind == "rename":
        sd[arg] = sd.pop(key)
    elif kind == "drop":
        del sd[key]
    else:
        sd[key] = torch.zeros(arg)
    with pytest.raises(RuntimeError, match="size mismatch" if kind == "shape" else
                       "Missing key|Unexpected key"):
        _g16().load_state_dict(sd, strict=True)


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

    monkeypatch.setattr("i2s.models.generator_file.save_file", boom)
    with pytest.raises(RuntimeError):
        i2s.save_generator(tiny_G, path)
    assert path.read_bytes() == b"previous contents"
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]


def test_model_identity_is_its_weights_not_its_file(tmp_path, tiny_G, capsys):
    """The same weights saved with other metadata, or converted again from a pickle, are the
    same model: a latent made with one is accepted by the other; other weights are refused."""
    import numpy as np

    from i2s.embedding.latents import LatentFile, save_latent
    from tests.checkpoint_writers import write_ada_pickle
    from tests.cli_run import run
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    i2s.save_generator(tiny_G, a)
    i2s.save_generator(tiny_G, b, extra_metadata={"note": "the same weights, another file"})
    Ga, Gb = i2s.load_generator(a), i2s.load_generator(b)
    assert Ga.file_sha256 != Gb.file_sha256 and Ga.sha256 == Gb.sha256
    pkl = tmp_path / "g.pkl"
    write_ada_pickle(pkl, tiny_G)
    Gp = i2s.load_generator(pkl)
    assert Gp.sha256 == Ga.sha256 and Gp.file_sha256 != Ga.file_sha256
    w = torch.randn(Ga.num_ws, Ga.w_dim).numpy()
    # latents made now record the identity: any copy of the weights takes them; latents made
    # before recorded the file's SHA-256: their own file still takes them
    for name, sha, model in (("new.npz", Ga.sha256, pkl), ("old.npz", Ga.file_sha256, a)):
        save_latent(tmp_path / name, LatentFile(w=w, space="w+", model_sha256=sha))
        code, _, err = run(["generate", "--model", model, "--latent", tmp_path / name,
                            "--out", tmp_path / f"{name}.png"], capsys)
        assert code == 0, err
    other = tmp_path / "other.safetensors"
    torch.manual_seed(1)
    G_other = i2s.StyleGAN2Generator(tiny_G.cfg)
    i2s.save_generator(G_other, other)
    assert i2s.load_generator(other).sha256 != Ga.sha256
    code, _, err = run(["generate", "--model", other, "--latent", tmp_path / "new.npz",
                        "--out", tmp_path / "x.png"], capsys)
    assert code == 1 and "another model" in err
    assert np.isfinite(w).all()
