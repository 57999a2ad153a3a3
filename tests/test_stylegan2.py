import math

import pytest
import torch

import i2s
from i2s.models.layers import FullyConnectedLayer
from tests.conftest import make_generator


@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 128, 256])
def test_shapes_every_resolution(resolution):
    G = make_generator(resolution=resolution, channel_base=512, channel_max=16, dim=16)
    assert G.num_ws == 2 * int(math.log2(resolution)) - 2
    z = torch.randn(2, 16)
    ws = G.mapping(z)
    assert ws.shape == (2, G.num_ws, 16)
    img = G.synthesis(ws)
    assert img.shape == (2, 3, resolution, resolution)
    assert torch.isfinite(img).all()


def test_ffhq_1024_names_and_sizes():
    cfg = i2s.StyleGAN2Config(resolution=1024)
    assert cfg.num_ws == 18
    assert [cfg.channels(r) for r in cfg.block_resolutions] == [512] * 5 + [256, 128, 64, 32]
    # Small channels, same names: construct cheaply and check the NVIDIA G_ema names.
    G = i2s.StyleGAN2Generator(resolution=1024, channel_base=1024, channel_max=8, z_dim=8,
                               w_dim=8)
    keys = set(G.state_dict())
    for k in ("mapping.fc0.weight", "mapping.fc7.bias", "mapping.w_avg", "synthesis.b4.const",
              "synthesis.b4.resample_filter", "synthesis.b4.conv1.noise_const",
              "synthesis.b8.conv0.affine.bias", "synthesis.b8.conv0.noise_strength",
              "synthesis.b1024.torgb.weight", "synthesis.b1024.torgb.affine.weight",
              "synthesis.b1024.conv1.resample_filter"):
        assert k in keys, k
    assert "synthesis.b4.conv0.weight" not in keys


def expected_keys(resolution: int, mapping_layers: int) -> set[str]:
    """The G_ema key set of StyleGAN2-ADA, written out from formats.md."""
    keys = {"mapping.w_avg"}
    for i in range(mapping_layers):
        keys |= {f"mapping.fc{i}.weight", f"mapping.fc{i}.bias"}
    layer = ["weight", "bias", "noise_strength", "noise_const", "affine.weight", "affine.bias",
             "resample_filter"]
    for r in [2**i for i in range(2, int(math.log2(resolution)) + 1)]:
        b = f"synthesis.b{r}"
        keys |= {f"{b}.resample_filter"} | {f"{b}.torgb.{k}" for k in
                                            ("weight", "bias", "affine.weight", "affine.bias")}
        convs = ["conv1"] if r == 4 else ["conv0", "conv1"]
        keys |= {f"{b}.{c}.{k}" for c in convs for k in layer}
        if r == 4:
            keys.add(f"{b}.const")
    return keys


def test_state_dict_keys_exactly_nvidia_layout():
    G = make_generator(resolution=32)
    assert set(G.state_dict()) == expected_keys(32, 2)
    sd = G.state_dict()
    assert sd["synthesis.b16.conv0.weight"].shape == (16, 32, 3, 3)  # channels 256 // 16 = 16
    assert sd["synthesis.b16.conv0.noise_const"].shape == (16, 16)
    assert sd["synthesis.b16.conv0.noise_strength"].shape == ()
    assert sd["synthesis.b4.const"].shape == (32, 4, 4)


def test_ws_bookkeeping_torgb_shares_index_with_next_conv():
    G = make_generator(resolution=16)
    torch.manual_seed(0)
    ws = torch.randn(1, G.num_ws, 32)
    base = G.synthesis(ws)
    # ws index 1 feeds b4.torgb and b8.conv0; index num_ws-1 feeds only the last ToRGB.
    for idx in range(G.num_ws):
        w2 = ws.clone()
        w2[:, idx] += 1.0
        assert not torch.allclose(G.synthesis(w2), base), idx


