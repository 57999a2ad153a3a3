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
    assert G2.sha256 == sha256_file(cached[0])
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
