"""Hostile checkpoints and model files: each gives one clear I2SError (one line, ``error: ...``
from the CLI), never a traceback, never an absurd allocation, never a half-written or silently
wrong model; and the real formats the hostile tester found refused (StyleGAN2-ADA TF pickles,
protocol-2 pickles, rosinality train.py checkpoints) convert exactly.

Tiny generators only: the whole file runs in a few seconds."""

from __future__ import annotations

import json
import os
import pickle
import time
from collections import OrderedDict

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import i2s
from i2s.weights.convert import convert_checkpoint, convert_file
from i2s.weights.convert.safe_pickle import load_pickle
from i2s.weights.registry import REGISTRY
from tests.checkpoint_writers import (
    MALICIOUS_SRC,
    ada_init_kwargs,
    nvidia_augment_pipe,
    nvidia_discriminator,
    op_build,
    op_bytes,
    op_call,
    op_global,
    op_int,
    op_str,
    op_tuple,
    pickle_stream,
    random_tf_stylegan1,
    rosinality_state_from_i2s,
    storage_record,
    storages_tagged,
    tf_variables_from_i2s,
    use_numpy1_names,
    write_ada_pickle,
    write_rosinality,
    write_tf_ada_pickle,
    write_tf_pickle,
)
from tests.cli_run import run
from tests.conftest import make_generator

NP = "numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray"


def source_generator(conv_clamp=None):
    G = make_generator(resolution=16, seed=5, dim=16, channel_base=128, channel_max=16,
                       noise_strength=0.3)
    if conv_clamp is not None:
        G2 = i2s.StyleGAN2Generator(G.cfg, conv_clamp=conv_clamp)
        G2.load_state_dict(G.state_dict())
        G = G2.eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
    return G


def images(G, seed=0):
    ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(seed)))
    return G.synthesis(ws)


def assert_same_images(G_src, G_conv):
    assert (images(G_src) - images(G_conv)).abs().max().item() < 1e-6
    z = torch.randn(2, G_src.z_dim)
    assert torch.allclose(G_src.mapping(z), G_conv.mapping(z), atol=1e-6)


def refused(path, match, fn=load_pickle):
    """``fn(path)`` raises one one-line I2SError matching ``match``."""
    with pytest.raises(i2s.I2SError, match=match) as e:
        fn(path)
    assert "\n" not in str(e.value)
    return str(e.value)


