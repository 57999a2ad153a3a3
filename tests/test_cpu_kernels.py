"""The compiled CPU kernels of the folded layer (i2s.ops.cpu_kernels) against its aten path."""

import dataclasses
import logging
import os
import shutil
import time
import warnings

import pytest
import torch
import torch.nn.functional as F

import i2s
import i2s.ops.cpu_kernels as cpu_kernels
import i2s.ops.synthesis_path as synthesis_path
from i2s.ops.fir import fir_filter2d, make_fir_filter, separable_taps
from i2s.ops.folded_block import FoldedSynthesisBlock
from i2s.ops.folded_layer import fir_adjoint
from i2s.ops.layer_spec import ConvLayerSpec
from i2s.ops.modconv import demodulation_coefficients
from i2s.ops.synthesis_layer import conv_layer
from i2s.ops.synthesis_path import LayerPath, conv_layer_path
from tests.conftest import make_generator

needs_compiler = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                    reason="no C++ compiler on this machine")


@pytest.fixture
def kernels_on(monkeypatch):
    """Every folded layer takes the kernels, whatever its size."""
    monkeypatch.setattr(synthesis_path, "KERNEL_MIN_ELEMENTS", 0)
    assert cpu_kernels.load_kernels() is not None, cpu_kernels.kernel_status()


def general_fir():
    """A symmetric 4x4 filter that is not an outer product (the kernels' FIR stencil needs
    one; this takes their other path)."""
    f = make_fir_filter().clone()
    f[1:3, 1:3] += 0.02
    return f / f.sum()


def run_layer(up, noise_on, clamp, kernels, seed=0, fir=None):
    """One folded layer (with or without the kernels): output and (dL/dx, dL/ds)."""
    g = torch.Generator().manual_seed(seed)
    i, o, h = 6, 20, 7  # 20 channels: a vector remainder in the kernels' channel loops
    x = torch.randn(1, i, h, h, generator=g).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(o, i, 3, 3, generator=g)
    bias = torch.randn(o, generator=g)
    noise = 0.7 * torch.randn(1, 1, h * up, h * up, generator=g) if noise_on else None
    styles = torch.rand(1, i, generator=g) + 0.5
    x.requires_grad_(True)
    styles.requires_grad_(True)
    dcoefs = demodulation_coefficients(weight, styles)
    spec = ConvLayerSpec(weight, bias, up, make_fir_filter() if fir is None else fir, clamp)
    out = conv_layer(x, styles, dcoefs, noise, spec,
                     LayerPath.KERNELS if kernels else LayerPath.FOLDED)
    grad_out = torch.randn(out.shape, generator=g)
    grads = torch.autograd.grad(out, (x, styles), grad_out)
    return out.detach(), grads


@needs_compiler
@pytest.mark.parametrize("up,fir", [(1, None), (2, None), (2, "general")])
@pytest.mark.parametrize("noise_on", [True, False])
@pytest.mark.parametrize("clamp", [None, 0.8])
def test_kernels_match_aten_path(monkeypatch, up, fir, noise_on, clamp):
    fir = general_fir() if fir == "general" else None
    assert cpu_kernels.load_kernels() is not None
    out_ref, grads_ref = run_layer(up, noise_on, clamp, False, fir=fir)
    out, grads = run_layer(up, noise_on, clamp, True, fir=fir)
    assert out.is_contiguous(memory_format=torch.channels_last)
    if up == 1:
        assert torch.equal(out, out_ref)  # the same float operations in the same order
    else:  # the kernel path's transposed convolution has an even output size: rounding only
        torch.testing.assert_close(out, out_ref, rtol=1e-6, atol=1e-6)
    if clamp is not None:
        assert (out.abs() >= clamp).any() and (out.abs() < clamp).any()
    for got, want in zip(grads, grads_ref, strict=True):
        assert (got - want).abs().max() <= 1e-5 * want.abs().max()


@needs_compiler
def test_generator_through_kernels(kernels_on, monkeypatch):
    G = make_generator(resolution=32, channel_base=512, channel_max=32)
    ws = G.w_avg.expand(1, G.num_ws, -1) + 0.3 * torch.randn(1, G.num_ws, G.w_dim)
    ws.requires_grad_(True)
    img = G.synthesis(ws)
    (grad,) = torch.autograd.grad(img.square().sum(), ws)
    monkeypatch.setattr(synthesis_path, "KERNEL_MIN_ELEMENTS", 2**62)
    img_ref = G.synthesis(ws)
    (grad_ref,) = torch.autograd.grad(img_ref.square().sum(), ws)
    torch.testing.assert_close(img, img_ref, rtol=1e-5, atol=1e-6)
    assert (grad - grad_ref).abs().max() <= 1e-5 * grad_ref.abs().max()


