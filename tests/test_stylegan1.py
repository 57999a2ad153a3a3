"""StyleGAN (v1): generator shapes and interface, and TF-pickle conversion checked against an
independent NumPy implementation of NVIDIA's TF forward pass on the raw arrays."""

import math

import numpy as np
import pytest
import torch

import i2s
from i2s.weights.convert import convert_checkpoint
from tests.checkpoint_writers import random_tf_stylegan1, write_tf_pickle

SQRT2 = math.sqrt(2.0)


# --- NumPy reference of TF StyleGAN (v1), written from the paper/TF semantics -------------

def np_lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def np_dense(x, w, b, gain, lrmul=1.0):
    return x @ (w * (gain * lrmul / math.sqrt(w.shape[0]))) + b * lrmul


def np_conv_same(x, w, gain=SQRT2):
    """x [C, H, W]; TF weight [k, k, in, out]; 'SAME' correlation."""
    k, _, c_in, c_out = w.shape
    w = w * (gain / math.sqrt(k * k * c_in))
    p = k // 2
    h, wd = x.shape[1:]
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    out = np.zeros((c_out, h, wd), np.float64)
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("ihw,io->ohw", xp[:, dy:dy + h, dx:dx + wd], w[dy, dx])
    return out


def np_fused_up(x, w):
    """TF upscale2d_conv2d with fused_scale: padded 3x3 kernel summed over 4 shifts, then
    conv2d_transpose (stride 2, 'SAME') as a scatter: output j = 2 i + t - 1."""
    c_in, h, wd = x.shape
    w = w * (SQRT2 / math.sqrt(9 * c_in))
    w = np.pad(w.transpose(0, 1, 3, 2), ((1, 1), (1, 1), (0, 0), (0, 0)))
    w4 = w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]  # [4, 4, out, in]
    canvas = np.zeros((w4.shape[2], 2 * h + 2, 2 * wd + 2))
    for ty in range(4):
        for tx in range(4):
            canvas[:, ty:ty + 2 * h:2, tx:tx + 2 * wd:2] += np.einsum("ihw,oi->ohw", x,
                                                                      w4[ty, tx])
    return canvas[:, 1:2 * h + 1, 1:2 * wd + 1]


def np_blur(x):
    f = np.array([1.0, 2.0, 1.0]) / 4.0
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    h, wd = x.shape[1:]
    out = np.zeros_like(x, dtype=np.float64)
    for dy in range(3):
        for dx in range(3):
            out += f[dy] * f[dx] * xp[:, dy:dy + h, dx:dx + wd]
    return out


def np_epilogue(x, v, scope, noise, w):
    c = x.shape[0]
    x = x + noise[0, 0][None] * v[f"{scope}/Noise/weight"][:, None, None]
    x = np_lrelu(x + v[f"{scope}/bias"][:, None, None])
    x = x - x.mean(axis=(1, 2), keepdims=True)
    x = x / np.sqrt((x * x).mean(axis=(1, 2), keepdims=True) + 1e-8)
    style = np_dense(w, v[f"{scope}/StyleMod/weight"], v[f"{scope}/StyleMod/bias"], 1.0)
    return x * (style[:c, None, None] + 1.0) + style[c:, None, None]


def np_stylegan1(mapping, synth, z, num_layers, resolution):
    x = z / np.sqrt((z * z).mean() + 1e-8)
    for i in range(sum(1 for k in mapping if k.endswith("/weight"))):
        x = np_lrelu(np_dense(x, mapping[f"Dense{i}/weight"], mapping[f"Dense{i}/bias"],
                              SQRT2, 0.01))
    ws = [x] * num_layers
    v = synth
    x = v["4x4/Const/const"][0].astype(np.float64)
    x = np_epilogue(x, v, "4x4/Const", v["noise0"], ws[0])
    x = np_epilogue(np_conv_same(x, v["4x4/Conv/weight"]), v, "4x4/Conv", v["noise1"], ws[1])
    for r in [2**i for i in range(3, int(math.log2(resolution)) + 1)]:
        n = 2 * (int(math.log2(r)) - 2)
        w_up = v[f"{r}x{r}/Conv0_up/weight"]
        if r >= 128:
            x = np_fused_up(x, w_up)
        else:
            x = np_conv_same(x.repeat(2, axis=1).repeat(2, axis=2), w_up)
        x = np_epilogue(np_blur(x), v, f"{r}x{r}/Conv0_up", v[f"noise{n}"], ws[n])
        x = np_conv_same(x, v[f"{r}x{r}/Conv1/weight"])
        x = np_epilogue(x, v, f"{r}x{r}/Conv1", v[f"noise{n + 1}"], ws[n + 1])
    return np_conv_same(x, v["ToRGB_lod0/weight"], gain=1.0) + v["ToRGB_lod0/bias"][:, None,
                                                                                   None]