def write(tmp_path, data: bytes, name="x.pkl"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# --- 1. pickles that claim absurd sizes: refused by comparing the claim with the file --------


def _array(shape, data=b"\0" * 12, dtype="f4"):
    """numpy's own layout: _reconstruct(ndarray, (0,), b'b'), then BUILD with (1, shape,
    dtype, fortran, data)."""
    dt = op_build(op_call(op_global("numpy", "dtype"), op_str(dtype), pickle.NEWFALSE,
                          pickle.NEWTRUE),
                  op_tuple(op_int(3), op_str("<"), pickle.NONE, pickle.NONE, pickle.NONE,
                           op_int(-1), op_int(-1), op_int(0)))
    arr = op_call(op_global(NP, "_reconstruct"), op_global("numpy", "ndarray"),
                  op_tuple(op_int(0)), op_bytes(b"b"))
    return op_build(arr, op_tuple(op_int(1), op_tuple(*(op_int(d) for d in shape)), dt,
                                  pickle.NEWFALSE, op_bytes(data)))


HUGE_PICKLES = {
    # numpy arrays of an allowed dtype whose shape claims 2^80 / 2^40 elements
    "array state 2^80": (pickle_stream(_array((2**80,))), "invalid shape|needs"),
    "array state 2^40": (pickle_stream(_array((2**40,))), "needs 4398046511104 bytes"),
    "array state 2^20 x 2^20": (pickle_stream(_array((2**20, 2**20))), "needs"),
    "_reconstruct 2^80": (pickle_stream(op_call(op_global(NP, "_reconstruct"),
                                                op_global("numpy", "ndarray"),
                                                op_tuple(op_int(2**80)), op_bytes(b"b"))),
                          "larger than the file"),
    "_reconstruct 2^40": (pickle_stream(op_call(op_global(NP, "_reconstruct"),
                                                op_global("numpy", "ndarray"),
                                                op_tuple(op_int(2**40)), op_bytes(b"f"))),
                          "larger than the file"),
    "ndarray(2^40)": (pickle_stream(op_call(op_global("numpy", "ndarray"),
                                            op_tuple(op_int(2**40)))), "not callable"),
    "bytes(2^40)": (pickle_stream(op_call(op_global("builtins", "bytes"), op_int(2**40))),
                    "bytes"),
    # 14-byte files whose length fields claim 2^40 bytes
    "BINBYTES8 2^40": (b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc",
                       "claims 1099511627776 bytes"),
    "BINUNICODE8 2^40": (b"\x80\x04\x8d" + (2**40).to_bytes(8, "little") + b"abc",
                         "claims 1099511627776 bytes"),
    "BYTEARRAY8 2^40": (b"\x80\x05\x96" + (2**40).to_bytes(8, "little") + b"abc",
                        "claims 1099511627776 bytes"),
    "FRAME 2^40": (b"\x80\x04\x95" + (2**40).to_bytes(8, "little") + b"abc",
                   "claims 1099511627776 bytes"),
    "BINBYTES8 2^64-1": (b"\x80\x04\x8e" + (2**64 - 1).to_bytes(8, "little") + b"abc",
                         "claims|exceeds"),
    "LONG4 2^31-1": (b"\x80\x02\x8b" + (2**31 - 1).to_bytes(4, "little") + b"abcdefg",
                     "claims 2147483647 bytes"),
    # a stored tensor record (torch.storage._load_from_bytes) claiming 2^40 elements
    "storage record 2^40": (pickle_stream(op_call(op_global("torch.storage", "_load_from_bytes"),
                                                  op_bytes(storage_record(b"\0" * 12, 2**40)))),
                            "claims 1099511627776 elements"),
    "storage record count": (pickle_stream(op_call(
        op_global("torch.storage", "_load_from_bytes"),
        op_bytes(storage_record(b"\0" * 12, 3, count=2**40)))), "claims"),
}


@pytest.mark.parametrize("name", list(HUGE_PICKLES))
def test_absurd_sizes_are_refused_before_allocating(tmp_path, name):
    data, match = HUGE_PICKLES[name]
    t0 = time.perf_counter()
    msg = refused(write(tmp_path, data), match)
    assert "MemoryError" not in msg and "OverflowError" not in msg
    assert time.perf_counter() - t0 < 2.0
    # The same through the converter and the CLI: one line, exit code 1.
    refused(tmp_path / "x.pkl", match, convert_checkpoint)


@pytest.mark.parametrize("numel,count,extra", [(2**40, None, b""), (4, 2**40, b""),
                                               (4, None, b"\0" * 8)])
def test_legacy_torch_file_claiming_more_than_it_stores(tmp_path, numel, count, extra):
    """rosinality checkpoints in torch's pre-1.6 format: torch allocates what each storage
    claims before reading it, so the claims are checked against the file first."""
    p = write(tmp_path, storage_record(b"\0" * 16, numel, count=count) + extra, "old.pt")
    if extra:  # sizes consistent: the file is read, and is no rosinality checkpoint
        refused(p, "not a rosinality checkpoint", convert_checkpoint)
    else:
        refused(p, "claims", convert_checkpoint)


def test_cli_reports_a_huge_claim_in_one_line(tmp_path, capsys):
    src = write(tmp_path, HUGE_PICKLES["BINBYTES8 2^40"][0], "evil.pkl")
    code, out, err = run(["convert", src, "-o", tmp_path / "out.safetensors"], capsys)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "out.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pkl"]


# --- 2. tensor views outside their storage ---------------------------------------------------