def block_generator(conv_clamp=None, zero_style=None, fir=None):
    """32 px, 32 channels: block b32 folds (32*32 > 9*32) and runs as one FoldedSynthesisBlock
    when the kernels are on."""
    G = make_generator(resolution=32, channel_base=512, channel_max=32)
    if conv_clamp is not None:
        state = G.state_dict()
        G = i2s.StyleGAN2Generator(dataclasses.replace(G.cfg, conv_clamp=conv_clamp))
        G.load_state_dict(state)
        G.eval().requires_grad_(False)
    if zero_style is not None:  # that layer's style 3 is exactly 0 for every w
        with torch.no_grad():
            getattr(G.synthesis.b32, zero_style).affine.weight[3] = 0.0
            getattr(G.synthesis.b32, zero_style).affine.bias[3] = 0.0
    if fir is not None:
        G.synthesis.b32.conv0.resample_filter.copy_(fir)
    return G


def block_run(G, ws, use_rgb=True, use_x=False, noise_mode="const"):
    """Image (or block outputs) and dL/dws for a fixed random output gradient."""
    ws = ws.detach().requires_grad_(True)
    g = torch.Generator().manual_seed(5)
    gen = torch.Generator().manual_seed(7)
    if use_x:  # the last block's feature output, with or without the image
        x = img = None
        idx = 0
        for res in G.synthesis.block_resolutions:
            block = getattr(G.synthesis, f"b{res}")
            x, img = block(x, img, ws[:, idx:idx + block.num_conv + 1], noise_mode=noise_mode,
                           generator=gen)
            idx += block.num_conv
        outs = [x] + ([img] if use_rgb else [])
    else:
        outs = [G.synthesis(ws, noise_mode=noise_mode, generator=gen)]
    loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs)
    (grad,) = torch.autograd.grad(loss, ws)
    return [o.detach() for o in outs], grad


@needs_compiler
@pytest.mark.parametrize("case", ["plain", "clamp", "zero_style0", "zero_style1", "no_noise",
                                  "random_noise", "features_only", "features_and_image",
                                  "general_fir"])
def test_folded_block_matches_separate_layers(monkeypatch, case):
    G = block_generator(conv_clamp=0.6 if case == "clamp" else None,
                        zero_style={"zero_style0": "conv0", "zero_style1": "conv1"}.get(case),
                        fir=general_fir() if case == "general_fir" else None)
    torch.manual_seed(1)
    ws = G.w_avg.expand(1, G.num_ws, -1) + 0.5 * torch.randn(1, G.num_ws, G.w_dim)
    kw = dict(noise_mode={"no_noise": "none", "random_noise": "random"}.get(case, "const"),
              use_x=case.startswith("features"), use_rgb=case != "features_only")
    monkeypatch.setattr(synthesis_path, "KERNEL_MIN_ELEMENTS", 2**62)
    b32 = G.synthesis.b32
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, o))
             for name, m in (("conv0", b32.conv0), ("conv1", b32.conv1), ("torgb", b32.torgb))]
    outs_ref, grad_ref = block_run(G, ws, **kw)
    for h in hooks:
        h.remove()
    if case == "clamp":  # the clamp bites in every layer of the block
        assert all((o.abs() >= 0.6).any() and (o.abs() < 0.6).any() for o in seen.values())
    monkeypatch.setattr(synthesis_path, "KERNEL_MIN_ELEMENTS", 0)
    calls = []
    apply = FoldedSynthesisBlock.apply
    monkeypatch.setattr(FoldedSynthesisBlock, "apply", lambda *a: calls.append(1) or apply(*a))
    outs, grad = block_run(G, ws, **kw)
    assert calls == [1]  # b32 ran as one block
    for o, o_ref in zip(outs, outs_ref, strict=True):
        torch.testing.assert_close(o, o_ref, rtol=1e-5, atol=1e-6)
    assert (grad - grad_ref).abs().max() <= 2e-5 * grad_ref.abs().max()


@needs_compiler
def test_every_small_block_size_and_odd_channel_counts(monkeypatch):
    """Blocks of 16, 32 and 64 px with 8, 8 and 4 channels (no compile-time channel count, no
    vector-width multiple) all run as folded blocks and match the aten path."""
    G = make_generator(resolution=64, channel_base=256, channel_max=8)
    torch.manual_seed(2)
    ws = G.w_avg.expand(1, G.num_ws, -1) + 0.5 * torch.randn(1, G.num_ws, G.w_dim)
    monkeypatch.setattr(synthesis_path, "KERNEL_MIN_ELEMENTS", 2**62)
    outs_ref, grad_ref = block_run(G, ws)
    monkeypatch.setattr(synthesis_path, "KERNEL_MIN_ELEMENTS", 0)
    calls = []
    apply = FoldedSynthesisBlock.apply
    monkeypatch.setattr(FoldedSynthesisBlock, "apply", lambda *a: calls.append(1) or apply(*a))
    outs, grad = block_run(G, ws)
    assert len(calls) == 3
    torch.testing.assert_close(outs[0], outs_ref[0], rtol=1e-5, atol=1e-6)
    assert (grad - grad_ref).abs().max() <= 2e-5 * grad_ref.abs().max()


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "_modules", {})
    monkeypatch.setattr(cpu_kernels, "_failures", {})
    monkeypatch.setenv("I2S_CPU_KERNELS", "0")
    assert cpu_kernels.load_kernels() is None
    assert cpu_kernels.kernel_status() == "aten path (I2S_CPU_KERNELS=0)"
    assert conv_layer_path(batch=1, resolution=1024, out_channels=8, trains=False,
                           device=torch.device("cpu"), dtype=torch.float32) is LayerPath.FOLDED
    assert cpu_kernels.load_raster_kernel() is None        # the renderer's kernel too


