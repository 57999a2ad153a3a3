"""The compiled CPU kernels of the folded layer (i2s.fused_cpu) against its aten path."""

import shutil

import pytest
import torch

import i2s.fused_cpu as fused_cpu
from i2s.fir import make_fir_filter
from i2s.folded_layer import FoldedSynthesisLayer
from i2s.layers import LRELU_GAIN, LRELU_SLOPE
from i2s.modconv import demodulation_coefficients
from tests.conftest import make_generator

needs_compiler = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                    reason="no C++ compiler on this machine")


@pytest.fixture
def kernels_on(monkeypatch):
    """Every folded layer takes the kernels, whatever its size."""
    monkeypatch.setattr(fused_cpu, "MIN_ELEMENTS", 0)
    assert fused_cpu.fused_kernels() is not None, fused_cpu.fused_status()


def run_layer(up, noise_on, clamp, seed=0):
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
    out = FoldedSynthesisLayer.apply(x, styles, dcoefs, weight, bias, noise, up,
                                     make_fir_filter(), LRELU_GAIN, LRELU_SLOPE, clamp)
    grad_out = torch.randn(out.shape, generator=g)
    grads = torch.autograd.grad(out, (x, styles), grad_out)
    return out.detach(), grads


@needs_compiler
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("noise_on", [True, False])
@pytest.mark.parametrize("clamp", [None, 0.8])
def test_kernels_match_aten_path(monkeypatch, up, noise_on, clamp):
    monkeypatch.setattr(fused_cpu, "MIN_ELEMENTS", 2**62)
    out_ref, grads_ref = run_layer(up, noise_on, clamp)
    monkeypatch.setattr(fused_cpu, "MIN_ELEMENTS", 0)
    out, grads = run_layer(up, noise_on, clamp)
    assert fused_cpu.fused_kernels() is not None
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, out_ref)  # the same float operations in the same order
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
    monkeypatch.setattr(fused_cpu, "MIN_ELEMENTS", 2**62)
    img_ref = G.synthesis(ws)
    (grad_ref,) = torch.autograd.grad(img_ref.square().sum(), ws)
    assert torch.equal(img, img_ref)
    assert (grad - grad_ref).abs().max() <= 1e-5 * grad_ref.abs().max()


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setattr(fused_cpu, "_module", None)
    monkeypatch.setattr(fused_cpu, "_failure", None)
    monkeypatch.setenv("I2S_FUSED_CPU", "0")
    assert fused_cpu.fused_kernels() is None
    assert fused_cpu.fused_status() == "aten path (I2S_FUSED_CPU=0)"
    assert not fused_cpu.use_fused(torch.zeros(1, 8, 1024, 1024))


def test_build_failure_warns_once_and_layer_still_works(monkeypatch):
    monkeypatch.setattr(fused_cpu, "_module", None)
    monkeypatch.setattr(fused_cpu, "_failure", None)
    monkeypatch.setattr(fused_cpu, "MIN_ELEMENTS", 0)
    monkeypatch.delenv("I2S_FUSED_CPU", raising=False)
    monkeypatch.setattr(fused_cpu.sys, "platform", "linux")

    def broken_build():
        raise RuntimeError("Error building extension 'x'\nc++: command not found")

    monkeypatch.setattr(fused_cpu, "_build", broken_build)
    with pytest.warns(RuntimeWarning, match="c\\+\\+: command not found"):
        out, _ = run_layer(2, True, None)
    assert fused_cpu.fused_status() == "aten path (RuntimeError: c++: command not found)"
    monkeypatch.setattr(fused_cpu, "MIN_ELEMENTS", 2**62)
    out_ref, _ = run_layer(2, True, None)
    assert torch.equal(out, out_ref)