class _View:
    """Pickles as a tensor does: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


@pytest.mark.parametrize("offset,size,stride,match", [
    (10, (2,), (1,), "does not fit"),              # offset beyond the storage
    (-1, (2,), (1,), "offset"),                     # negative offset
    (0, (100,), (1,), "does not fit"),              # more elements than stored
    (0, (2, 2), (1, 2**40), "does not fit"),        # stride far beyond the end
    (0, (2,), (-1,), "invalid shape"),              # negative stride
    (0, (-2,), (1,), "invalid shape"),              # negative size
    (0, (2**40,), (0,), "does not fit"),            # 2^40 elements repeating one
    (0, (2, 2), (1,), "strides"),                   # sizes and strides disagree
    (0.5, (2,), (1,), "offset"),                    # not an integer
])
def test_tensor_views_outside_their_storage_are_refused(tmp_path, offset, size, stride, match):
    storage = torch.arange(4.0).untyped_storage()
    typed = torch.storage.TypedStorage(wrap_storage=storage, dtype=torch.float32, _internal=True)
    p = tmp_path / "t.pkl"
    p.write_bytes(pickle.dumps({"t": _View(typed, offset, size, stride, False, OrderedDict())},
                               protocol=3))
    refused(p, match)


def test_a_valid_view_still_loads(tmp_path):
    t = torch.arange(12.0).reshape(3, 4)[1:, ::2]
    p = tmp_path / "t.pkl"
    p.write_bytes(pickle.dumps({"t": t}, protocol=3))
    assert torch.equal(load_pickle(p)["t"], t)


# --- 3. rosinality: incomplete g_ema named; train.py checkpoints (no latent_avg) accepted ----


def _rosinality(tmp_path, G, drop=(), **extra):
    g = rosinality_state_from_i2s(G)
    for k in [k for k in g if any(k == d or k.startswith(d + ".") for d in drop)]:
        del g[k]
    p = tmp_path / "r.pt"
    torch.save({"g_ema": g, "latent_avg": G.w_avg.clone(), **extra}, p)
    return p


@pytest.mark.parametrize("drop,missing", [
    (("convs.3.conv.weight",), "convs.3.conv.weight"),
    (("convs.1",), "convs.1.conv.weight"),
    (("to_rgbs.0",), "to_rgbs.0.conv.weight"),
    (("style.1",), "style.1.weight"),
    (("style.1", "style.2"), "style.1.weight"),
    (("noises.noise_2",), "noises.noise_2"),
    (("conv1.conv.weight",), "conv1.conv.weight"),
    (("input.input",), "input.input"),
    (("to_rgb1",), "to_rgb1.conv.weight"),
    (("convs.2", "convs.3"), "convs.2.conv.weight"),
])
def test_incomplete_rosinality_checkpoint_names_what_is_missing(tmp_path, drop, missing):
    refused(_rosinality(tmp_path, source_generator(), drop), f"'{missing}'", convert_checkpoint)


def test_rosinality_missing_top_block_is_caught_by_its_args(tmp_path):
    import argparse

    p = _rosinality(tmp_path, source_generator(),
                    drop=("to_rgbs.1", "convs.2", "convs.3", "noises.noise_3", "noises.noise_4"),
                    args=argparse.Namespace(size=16, n_mlp=2))
    refused(p, "stop at 8 px.*size 16", convert_checkpoint)


def test_rosinality_bad_values_are_refused(tmp_path):
    G = source_generator()
    g = rosinality_state_from_i2s(G)
    g["convs.0.conv.weight"] = g["convs.0.conv.weight"][0]  # rank 4 instead of 5
    p = tmp_path / "r.pt"
    torch.save({"g_ema": g, "latent_avg": G.w_avg}, p)
    refused(p, "convs.0.conv.weight.*dimensions", convert_checkpoint)
    torch.save({"g_ema": rosinality_state_from_i2s(G), "latent_avg": torch.zeros(3)}, p)
    refused(p, "latent_avg", convert_checkpoint)
    torch.save({"g_ema": {**rosinality_state_from_i2s(G), "style.1.weight": "x"}}, p)
    refused(p, "not a named tensor", convert_checkpoint)


@pytest.mark.parametrize("legacy", [False, True])
def test_rosinality_train_py_checkpoint_estimates_w_avg(tmp_path, legacy):
    G = source_generator()
    src = tmp_path / "010000.pt"
    write_rosinality(src, G, legacy=legacy, layout="train")
    dst = tmp_path / "g.safetensors"
    conv = convert_file(src, dst)
    assert conv.notes == {"w_avg": "estimated from 4096 z"}
    assert "w_avg: estimated from 4096 z" in conv.summary(src, dst)
    with safe_open(str(dst), framework="pt") as f:
        assert f.metadata()["w_avg"] == "estimated from 4096 z"
    G2 = i2s.load_generator(dst)
    z = torch.randn(4096, G.z_dim, generator=torch.Generator().manual_seed(0))
    expected = G.mapping(z)[:, 0].mean(0)
    assert torch.allclose(G2.w_avg, expected, atol=1e-5)
    assert (G2.w_avg - G.w_avg).abs().max() < 0.1  # close to the true average
    assert_same_images(G, G2)  # everything else is exact
    assert torch.equal(convert_checkpoint(src).G.w_avg, G2.w_avg)  # fixed z: reproducible


# --- 4. StyleGAN2-ADA TensorFlow pickles -------------------------------------------------------


def test_stylegan2_ada_tf_pickle_converts_with_the_same_images(tmp_path):
    """Version 5, synthesis named G_synthesis (like StyleGAN v1), conv_clamp and num_fp16_res
    in the static kwargs. A small conv_clamp makes the clamp change the images."""
    G = source_generator(conv_clamp=0.5)
    src = tmp_path / "metfaces.pkl"
    write_tf_ada_pickle(src, G, conv_clamp=0.5, num_fp16_res=4)
    dst = tmp_path / "m.safetensors"
    conv = convert_file(src, dst)
    assert conv.source_format == "stylegan2-ada-tf"
    assert conv.G.cfg == G.cfg and conv.G.cfg.conv_clamp == 0.5
    assert conv.notes == {"num_fp16_res": "4"}
    with safe_open(str(dst), framework="pt") as f:
        meta = f.metadata()
    assert meta["num_fp16_res"] == "4" and meta["source_format"] == "stylegan2-ada-tf"
    assert_same_images(G, i2s.load_generator(dst))
    unclamped = i2s.StyleGAN2Generator(G.cfg, conv_clamp=None)
    unclamped.load_state_dict(G.state_dict())
    assert (images(unclamped) - images(G)).abs().max() > 1e-3  # the clamp matters


def test_stylegan2_ada_tf_pickle_without_clamp(tmp_path):
    G = source_generator()
    src = tmp_path / "ffhq.pkl"
    write_tf_ada_pickle(src, G, conv_clamp=None, num_fp16_res=0)
    conv = convert_checkpoint(src)
    assert conv.G.cfg.conv_clamp is None and conv.notes == {}
    assert_same_images(G, conv.G)


@pytest.mark.parametrize("setting", [
    {"nonlinearity": "relu"}, {"use_noise": False}, {"architecture": "resnet"},
    {"resample_kernel": [1, 2, 1]}, {"label_size": 10}, {"mapping_nonlinearity": "linear"},
    {"normalize_latents": False}, {"conv_clamp": -1},
])
def test_stylegan2_ada_tf_settings_i2s_does_not_implement_are_refused(tmp_path, setting):
    src = tmp_path / "x.pkl"
    write_tf_ada_pickle(src, source_generator(), static_kwargs=setting)
    name = next(iter(setting))
    refused(src, name, convert_checkpoint)


def test_stylegan2_ada_tf_registry_entries():
    tf = {n: e for n, e in REGISTRY.items() if any("/stylegan2-ada/pretrained/" in u
                                                    for u in e.urls)}
    files = {u.rsplit("/", 1)[1] for e in tf.values() for u in e.urls
             if "/stylegan2-ada/pretrained/" in u}
    assert {"ffhq.pkl", "metfaces.pkl", "afhqcat.pkl", "afhqdog.pkl", "afhqwild.pkl",
            "brecahad.pkl"} <= files
    assert all(e.kind == "generator" and e.architecture == "stylegan2" for e in tf.values())


# --- 5. protocol-2 pickles (Python 2 names, bytes as _codecs.encode) ---------------------------


def test_protocol2_tf_stylegan2_pickle_converts(tmp_path):
    G = source_generator()
    src = tmp_path / "stylegan2-p2.pkl"
    write_tf_pickle(src, *tf_variables_from_i2s(G), fmap_base=G.cfg.channel_base // 2,
                    protocol=2)
    raw = src.read_bytes()
    assert raw[:2] == b"\x80\x02" and b"_codecs\nencode" in raw
    conv = convert_checkpoint(src)
    assert conv.source_format == "stylegan2-tf"
    assert_same_images(G, conv.G)


def test_protocol2_ada_pickles_convert(tmp_path):
    G = source_generator()
    src = tmp_path / "ada-p2.pkl"
    write_ada_pickle(src, G, protocol=2)
    raw = src.read_bytes()
    assert b"__builtin__\nset" in raw and b"_codecs\nencode" in raw
    assert_same_images(G, convert_checkpoint(src).G)
    write_tf_ada_pickle(src, G, conv_clamp=None, protocol=2)
    assert_same_images(G, convert_checkpoint(src).G)


@pytest.mark.parametrize("data,match", [
    (pickle_stream(op_call(op_global("_codecs", "encode"), op_str("x"), op_str("utf-16"))),
     "encode"),
    (pickle_stream(op_call(op_global("_codecs", "encode"), op_bytes(b"x"), op_str("latin1"))),
     "encode"),
    (pickle_stream(op_call(op_global("_codecs", "decode"), op_bytes(b"x"), op_str("latin1")),
                   proto=2), "_codecs.decode"),
    (pickle_stream(op_call(op_global("__builtin__", "eval"), op_str("1")), proto=2),
     "__builtin__.eval"),
    (pickle_stream(op_call(op_global("copy_reg", "_reconstructor"), pickle.NONE), proto=2),
     "copy_reg._reconstructor"),
    (pickle_stream(op_call(op_global("__builtin__", "set"), op_int(1)), proto=3),
     "__builtin__.set"),  # Python 2 names are mapped only in protocols 0-2, as pickle does
])
def test_protocol2_names_stay_on_the_allowlist(tmp_path, data, match):
    refused(write(tmp_path, data), match)


def test_protocol2_names_are_mapped(tmp_path):
    data = pickle_stream(op_call(op_global("__builtin__", "set"), pickle.EMPTY_LIST)
                         + op_call(op_global("_codecs", "encode"), op_str("\xff"),
                                   op_str("latin1")) + pickle.TUPLE2, proto=2)
    assert load_pickle(write(tmp_path, data)) == (set(), b"\xff")


# --- 6. StyleGAN2-ADA (PyTorch) settings that change the images without changing shapes -------


@pytest.mark.parametrize("where,name,value", [
    ("synthesis_kwargs", "activation", "relu"),
    ("synthesis_kwargs", "use_noise", False),
    ("synthesis_kwargs", "architecture", "resnet"),
    ("synthesis_kwargs", "architecture", "orig"),
    ("synthesis_kwargs", "resample_filter", [1, 2, 1]),
    ("synthesis_kwargs", "kernel_size", 5),
    ("synthesis_kwargs", "conv_clamp", -5),
    ("synthesis_kwargs", "conv_clamp", "256"),
    ("synthesis_kwargs", "magnitude_ema_beta", 0.5),  # unknown: cannot tell what it does
    ("mapping_kwargs", "activation", "linear"),
    ("mapping_kwargs", "layer_features", 7),
    ("mapping_kwargs", "lr_multiplier", float("nan")),
    (None, "c_dim", 10),
    (None, "img_resolution", "16"),
])
def test_ada_settings_i2s_does_not_implement_are_refused(tmp_path, where, name, value):
    G = source_generator()
    kw = ada_init_kwargs(G)
    (kw if where is None else kw[where])[name] = value
    src = tmp_path / "a.pkl"
    write_ada_pickle(src, G, init_kwargs=kw)
    msg = refused(src, name, convert_checkpoint)
    assert str(value)[:4] in msg or name in ("c_dim", "magnitude_ema_beta")


@pytest.mark.parametrize("where,name,value", [
    ("mapping_kwargs", "w_avg_beta", 0.9),
    ("mapping_kwargs", "embed_features", 512),  # unused without classes
    ("synthesis_kwargs", "fused_modconv_default", "inference_only"),
    ("synthesis_kwargs", "fp16_channels_last", True),
    ("synthesis_kwargs", "activation", "lrelu"),
    ("synthesis_kwargs", "use_noise", True),
    ("synthesis_kwargs", "resample_filter", [1, 3, 3, 1]),
])
def test_ada_settings_that_do_not_change_the_images_are_accepted(tmp_path, where, name, value):
    G = source_generator()
    kw = ada_init_kwargs(G)
    kw[where][name] = value
    src = tmp_path / "a.pkl"
    write_ada_pickle(src, G, init_kwargs=kw)
    assert_same_images(G, convert_checkpoint(src).G)


def test_ada_num_fp16_res_recorded_and_stylegan3_repo_layout(tmp_path):
    G = source_generator(conv_clamp=256.0)
    kw = ada_init_kwargs(G)
    kw["synthesis_kwargs"]["num_fp16_res"] = 4
    src = tmp_path / "a.pkl"
    write_ada_pickle(src, G, init_kwargs=kw)
    conv = convert_checkpoint(src)
    assert conv.notes == {"num_fp16_res": "4"} and conv.G.cfg.conv_clamp == 256.0
    # The StyleGAN3 repository's StyleGAN2 passes synthesis settings flat; its defaults are
    # conv_clamp 256 and num_fp16_res 4.
    flat = ada_init_kwargs(G, flat=True)
    del flat["conv_clamp"], flat["num_fp16_res"]
    write_ada_pickle(src, G, init_kwargs=flat)
    conv = convert_checkpoint(src)
    assert conv.G.cfg.conv_clamp == 256.0 and conv.notes == {"num_fp16_res": "4"}
    assert_same_images(G, conv.G)


def test_ada_other_resample_filter_buffer_is_refused(tmp_path):
    G = source_generator()
    with torch.no_grad():
        G.synthesis.b8.conv0.resample_filter.fill_(1 / 16)
    src = tmp_path / "a.pkl"
    write_ada_pickle(src, G)
    refused(src, "b8.conv0.resample_filter.*filter", convert_checkpoint)


# --- 7. i2s safetensors files whose config or weights lie --------------------------------------


def _meta(G, **cfg):
    return {"format": "i2s-generator", "version": "1", "architecture": G.architecture,
            "config": json.dumps({**G.cfg.to_dict(), **cfg})}


def _save(path, G, state=None, **cfg):
    sd = {k: v.contiguous() for k, v in (state or G.state_dict()).items()}
    save_file(sd, str(path), metadata=_meta(G, **cfg))
    return path


@pytest.mark.parametrize("cfg", [
    {"channel_base": 2**24, "channel_max": 2**16},      # ~150 GB of conv weights
    {"w_dim": 2**30},                                    # terabytes of affine weights
    {"z_dim": 2**40},
    {"img_channels": 2**31},
    {"mapping_layers": 10**7},
    {"channel_max": 8},                                  # smaller than stored
])
def test_config_claiming_other_sizes_is_refused_before_allocating(tmp_path, cfg):
    G = source_generator()
    p = _save(tmp_path / "g.safetensors", G, **cfg)
    t0 = time.perf_counter()
    refused(p, "do not match|invalid generator config|mapping layers", i2s.load_generator)
    assert time.perf_counter() - t0 < 3.0


@pytest.mark.parametrize("cfg", [{"z_dim": 16.5}, {"resolution": "16"}, {"conv_clamp": "x"},
                                 {"mapping_lr_multiplier": float("inf")}, {"z_dim": True}])
def test_config_of_the_wrong_type_is_refused(tmp_path, cfg):
    refused(_save(tmp_path / "g.safetensors", source_generator(), **cfg),
            "invalid generator config", i2s.load_generator)


def test_scalar_stored_with_shape_1_is_refused(tmp_path):
    G = source_generator()
    sd = dict(G.state_dict())
    sd["synthesis.b8.conv0.noise_strength"] = sd["synthesis.b8.conv0.noise_strength"].reshape(1)
    p = _save(tmp_path / "g.safetensors", G, sd)
    G.load_state_dict(sd, strict=True)  # torch itself accepts it silently
    refused(p, r"noise_strength' is stored with shape \[1\]", i2s.load_generator)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused(tmp_path, value):
    G = source_generator()
    sd = dict(G.state_dict())
    sd["synthesis.b16.conv1.weight"] = sd["synthesis.b16.conv1.weight"].clone()
    sd["synthesis.b16.conv1.weight"][0, 0, 0, 0] = value
    refused(_save(tmp_path / "g.safetensors", G, sd), "b16.conv1.weight.*NaN or infinite",
            i2s.load_generator)
    src = tmp_path / "a.pkl"  # and a checkpoint with them does not convert
    G.load_state_dict(sd)
    write_ada_pickle(src, G)
    refused(src, "NaN or infinite", convert_checkpoint)


def test_integer_weights_and_truncated_files_are_refused(tmp_path):
    G = source_generator()
    sd = dict(G.state_dict())
    sd["mapping.fc0.bias"] = sd["mapping.fc0.bias"].to(torch.int32)
    refused(_save(tmp_path / "g.safetensors", G, sd), "I32", i2s.load_generator)
    p = _save(tmp_path / "h.safetensors", G)
    p.write_bytes(p.read_bytes()[:-100])
    refused(p, "safetensors", i2s.load_generator)


def test_cli_reports_a_lying_model_file_in_one_line(tmp_path, capsys):
    p = _save(tmp_path / "g.safetensors", source_generator(), w_dim=2**30)
    code, _, err = run(["generate", "--model", p, "--seed", 1, "--out", tmp_path / "o.png"],
                       capsys)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "o.png").exists()


# --- 8. the converted-model cache --------------------------------------------------------------


@pytest.fixture
def cached_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    G = source_generator()
    src = tmp_path / "ffhq.pkl"
    write_ada_pickle(src, G)
    i2s.load_generator(src)
    (cached,) = (tmp_path / "home" / "converted").iterdir()
    return G, src, cached


def _count_conversions(monkeypatch):
    import i2s.weights.load as load

    calls = []
    real = load.convert_file

    def counting(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(load, "convert_file", counting)
    return calls


def test_corrupt_cache_is_rebuilt_once(cached_checkpoint, monkeypatch, caplog):
    G, src, cached = cached_checkpoint
    cached.write_bytes(cached.read_bytes()[:200])  # truncated
    calls = _count_conversions(monkeypatch)
    with caplog.at_level("WARNING", logger="i2s"):
        assert_same_images(G, i2s.load_generator(src))
    assert len(calls) == 1 and "converting ffhq.pkl again" in caplog.text
    assert_same_images(G, i2s.load_generator(src))  # now good: no second rebuild
    assert len(calls) == 1


def test_cache_replaced_by_another_model_is_detected_and_rebuilt(cached_checkpoint,
                                                                 monkeypatch, caplog):
    G, src, cached = cached_checkpoint
    other = make_generator(resolution=16, seed=9, dim=16, channel_base=128, channel_max=16)
    i2s.save_generator(other, cached)  # a valid model file, but not this source's
    calls = _count_conversions(monkeypatch)
    with caplog.at_level("WARNING", logger="i2s"):
        assert_same_images(G, i2s.load_generator(src))
    assert len(calls) == 1 and "converted from another file" in caplog.text
    with safe_open(str(cached), framework="pt") as f:
        assert f.metadata()["source_name"] == "ffhq.pkl"


def test_unrebuildable_cache_gives_one_error(cached_checkpoint, monkeypatch):
    _, src, cached = cached_checkpoint
    cached.write_bytes(b"junk")

    def failing(*a, **k):
        raise i2s.I2SError("disk full")

    monkeypatch.setattr("i2s.weights.load.convert_file", failing)
    refused(src, "disk full", i2s.load_generator)


def test_huge_claim_in_a_checkpoint_given_as_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    src = write(tmp_path, HUGE_PICKLES["array state 2^40"][0], "evil.pkl")
    code, _, err = run(["generate", "--model", src, "--seed", 1, "--out", tmp_path / "o.png"],
                       capsys)
    assert code == 1 and err.count("\n") == 1 and "needs" in err
    assert not os.listdir(tmp_path / "home" / "converted")


# --- 9. variants of real checkpoints that load (issue 15: verified fine, kept so) --------------


@pytest.mark.parametrize("fmt", ["ada", "rosinality", "rosinality-legacy"])
def test_storages_tagged_cuda_load_on_cpu(tmp_path, fmt):
    """Tensors saved from a GPU: every storage record says 'cuda:0'; they load on the CPU."""
    G = source_generator()
    src = tmp_path / ("a.pkl" if fmt == "ada" else "r.pt")
    with storages_tagged("cuda:0"):
        if fmt == "ada":
            write_ada_pickle(src, G)
        else:
            write_rosinality(src, G, legacy=fmt.endswith("legacy"))
    raw = src.read_bytes()
    assert raw.count(b"cuda:0") >= 1 and b"cpu" not in raw
    conv = convert_checkpoint(src)
    assert all(v.device.type == "cpu" for v in conv.G.state_dict().values())
    assert_same_images(G, conv.G)


def test_float16_ada_pickle_converts_to_float32(tmp_path):
    """Weights stored as float16 (a generator saved after ``.half()``) become float32 copies
    of the stored values: the images are those of the float16 weights, within float16's
    precision of the float32 original's."""
    G = source_generator()
    G16 = source_generator().half()
    src = tmp_path / "half.pkl"
    write_ada_pickle(src, G16)
    assert b"HalfStorage" in src.read_bytes()
    conv = convert_checkpoint(src)
    sd16 = G16.state_dict()
    for k, v in conv.G.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, sd16[k].float()), k
    G_up = i2s.StyleGAN2Generator(G.cfg)
    G_up.load_state_dict({k: v.float() for k, v in sd16.items()})
    assert_same_images(G_up.eval(), conv.G)
    diff = (images(conv.G) - images(G)).abs().max().item()
    assert 0 < diff < 1e-2 * images(G).abs().max().item()  # float16 rounding, no more