def test_build_failure_warns_once_and_layer_still_works(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "_modules", {})
    monkeypatch.setattr(cpu_kernels, "_failures", {})
    monkeypatch.setattr(synthesis_path, "KERNEL_MIN_ELEMENTS", 0)
    monkeypatch.delenv("I2S_CPU_KERNELS", raising=False)
    monkeypatch.setattr(cpu_kernels.sys, "platform", "linux")

    def broken_build(source):
        raise RuntimeError("Error building extension 'x'\nc++: command not found")

    monkeypatch.setattr(cpu_kernels, "_build", broken_build)
    kw = dict(batch=1, resolution=64, out_channels=20, trains=False,
              device=torch.device("cpu"), dtype=torch.float32)
    with pytest.warns(RuntimeWarning, match="c\\+\\+: command not found"):
        assert conv_layer_path(**kw) is LayerPath.FOLDED
    assert cpu_kernels.kernel_status() == "aten path (RuntimeError: c++: command not found)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        assert conv_layer_path(**kw) is LayerPath.FOLDED
    out, _ = run_layer(2, True, None, False)
    assert torch.isfinite(out).all()


@needs_compiler
def test_large_layers_take_the_streaming_store_path_correctly():
    """From 32 MB on (with AVX-512) the FIR kernels write with streaming stores; the small
    tests above never get there."""
    k = cpu_kernels.load_kernels()
    g = torch.Generator().manual_seed(0)
    c, r = 16, 1024  # 64 MB activations
    cl = torch.channels_last
    fir = make_fir_filter()
    kv, kh = separable_taps(fir, 4.0)
    t = torch.randn(1, c, r + 2, r + 2, generator=g)
    t[:, :, -1] = 0.0
    t[:, :, :, -1] = 0.0
    t = t.contiguous(memory_format=cl)
    bias = torch.randn(c, generator=g)
    noise = torch.randn(r * r, generator=g)
    a = k.fir_noise_lrelu(t, kv, kh, bias, noise, 1.5, 0.2, -1.0)
    want = fir_filter2d(t[:, :, :-1, :-1], fir, pad=1, gain=4.0, bias=bias)
    want = F.leaky_relu(want + noise.reshape(1, 1, r, r) * 1.5, 0.2)
    torch.testing.assert_close(a, want, rtol=1e-5, atol=1e-5)
    grad_a = torch.randn(a.shape, generator=g).contiguous(memory_format=cl)
    grad_t, sums = k.noise_lrelu_fir_backward(grad_a, a, noise, 1.5, 0.2, -1.0, kv, kh, True)
    grad_t_ref, sums_ref = k.noise_lrelu_backward(grad_a, a, noise, 1.5, 0.2, -1.0, None, None,
                                                  True)
    torch.testing.assert_close(grad_t, fir_adjoint(grad_t_ref, fir), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sums, sums_ref, rtol=1e-5, atol=1e-3)


def test_stale_build_lock_is_removed(tmp_path, monkeypatch):
    from torch.utils import cpp_extension

    monkeypatch.setattr(cpp_extension, "_get_build_directory", lambda name, verbose: tmp_path)
    lock = tmp_path / "lock"
    lock.write_text("")
    cpu_kernels._remove_stale_lock(cpp_extension, "x")
    assert lock.exists()  # a fresh lock belongs to a build in progress
    old = time.time() - cpu_kernels.STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    with pytest.warns(RuntimeWarning, match="stale build lock"):
        cpu_kernels._remove_stale_lock(cpp_extension, "x")
    assert not lock.exists()


def test_a_build_is_announced_once_and_a_cached_one_is_not(tmp_path, monkeypatch, caplog):
    from torch.utils import cpp_extension

    loaded = []
    monkeypatch.setattr(cpp_extension, "_get_build_directory", lambda name, verbose: tmp_path)
    monkeypatch.setattr(cpp_extension, "load", lambda name, **kw: loaded.append(name) or name)
    with caplog.at_level(logging.INFO, logger="i2s"):
        name = cpu_kernels._build(cpu_kernels.SOURCE)
    assert loaded == [name] and name.startswith("i2s_noise_lrelu_")
    assert "compiling i2s's CPU kernels" in caplog.text
    assert "I2S_CPU_KERNELS=0" in caplog.text
    caplog.clear()
    (tmp_path / f"{name}.so").write_bytes(b"")  # what a finished build leaves
    with caplog.at_level(logging.INFO, logger="i2s"):
        cpu_kernels._build(cpu_kernels.SOURCE)
    assert caplog.text == ""
