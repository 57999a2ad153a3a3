import os
import pickle
import subprocess

import numpy as np
import pytest
import torch
from safetensors import safe_open

import i2s
from i2s.media.files import sha256_file
from i2s.weights.convert import convert_checkpoint, convert_file
from i2s.weights.convert.safe_pickle import load_pickle
from tests.checkpoint_writers import (
    MALICIOUS_SRC,
    tf_variables_from_i2s,
    write_ada_pickle,
    write_rosinality,
    write_tf_pickle,
)
from tests.conftest import make_generator
from tests.test_cli import run


def source_generator():
    G = make_generator(resolution=32, seed=3, noise_strength=0.2)
    with torch.no_grad():  # non-trivial biases so that every mapping shows up in the image
        for name, p in G.named_parameters():
            if name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return G


def assert_same_images(G_src, G_conv):
    ws = G_src.mapping(torch.randn(3, G_src.z_dim, generator=torch.Generator().manual_seed(0)))
    a, b = G_src.synthesis(ws), G_conv.synthesis(ws)
    assert (a - b).abs().max().item() < 1e-6
    z = torch.randn(2, G_src.z_dim)
    assert torch.allclose(G_src.mapping(z), G_conv.mapping(z), atol=1e-6)


def test_ada_pickle_converts_exactly(tmp_path):
    G = source_generator()
    src = tmp_path / "network-snapshot.pkl"
    write_ada_pickle(src, G)
    dst = tmp_path / "g.safetensors"
    conv = convert_file(src, dst)
    assert conv.source_format == "stylegan2-ada-pytorch"
    G2 = i2s.load_generator(dst)
    assert G2.cfg == G.cfg
    assert_same_images(G, G2)
    with safe_open(str(dst), framework="pt") as f:
        meta = f.metadata()
    assert meta["source_sha256"] == sha256_file(src) and meta["source_format"] == conv.source_format


def test_ada_conv_clamp_and_coverage(tmp_path):
    G = i2s.StyleGAN2Generator(source_generator().cfg, conv_clamp=256.0)
    src = tmp_path / "a.pkl"
    write_ada_pickle(src, G)
    assert convert_checkpoint(src).G.cfg.conv_clamp == 256.0
    write_ada_pickle(src, G, extra_keys={"mystery": torch.nn.Parameter(torch.zeros(2))})
    with pytest.raises(i2s.I2SError, match="does not cover"):
        convert_checkpoint(src)


def test_stylegan3_pickle_is_refused_clearly(tmp_path):
    src = tmp_path / "stylegan3-r.pkl"
    write_ada_pickle(src, source_generator(),
                     extra_keys={"synthesis.input.affine.weight": torch.zeros(4, 2)})
    with pytest.raises(i2s.I2SError, match="StyleGAN3"):
        convert_checkpoint(src)