@pytest.mark.parametrize("protocol", [4, 5])
@pytest.mark.parametrize("fmt", ["ada-pytorch", "ada-tf", "tf"])
def test_pickle_protocols_4_and_5_convert(tmp_path, fmt, protocol):
    """Protocol 4 frames and STACK_GLOBAL; protocol 5 stores numpy arrays (TF pickles) as
    ``numpy._core.numeric._frombuffer`` of an in-band buffer."""
    G = source_generator()
    src = tmp_path / "p.pkl"
    if fmt == "ada-pytorch":
        write_ada_pickle(src, G, protocol=protocol)
    elif fmt == "ada-tf":
        write_tf_ada_pickle(src, G, conv_clamp=None, protocol=protocol)
    else:
        write_tf_pickle(src, *tf_variables_from_i2s(G), fmap_base=G.cfg.channel_base // 2,
                        protocol=protocol)
    raw = src.read_bytes()
    assert raw[:2] == bytes([0x80, protocol])
    if protocol == 5 and fmt != "ada-pytorch":
        assert b"_frombuffer" in raw
    assert_same_images(G, convert_checkpoint(src).G)


@pytest.mark.parametrize("order", ["C", "F", "K"])
def test_protocol5_arrays_load_in_every_layout(tmp_path, order):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = {"C": a, "F": np.asfortranarray(a), "K": a.transpose(1, 0, 2)}[order]
    p = tmp_path / "a.pkl"
    p.write_bytes(pickle.dumps([x, x.astype(">f8"), np.float64(2.5)], protocol=5))
    got = load_pickle(p)
    assert all(np.array_equal(g, e) for g, e in zip(got, [x, x, 2.5], strict=True))
    assert np.dtype("f8").byteorder == "="  # numpy's shared dtype untouched