# --- tests --------------------------------------------------------------------------------

def test_tf_stylegan1_matches_numpy_reference(tmp_path):
    mapping, synth, own, kw = random_tf_stylegan1(resolution=128)
    src = tmp_path / "karras2019stylegan-tiny.pkl"
    write_tf_pickle(src, mapping, synth, own, version=3, synthesis_kwargs=kw)
    conv = convert_checkpoint(src)
    G = conv.G
    assert conv.source_format == "stylegan1-tf" and G.architecture == "stylegan1"
    assert G.num_ws == 12 and G.resolution == 128
    assert torch.equal(G.w_avg, torch.from_numpy(own["dlatent_avg"]))
    z = np.random.default_rng(1).standard_normal(8).astype(np.float32)
    ref = np_stylegan1(mapping, synth, z.astype(np.float64), G.num_ws, 128)
    with torch.no_grad():
        img = G(torch.from_numpy(z)[None])[0].double().numpy()
    err = np.abs(img - ref).max()
    assert err < 1e-4 * max(1.0, np.abs(ref).max()), err


def test_progressive_growing_network_is_refused(tmp_path):
    mapping, synth, own, kw = random_tf_stylegan1(resolution=16)
    synth["lod"] = np.float32(1.0)
    src = tmp_path / "growing.pkl"
    write_tf_pickle(src, mapping, synth, own, version=3, synthesis_kwargs=kw)
    with pytest.raises(i2s.I2SError, match="lod"):
        convert_checkpoint(src)


@pytest.mark.parametrize("res", [8, 16, 32, 128])
def test_shapes_and_interface(res, tmp_path):
    G = i2s.StyleGANGenerator(resolution=res, fmap_base=256, fmap_max=8, z_dim=8, w_dim=8,
                              mapping_layers=2).eval()
    assert G.num_ws == 2 * int(math.log2(res)) - 2
    ws = G.mapping(torch.randn(2, 8))
    assert ws.shape == (2, G.num_ws, 8)
    assert G.synthesis(ws).shape == (2, 3, res, res)
    assert torch.allclose(G.mapping(torch.randn(1, 8), truncation_psi=0.0)[0],
                          G.w_avg.expand(G.num_ws, -1))
    i2s.save_generator(G, tmp_path / "v1.safetensors")
    G2 = i2s.load_generator(tmp_path / "v1.safetensors")
    assert isinstance(G2, i2s.StyleGANGenerator) and torch.equal(G2.synthesis(ws),
                                                                 G.synthesis(ws))


def test_embedding_works_on_stylegan1():
    torch.manual_seed(0)
    G = i2s.StyleGANGenerator(resolution=16, fmap_base=256, fmap_max=16, z_dim=16, w_dim=16,
                              mapping_layers=2).eval().requires_grad_(False)
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(500, 16))[:, 0].mean(0))
        target = G.synthesis(G.w_avg.lerp(G.mapping(torch.randn(1, 16)), 0.5))
    r = i2s.embed(G, target, steps=300, lr=0.03, loss="mse")
    assert r.history["psnr"][-1, 0] > r.history["psnr"][0, 0] + 10
    for space in ("w", "z"):
        assert i2s.embed(G, target, steps=2, loss="mse", space=space).latent.shape == (1, 6, 16)


def test_ffhq_1024_parameter_count_matches_nvidia():
    """NVIDIA's StyleGAN FFHQ Gs has 26,219,627 parameters, including the ToRGB_lod1..8 layers
    of progressive growing, which a finished network does not use (and i2s does not hold)."""
    G = i2s.StyleGANGenerator(i2s.StyleGANConfig(resolution=1024))
    assert G.num_ws == 18
    unused_torgb = sum(G.cfg.channels(r) * 3 + 3 for r in G.cfg.block_resolutions[:-1])
    assert sum(p.numel() for p in G.parameters()) + unused_torgb == 26_219_627