def test_tf_stylegan2_pickle_converts_exactly(tmp_path):
    G = source_generator()
    src = tmp_path / "stylegan2-config-f.pkl"
    write_tf_pickle(src, *tf_variables_from_i2s(G), fmap_base=G.cfg.channel_base // 2)
    conv = convert_checkpoint(src)
    assert conv.source_format == "stylegan2-tf" and conv.G.cfg == G.cfg
    assert_same_images(G, conv.G)


def test_tf_known_answers_flip_and_mod_bias(tmp_path):
    """Conv0_up weights are spatially flipped; TF's mod_bias is stored minus 1."""
    G = source_generator()
    mapping, synth, own = tf_variables_from_i2s(G)
    w = np.zeros_like(synth["8x8/Conv0_up/weight"])  # [3, 3, in, out]
    w[0, 0, 1, 2] = 5.0
    synth["8x8/Conv0_up/weight"] = w
    w1 = np.zeros_like(synth["8x8/Conv1/weight"])
    w1[0, 0, 1, 2] = 7.0
    synth["8x8/Conv1/weight"] = w1
    synth["8x8/Conv1/mod_bias"] = np.zeros_like(synth["8x8/Conv1/mod_bias"])
    src = tmp_path / "k.pkl"
    write_tf_pickle(src, mapping, synth, own)
    sd = convert_checkpoint(src).G.state_dict()
    up = sd["synthesis.b8.conv0.weight"]
    assert up[2, 1, 2, 2] == 5.0 and up.abs().sum() == 5.0  # [0, 0] tap -> [2, 2]
    plain = sd["synthesis.b8.conv1.weight"]
    assert plain[2, 1, 0, 0] == 7.0 and plain.abs().sum() == 7.0  # no flip
    assert torch.equal(sd["synthesis.b8.conv1.affine.bias"],
                       torch.ones_like(sd["synthesis.b8.conv1.affine.bias"]))


def test_tf_coverage_and_versions(tmp_path):
    G = source_generator()
    mapping, synth, own = tf_variables_from_i2s(G)
    src = tmp_path / "x.pkl"
    write_tf_pickle(src, mapping, {**synth, "16x16/Extra/weight": np.zeros(3)}, own)
    with pytest.raises(i2s.I2SError, match="not used"):
        convert_checkpoint(src)
    bad = dict(synth)
    del bad["noise3"]
    write_tf_pickle(src, mapping, bad, own)
    with pytest.raises(i2s.I2SError, match="missing variable 'noise3'"):
        convert_checkpoint(src)


@pytest.mark.parametrize("legacy", [False, True])
def test_rosinality_checkpoint_converts_exactly(tmp_path, legacy):
    G = source_generator()
    src = tmp_path / "550000.pt"
    write_rosinality(src, G, legacy=legacy)
    conv = convert_checkpoint(src)
    assert conv.source_format == "rosinality" and conv.G.cfg == G.cfg
    assert_same_images(G, conv.G)


def _rosinality_g_ema_16(seed: int = 11) -> dict[str, torch.Tensor]:
    """A rosinality ``g_ema`` state dict written by hand from the documented layout (not via
    the inverse mapping): size 16, style_dim 8, n_mlp 2, channels 16 / 16 / 8 at 4 / 8 / 16 px.

    ``style.0`` is the pixel norm (no weights), so the dense layers are ``style.1..n_mlp``
    ([out, in], stored as randn / lr_mul like NVIDIA's); modulated convs hold ``conv.weight``
    [1, out, in, k, k] and ``conv.modulation`` [in, style_dim] (bias initialised to 1);
    StyledConv adds ``noise.weight`` [1] and ``activate.bias`` [out]; ToRGB's bias is
    [1, 3, 1, 1]; up-sampling convs keep ``conv.blur.kernel`` and ToRGBs after the first
    ``upsample.kernel`` (the normalised [1,3,3,1] outer product times factor**2 = 4); noise
    buffers ``noises.noise_{i}`` are [1, 1, R, R] with R = 2 ** ((i + 5) // 2)."""
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(shape, generator=gen)

    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kern = torch.outer(taps, taps) / 64.0 * 4
    g = {"style.1.weight": rnd(8, 8), "style.1.bias": rnd(8),
         "style.2.weight": rnd(8, 8), "style.2.bias": rnd(8),
         "input.input": rnd(1, 16, 4, 4)}

    def styled(name, c_in, c_out, up=False):
        g[f"{name}.conv.weight"] = rnd(1, c_out, c_in, 3, 3)
        g[f"{name}.conv.modulation.weight"] = rnd(c_in, 8)
        g[f"{name}.conv.modulation.bias"] = 1 + 0.1 * rnd(c_in)
        g[f"{name}.noise.weight"] = rnd(1)
        g[f"{name}.activate.bias"] = rnd(c_out)
        if up:
            g[f"{name}.conv.blur.kernel"] = kern.clone()

    def to_rgb(name, c_in, up=True):
        g[f"{name}.conv.weight"] = rnd(1, 3, c_in, 1, 1)
        g[f"{name}.conv.modulation.weight"] = rnd(c_in, 8)
        g[f"{name}.conv.modulation.bias"] = 1 + 0.1 * rnd(c_in)
        g[f"{name}.bias"] = rnd(1, 3, 1, 1)
        if up:
            g[f"{name}.upsample.kernel"] = kern.clone()

    styled("conv1", 16, 16)
    to_rgb("to_rgb1", 16, up=False)
    styled("convs.0", 16, 16, up=True)
    styled("convs.1", 16, 16)
    to_rgb("to_rgbs.0", 16)
    styled("convs.2", 16, 8, up=True)
    styled("convs.3", 8, 8)
    to_rgb("to_rgbs.1", 8)
    for i, r in enumerate([4, 8, 8, 16, 16]):
        g[f"noises.noise_{i}"] = rnd(1, 1, r, r)
    return g


def test_rosinality_known_answers(tmp_path):
    """Hand-built rosinality checkpoint: each documented fact lands exactly where it should."""
    g = _rosinality_g_ema_16()
    # Up-sampling conv: one tap. rosinality's convert_weight.py flips TF's Conv0_up weights, as
    # NVIDIA's TF -> ADA conversion does, so both store the same transposed-conv weight:
    # no flip and no in/out swap between them, only the leading 1 dropped.
    up = torch.zeros(1, 8, 16, 3, 3)
    up[0, 5, 11, 0, 2] = 5.0
    g["convs.2.conv.weight"] = up
    plain = torch.zeros(1, 16, 16, 3, 3)
    plain[0, 3, 7, 2, 1] = 7.0
    g["convs.1.conv.weight"] = plain
    rgb = torch.zeros(1, 3, 16, 1, 1)
    rgb[0, 2, 9, 0, 0] = 3.0
    g["to_rgbs.0.conv.weight"] = rgb
    g["convs.2.noise.weight"] = torch.tensor([0.25])
    g["to_rgbs.1.bias"] = torch.tensor([0.1, 0.2, 0.3]).reshape(1, 3, 1, 1)
    g["conv1.conv.modulation.bias"] = 1.0 + torch.arange(16.0) / 100
    latent_avg = torch.linspace(-1, 1, 8)
    src = tmp_path / "stylegan2-ffhq-config-f.pt"
    torch.save({"g_ema": g, "latent_avg": latent_avg}, src)
    conv = convert_checkpoint(src)
    cfg, sd = conv.G.cfg, conv.G.state_dict()

    # Config from the shapes: 4 * 2**len(to_rgbs) px, style_dim for z and w, n_mlp layers.
    assert conv.source_format == "rosinality"
    assert (cfg.resolution, cfg.z_dim, cfg.w_dim, cfg.mapping_layers) == (16, 8, 8, 2)
    assert [cfg.channels(r) for r in (4, 8, 16)] == [16, 16, 8]
    # 1. Conv weights: [1, out, in, k, k] -> [out, in, k, k], same taps (no flip, even when up).
    w = sd["synthesis.b16.conv0.weight"]
    assert w.shape == (8, 16, 3, 3) and w[5, 11, 0, 2] == 5.0 and w.abs().sum() == 5.0
    w = sd["synthesis.b8.conv1.weight"]
    assert w[3, 7, 2, 1] == 7.0 and w.abs().sum() == 7.0
    w = sd["synthesis.b8.torgb.weight"]
    assert w.shape == (3, 16, 1, 1) and w[2, 9, 0, 0] == 3.0 and w.abs().sum() == 3.0
    # 2. Modulation: stored as used (bias initialised to 1, no TF-style offset), [in, style_dim].
    assert torch.equal(sd["synthesis.b4.conv1.affine.bias"], g["conv1.conv.modulation.bias"])
    assert torch.equal(sd["synthesis.b16.conv1.affine.weight"],
                       g["convs.3.conv.modulation.weight"])
    assert torch.equal(sd["synthesis.b16.torgb.affine.bias"],
                       g["to_rgbs.1.conv.modulation.bias"])
    # 3. Noise buffers by layer order: noise_0 -> b4.conv1, then convs.{j} -> noise_{j+1}.
    for i, key in enumerate(["b4.conv1", "b8.conv0", "b8.conv1", "b16.conv0", "b16.conv1"]):
        assert torch.equal(sd[f"synthesis.{key}.noise_const"], g[f"noises.noise_{i}"][0, 0])
    # 4. NoiseInjection weight [1] -> 0-d noise_strength.
    assert sd["synthesis.b16.conv0.noise_strength"].shape == ()
    assert sd["synthesis.b16.conv0.noise_strength"].item() == 0.25
    # 5. FusedLeakyReLU bias [C] -> conv bias; ToRGB bias [1, 3, 1, 1] -> [3].
    assert torch.equal(sd["synthesis.b16.conv1.bias"], g["convs.3.activate.bias"])
    assert torch.equal(sd["synthesis.b4.conv1.bias"], g["conv1.activate.bias"])
    assert torch.equal(sd["synthesis.b16.torgb.bias"], torch.tensor([0.1, 0.2, 0.3]))
    # 6. Const input [1, C, 4, 4] -> [C, 4, 4]; latent_avg -> w_avg.
    assert torch.equal(sd["synthesis.b4.const"], g["input.input"][0])
    assert torch.equal(sd["mapping.w_avg"], latent_avg)
    # 7. Mapping: style.{i+1} -> fc{i} unscaled (both store W / lr_mul and b unscaled) ...
    for i in range(2):
        assert torch.equal(sd[f"mapping.fc{i}.weight"], g[f"style.{i + 1}.weight"])
        assert torch.equal(sd[f"mapping.fc{i}.bias"], g[f"style.{i + 1}.bias"])
    # ... and the converted mapping computes rosinality's: pixel norm (eps 1e-8), then
    # lrelu_0.2(x @ (W * lr_mul / sqrt(in)).T + b * lr_mul) * sqrt(2), lr_mul 0.01.
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
    for i in (1, 2):
        y = x @ (g[f"style.{i}.weight"] * 0.01 / 8 ** 0.5).T + g[f"style.{i}.bias"] * 0.01
        x = torch.nn.functional.leaky_relu(y, 0.2) * 2 ** 0.5
    ws = conv.G.mapping(z)
    assert ws.shape == (4, conv.G.num_ws, 8)
    assert torch.allclose(ws[:, 0], x, atol=1e-5) and torch.equal(ws[:, 0], ws[:, -1])
    # 8. The blur / upsample kernels (sum 4) are the normalised [1,3,3,1] filter.
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    fir = torch.outer(taps, taps) / 64.0
    assert torch.allclose(sd["synthesis.b16.conv0.resample_filter"], fir)
    assert torch.allclose(sd["synthesis.b16.resample_filter"], fir)


@pytest.mark.parametrize("key", ["convs.2.conv.blur.kernel", "to_rgbs.0.upsample.kernel"])
def test_rosinality_other_blur_kernel_refused(tmp_path, key):
    g = _rosinality_g_ema_16()
    taps = torch.tensor([1.0, 2.0, 2.0, 1.0])  # not StyleGAN2's filter
    g[key] = torch.outer(taps, taps) / 36.0 * 4
    src = tmp_path / "r.pt"
    torch.save({"g_ema": g, "latent_avg": torch.zeros(8)}, src)
    with pytest.raises(i2s.I2SError, match="not the \\[1, 3, 3, 1\\] filter"):
        convert_checkpoint(src)


def test_rosinality_unknown_key_refused(tmp_path):
    g = _rosinality_g_ema_16()
    g["convs.1.conv.extra"] = torch.zeros(2)
    src = tmp_path / "r.pt"
    torch.save({"g_ema": g, "latent_avg": torch.zeros(8)}, src)
    with pytest.raises(i2s.I2SError, match="not used"):
        convert_checkpoint(src)


def test_cli_convert_then_embed(tmp_path, capsys):
    G = source_generator()
    src = tmp_path / "ffhq.pkl"
    write_ada_pickle(src, G)
    dst = tmp_path / "ffhq.safetensors"
    code, out, _ = run(["convert", src, "-o", dst], capsys)
    assert code == 0 and out.count("\n") == 1
    assert "stylegan2-ada-pytorch" in out and "32px" in out
    code, _, err = run(["generate", "--model", dst, "--seed", 1, "--out", tmp_path / "s.png"],
                       capsys)
    assert code == 0, err
    code, _, err = run(["convert", tmp_path / "missing.pkl", "-o", dst], capsys)
    assert code == 1 and "not found" in err


# --- malicious files: refused, and the side effect never happens -------------------------


class _Payload:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "subprocess.call", "eval"])
def test_malicious_globals_refused(tmp_path, kind):
    marker = tmp_path / "pwned"
    cmd = f"touch {marker}"
    payload = {"os.system": _Payload(os.system, (cmd,)),
               "builtins.exec": _Payload(exec, (f"open({str(marker)!r}, 'w')",)),
               "subprocess.call": _Payload(subprocess.call, (["touch", str(marker)],)),
               "eval": _Payload(eval, (f"open({str(marker)!r}, 'w')",))}[kind]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}))
    with pytest.raises(i2s.I2SError, match="refusing global") as e:
        load_pickle(path)
    assert kind.split(".")[-1] in str(e.value)
    with pytest.raises(i2s.I2SError):
        convert_checkpoint(path)
    assert not marker.exists()