def test_reference_path_matches_fast_path():
    G = make_generator(resolution=32)
    ws = G.mapping(torch.randn(3, 32))
    assert torch.allclose(G.synthesis(ws), G.synthesis(ws, reference=True), atol=1e-5)


def test_mapping_normalises_z_and_truncates():
    G = make_generator()
    z = torch.randn(2, 32)
    assert torch.allclose(G.mapping(z), G.mapping(3.0 * z), atol=1e-5)
    ws = G.mapping(z)
    assert torch.allclose(G.mapping(z, truncation_psi=0.0), G.w_avg.expand_as(ws))
    half = G.mapping(z, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.allclose(half[:, :2], G.w_avg.lerp(ws[:, :2], 0.5))
    assert torch.allclose(half[:, 2:], ws[:, 2:])
    with pytest.raises(ValueError):
        G.mapping(torch.randn(2, 7))


def test_fully_connected_equalised_lr_known_value():
    fc = FullyConnectedLayer(4, 2, lr_multiplier=0.01, bias_init=1.0)
    with torch.no_grad():
        fc.weight.fill_(100.0)  # stored at 1 / lr scale
        fc.bias.fill_(100.0)
    y = fc(torch.ones(1, 4))
    # weight gain 0.01 / sqrt(4): 4 * 100 * 0.005 = 2; bias 100 * 0.01 = 1
    assert torch.allclose(y, torch.full((1, 2), 3.0))


def test_noise_modes():
    G = make_generator(noise_strength=0.5)
    ws = G.mapping(torch.randn(1, 32))
    const, none = G.synthesis(ws), G.synthesis(ws, noise_mode="none")
    assert not torch.allclose(const, none)
    g1, g2 = (torch.Generator().manual_seed(5) for _ in range(2))
    r1 = G.synthesis(ws, noise_mode="random", generator=g1)
    r2 = G.synthesis(ws, noise_mode="random", generator=g2)
    assert torch.equal(r1, r2)
    with pytest.raises(ValueError):
        G.synthesis(ws, noise_mode="bogus")


def test_conv_clamp_limits_activations():
    G = make_generator()
    ws = G.mapping(torch.randn(1, 32)) * 50
    Gc = i2s.StyleGAN2Generator(G.cfg, conv_clamp=0.1)
    Gc.load_state_dict(G.state_dict())
    img = Gc.synthesis(ws)
    # Each ToRGB output is clamped to 0.1; the skip sum of three blocks stays small.
    assert img.abs().max() <= 0.1 * 3 + 1e-5


def test_config_validation():
    for bad in (dict(resolution=48), dict(resolution=4), dict(resolution=2048),
                dict(z_dim=0), dict(channel_base=1, resolution=64)):
        with pytest.raises(ValueError):
            i2s.StyleGAN2Config(**bad)
    cfg = i2s.StyleGAN2Config(resolution=64)
    assert i2s.StyleGAN2Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        i2s.StyleGAN2Config.from_dict({**cfg.to_dict(), "bogus": 1})


def test_cached_weight_square_sums_follow_weight_changes():
    G = make_generator(resolution=32)
    ws = G.mapping(torch.randn(1, G.z_dim))
    layer = G.synthesis.b32.conv1
    first = layer.weight_square_sums()
    assert layer.weight_square_sums() is first  # cached while unchanged
    torch.testing.assert_close(first, layer.weight.square().sum(dim=(2, 3)))
    with torch.no_grad():
        layer.weight.mul_(1.5)  # in place: the version counter moves
        G.synthesis.b16.conv0.weight.copy_(torch.randn_like(G.synthesis.b16.conv0.weight))
    got = G.synthesis(ws)
    assert layer.weight_square_sums() is not first
    torch.testing.assert_close(layer.weight_square_sums(), first * 2.25)
    torch.testing.assert_close(got, G.synthesis(ws, reference=True), rtol=1e-5, atol=1e-5)
    # a trainable weight is never cached: its gradient must flow through the sums
    layer.weight.requires_grad_(True)
    assert layer.weight_square_sums().requires_grad
