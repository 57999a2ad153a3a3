"""Time one W+ embedding step and compare it with the machine's FLOP floor.

One step = synthesis forward + backward to the latent, MSE + VGG-16 perceptual loss at 256 px
(conv1_1, conv1_2, conv3_2, conv4_2; target features cached), Adam update: the inner loop of
``i2s.embed``, timed through its callback. FFHQ channel configuration (channel_base 32768,
channel_max 512, 8 mapping layers), random weights (same cost as trained ones).

Prints seconds per step (best and median), peak memory, the FLOPs of one step
(``torch.utils.flop_counter``; difference of a 2-step and a 1-step run, counted on the aten
path because the counter cannot see inside the compiled kernels of ``i2s.ops.cpu_kernels``),
the measured dense 3x3-conv throughput of this machine, and the ratio step time / (FLOPs /
throughput). ``I2S_CPU_KERNELS=0`` times the aten path instead.

    python benchmarks/embed_step.py                 # 256 and 1024 px on the CPU
    python benchmarks/embed_step.py --device cuda --resolutions 1024
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

import i2s
import i2s.ops.synthesis_path as synthesis_path
from i2s.models.vgg16 import VGG16Features
from i2s.ops.cpu_allocator import keep_freed_memory
from i2s.ops.cpu_kernels import kernel_status
from i2s.provenance import describe_machine, run_record


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def conv_throughput(device: torch.device, repeats: int = 7) -> float:
    """Sustained dense 3x3-conv throughput (GFLOP/s): the median of ``repeats`` timed forward
    passes per representative layer shape (channels-last, float32), best shape."""
    best = 0.0
    for c, r in ((256, 128), (512, 64), (128, 256)):
        x = torch.randn(1, c, r, r, device=device).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c, c, 3, 3, device=device)
        flops = 2 * 9 * c * c * r * r
        F.conv2d(x, w, padding=1)
        times = []
        for _ in range(repeats):
            _sync(device)
            t = time.perf_counter()
            F.conv2d(x, w, padding=1)
            _sync(device)
            times.append(time.perf_counter() - t)
        best = max(best, flops / sorted(times)[repeats // 2] / 1e9)
    return best


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                        transposed, _output_padding, _groups, output_mask, out_shape=None,
                        **kwargs) -> int:
    """FLOPs of ``aten.convolution_backward``: each requested input or weight gradient costs
    as much as the forward convolution. (torch's own formula counts a grouped weight
    gradient as if the convolution were dense, C^2 instead of C for a depthwise one; the
    per-channel sums of :mod:`i2s.ops.folded_layer` are such gradients.)"""
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


FLOP_FORMULAS = {torch.ops.aten.convolution_backward: conv_backward_flops}


def setup(resolution: int, device: torch.device):
    torch.manual_seed(0)
    G = i2s.StyleGAN2Generator(i2s.StyleGAN2Config(resolution=resolution)).to(device)
    G.eval().requires_grad_(False)
    vgg = VGG16Features().to(device).eval().requires_grad_(False)
    target = torch.rand(1, 3, resolution, resolution, device=device) * 2 - 1
    return G, vgg, target


def measure(resolution: int, device: torch.device, steps: int, warmup: int) -> dict:
    if device.type == "cpu":
        keep_freed_memory()
    # Throughput in the same process, right before the steps: the VM's speed drifts, and the
    # ratio should compare like with like.
    gflops = conv_throughput(device)
    G, vgg, target = setup(resolution, device)
    stamps: list[float] = []

    def tick(_):
        _sync(device)
        stamps.append(time.perf_counter())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    start = time.perf_counter()
    i2s.embed(G, target, steps=warmup + steps, vgg=vgg, callback=tick)
    times = [b - a for a, b in zip([start] + stamps[:-1], stamps, strict=True)][warmup:]
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
        peak_kind = "GPU max_memory_allocated"
    else:  # before the FLOP-counting runs below, which take the aten path
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_kind = "process peak RSS"
    # FLOPs are counted on the aten path: the compiled kernels of i2s.ops.cpu_kernels do part
    # of the same arithmetic (ToRGB gradients, channel sums) where the counter cannot see it.
    flops = []
    threshold, synthesis_path.KERNEL_MIN_ELEMENTS = synthesis_path.KERNEL_MIN_ELEMENTS, 2**62
    for n in (1, 2):
        with FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS) as fc:
            i2s.embed(G, target, steps=n, vgg=vgg)
        flops.append(fc.get_total_flops())
    synthesis_path.KERNEL_MIN_ELEMENTS = threshold
    times.sort()
    return {"resolution": resolution, "device": str(device), "steps_timed": steps,
            "throughput_gflops": gflops,
            "seconds_per_step_best": times[0], "seconds_per_step_median": times[len(times) // 2],
            "gflop_per_step": (flops[1] - flops[0]) / 1e9, "peak_mib": peak,
            "peak_kind": peak_kind}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=7, help="timed steps per resolution")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.child:
        print(json.dumps(measure(args.child, device, args.steps, args.warmup)))
        return
    print(f"machine: {describe_machine()}")
    if device.type == "cpu":
        print(f"large layers: {kernel_status()}")
    if device.type == "cuda":
        print(f"gpu: {torch.cuda.get_device_name(device)}")
    print("throughput: dense 3x3 conv, fp32, median of 7 runs per layer shape, best shape, "
          "measured in each resolution's process just before its steps")
    rows = []
    for res in args.resolutions:
        # A fresh process per resolution, so that peak memory is that resolution's own.
        cmd = [sys.executable, __file__, "--child", str(res), "--device", args.device,
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        floor = r["gflop_per_step"] / r["throughput_gflops"]
        r.update(floor_seconds=floor, ratio_to_floor=r["seconds_per_step_median"] / floor)
        rows.append(r)
        print(f"{res:>5} px: {r['seconds_per_step_median']:.3f} s/step median "
              f"({r['seconds_per_step_best']:.3f} best), {r['gflop_per_step']:.1f} GFLOP/step, "
              f"throughput {r['throughput_gflops']:.1f} GFLOP/s, floor {floor:.3f} s, "
              f"ratio {r['ratio_to_floor']:.2f}x, {r['peak_kind']} {r['peak_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**run_record(device=device), "kernels": kernel_status(), "rows": rows},
                      f, indent=2)


if __name__ == "__main__":
    main()