def test_stored_source_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    G = source_generator()
    ada = tmp_path / "ada.pkl"
    write_ada_pickle(ada, G, module_src=MALICIOUS_SRC.format(path=str(marker)))
    assert_same_images(G, convert_checkpoint(ada).G)
    tf = tmp_path / "tf.pkl"
    write_tf_pickle(tf, *tf_variables_from_i2s(G),
                    build_module_src=MALICIOUS_SRC.format(path=str(marker)))
    assert_same_images(G, convert_checkpoint(tf).G)
    assert not marker.exists()


def test_malicious_torch_checkpoint_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": _Payload(os.system, (f"touch {marker}",)), "latent_avg": 0}, path)
    with pytest.raises(i2s.I2SError, match="safely"):
        convert_checkpoint(path)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(i2s.I2SError, match="not a recognised"):
        convert_checkpoint(p)
    p.write_bytes(b"\x80\x04garbage")
    with pytest.raises(i2s.I2SError):
        convert_checkpoint(p)


def test_load_generator_converts_checkpoints_once_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    G = source_generator()
    src = tmp_path / "ffhq.pkl"
    write_ada_pickle(src, G)
    G2 = i2s.load_generator(src)
    cached = list((tmp_path / "home" / "converted").iterdir())
    assert len(cached) == 1 and cached[0].name.endswith("-ffhq.safetensors")
    assert G2.file_sha256 == sha256_file(cached[0])
    assert_same_images(G, G2)

    def no_second_conversion(*a, **k):
        raise AssertionError("converted twice")

    monkeypatch.setattr("i2s.weights.load.convert_file", no_second_conversion)
    assert_same_images(G, i2s.load_generator(src))