def _frombuffer(buf: bytes, shape, order="C", *extra, module="numpy._core.numeric"):
    """numpy's protocol-5 array layout: _frombuffer(buffer, dtype('f4'), shape, order)."""
    dtype = op_call(op_global("numpy", "dtype"), op_str("f4"), pickle.NEWFALSE, pickle.NEWTRUE)
    return pickle_stream(op_call(op_global(module, "_frombuffer"), buf, dtype,
                                 op_tuple(*(op_int(d) for d in shape)), op_str(order),
                                 *extra), proto=5)


FROMBUFFER = {
    "shape 2^40": (_frombuffer(op_bytes(b"\0" * 8), (2**40,)), "needs 4398046511104 bytes"),
    "numpy 1 name, short": (_frombuffer(op_bytes(b"\0" * 8), (3,),
                                        module="numpy.core.numeric"), "needs 12 bytes"),
    "negative size": (_frombuffer(op_bytes(b"\0" * 8), (-2,)), "invalid shape"),
    "order X": (_frombuffer(op_bytes(b"\0" * 8), (2,), "X"), "order"),
    "axis order": (_frombuffer(op_bytes(b"\0" * 8), (2,), "K", op_tuple(op_int(3))),
                   "permutation"),
    "str buffer": (_frombuffer(op_str("abcdefgh"), (2,)), "not bytes"),
}