def test_cli_embed_accepts_a_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    G = source_generator()
    src = tmp_path / "550000.pt"
    write_rosinality(src, G)
    img = tmp_path / "x.png"
    code, _, err = run(["generate", "--model", src, "--seed", 2, "--out", img], capsys)
    assert code == 0, err
    code, _, err = run(["embed", img, "--model", src, "--out", tmp_path / "o", "--steps", 2,
                        "--loss", "mse", "-q"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("content,what", [
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "a PNG image"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 30, "a JPEG image"),
    (b"hello, this is text\n", "a text file"),
    (b"", "an empty file"),
    (b"\x93NUMPY\x01\x00", "a NumPy .npy array"),
])
def test_convert_says_what_a_non_checkpoint_is(tmp_path, content, what):
    src = tmp_path / "thing.bin"
    src.write_bytes(content)
    with pytest.raises(i2s.I2SError, match=f"{what}, not a checkpoint.*StyleGAN2-ADA .pkl"):
        convert_file(src, tmp_path / "o.safetensors")
    assert not (tmp_path / "o.safetensors").exists()


def test_convert_recognises_npz_and_i2s_files(tmp_path, model_file):
    np.savez(tmp_path / "l.npz", w=np.zeros(3))
    with pytest.raises(i2s.I2SError, match="NumPy .npz archive"):
        convert_file(tmp_path / "l.npz", tmp_path / "o.safetensors")
    with pytest.raises(i2s.I2SError, match="already an i2s generator file"):
        convert_file(model_file, tmp_path / "o.safetensors")