@pytest.mark.parametrize("name", list(FROMBUFFER))
def test_protocol5_arrays_are_checked_against_their_data(tmp_path, name):
    data, match = FROMBUFFER[name]
    refused(write(tmp_path, data), match)


def test_big_endian_arrays_keep_their_values(tmp_path):
    """numpy pickles a dtype as dtype('f8', False, True) then its byte order: honoured, and
    numpy's shared float64 dtype is never modified."""
    x = np.linspace(-2, 3, 7).astype(">f8")
    p = tmp_path / "be.pkl"
    for protocol in (2, 3, 5):
        p.write_bytes(pickle.dumps({"x": x, "s": x[2]}, protocol=protocol))
        got = load_pickle(p)
        assert np.array_equal(got["x"], x) and got["s"] == x[2]
    assert np.dtype("f8").byteorder == "=" and np.zeros(1).dtype.isnative


def test_numpy1_module_names_load_under_numpy2(tmp_path):
    """Files written under numpy 1 name ``numpy.core.multiarray._reconstruct`` (arrays) and
    ``numpy.core.multiarray.scalar`` (scalars: StyleGAN v1's lod); numpy 2 moved them to
    ``numpy._core``. Both spellings give the same generator."""
    G = source_generator()
    new, old = tmp_path / "new.pkl", tmp_path / "old.pkl"
    for p in (new, old):
        write_tf_pickle(p, *tf_variables_from_i2s(G), fmap_base=G.cfg.channel_base // 2)
    assert use_numpy1_names(old) >= 1
    raw = old.read_bytes()
    assert b"numpy.core.multiarray\n_reconstruct" in raw and b"numpy._core" not in raw
    a, b = convert_checkpoint(new).G.state_dict(), convert_checkpoint(old).G.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert_same_images(G, convert_checkpoint(old).G)

    mapping, synth, own, kw = random_tf_stylegan1(resolution=16)
    for p in (new, old):
        write_tf_pickle(p, mapping, synth, own, version=3, synthesis_kwargs=kw)
    use_numpy1_names(old)
    assert b"numpy.core.multiarray\nscalar" in old.read_bytes()
    a, b = convert_checkpoint(new).G.state_dict(), convert_checkpoint(old).G.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    synth["lod"] = np.float32(1.0)  # the scalar is read, not only accepted
    write_tf_pickle(old, mapping, synth, own, version=3, synthesis_kwargs=kw)
    use_numpy1_names(old)
    refused(old, "lod", convert_checkpoint)


def test_training_snapshot_with_real_d_and_augment_pipe(tmp_path):
    """A training-loop snapshot: D and augment_pipe are persistent objects of their own
    classes, each with module source that would write a marker file if it ever ran. They are
    ignored; G_ema converts exactly; nothing runs."""
    G = source_generator()
    markers = [tmp_path / "pwned-d", tmp_path / "pwned-aug", tmp_path / "pwned-g"]
    D, d_kwargs = nvidia_discriminator(G.resolution)
    pipe, pipe_kwargs = nvidia_augment_pipe()
    src = tmp_path / "network-snapshot-000200.pkl"
    write_ada_pickle(src, G, module_src=MALICIOUS_SRC.format(path=str(markers[2])),
                     D=(D, d_kwargs, MALICIOUS_SRC.format(path=str(markers[0]))),
                     augment_pipe=(pipe, pipe_kwargs,
                                   MALICIOUS_SRC.format(path=str(markers[1]))))
    snapshot = load_pickle(src)
    assert snapshot["D"].class_name == "Discriminator"
    assert snapshot["augment_pipe"].class_name == "AugmentPipe"
    assert "b16.conv0.weight" in snapshot["D"].tensors()
    assert float(snapshot["augment_pipe"].tensors()["p"]) == pytest.approx(0.3)
    dst = tmp_path / "g.safetensors"
    conv = convert_file(src, dst)
    assert conv.source_format == "stylegan2-ada-pytorch"
    assert_same_images(G, i2s.load_generator(dst))
    assert not any(m.exists() for m in markers)


@pytest.mark.parametrize("fmt", ["ada-pytorch", "ada-tf", "tf", "rosinality"])
def test_64px_conversion_has_the_source_images(tmp_path, fmt):
    """A 64 px generator (five blocks, channels changing with the resolution) through each
    format: the same weights, hence the same images (TF stores mod_bias minus 1: one
    rounding)."""
    G = make_generator(resolution=64, seed=8, dim=16, channel_base=256, channel_max=16,
                       noise_strength=0.3)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
    assert [G.cfg.channels(r) for r in (4, 8, 16, 32, 64)] == [16, 16, 16, 8, 4]
    src = tmp_path / ("g.pt" if fmt == "rosinality" else "g.pkl")
    if fmt == "ada-pytorch":
        write_ada_pickle(src, G)
    elif fmt == "ada-tf":
        write_tf_ada_pickle(src, G, conv_clamp=None, num_fp16_res=0)
    elif fmt == "tf":
        write_tf_pickle(src, *tf_variables_from_i2s(G), fmap_base=G.cfg.channel_base // 2)
    else:
        write_rosinality(src, G)
    conv = convert_checkpoint(src)
    assert conv.G.cfg == G.cfg and conv.G.resolution == 64
    if fmt in ("ada-pytorch", "rosinality"):
        a, b = G.state_dict(), conv.G.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert torch.equal(images(G), images(conv.G))
    else:
        assert_same_images(G, conv.G)
