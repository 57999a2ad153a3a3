"""Conversion time and parity error per source format for 1024 px FFHQ-sized models.

Writes a random StyleGAN2 generator (FFHQ 1024 configuration, 30M parameters) in each
StyleGAN2 source format with the test suite's format writers, converts it with
``i2s.weights.convert``, and prints the time and the largest pixel difference between the source and
the converted generator. Also times the conversion of a random StyleGAN (v1) FFHQ-sized TF
pickle (its numerical parity is checked against a NumPy reference in the tests).

    python benchmarks/convert_time.py      (run from the repository root)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import i2s  # noqa: E402
from i2s.weights.convert import convert_file  # noqa: E402
from tests.checkpoint_writers import (  # noqa: E402
    random_tf_stylegan1,
    tf_variables_from_i2s,
    write_ada_pickle,
    write_rosinality,
    write_tf_pickle,
)


def main() -> None:
    torch.manual_seed(0)
    G = i2s.StyleGAN2Generator(i2s.StyleGAN2Config(resolution=1024, conv_clamp=256)).eval()
    with torch.no_grad():
        for m in G.modules():
            if hasattr(m, "noise_strength"):
                m.noise_strength.fill_(0.1)
        G.mapping.w_avg.copy_(G.mapping(torch.randn(256, 512))[:, 0].mean(0))
        ws = G.mapping(torch.randn(1, 512))
        ref = G.synthesis(ws)
    print(f"model: StyleGAN2 1024 px, {sum(p.numel() for p in G.parameters()) / 1e6:.1f}M "
          f"parameters; torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        writers = {
            "stylegan2-ada-pytorch": lambda p: write_ada_pickle(p, G),
            "stylegan2-tf": lambda p: write_tf_pickle(p, *tf_variables_from_i2s(G),
                                                       fmap_base=16384),
            "rosinality": lambda p: write_rosinality(p, G),
        }
        for name, write in writers.items():
            src = d / f"{name}.pkl"
            write(src)
            t = time.perf_counter()
            conv = convert_file(src, d / f"{name}.safetensors")
            seconds = time.perf_counter() - t
            G2 = i2s.load_generator(d / f"{name}.safetensors")
            with torch.no_grad():
                err = (G2.synthesis(ws) - ref).abs().max().item()
            print(f"{name:>22}: {src.stat().st_size / 2**20:6.1f} MiB source, converted and "
                  f"written in {seconds:5.2f} s, max |image difference| {err:.2e} "
                  f"({conv.source_format})")
        mapping, synth, own, kw = random_tf_stylegan1(resolution=1024, fmap_base=8192,
                                                      fmap_max=512, dim=512, mapping_layers=8)
        src = d / "stylegan1-tf.pkl"
        write_tf_pickle(src, mapping, synth, own, version=3, synthesis_kwargs=kw)
        t = time.perf_counter()
        conv = convert_file(src, d / "stylegan1.safetensors")
        seconds = time.perf_counter() - t
        n = sum(p.numel() for p in conv.G.parameters())
        print(f"{'stylegan1-tf':>22}: {src.stat().st_size / 2**20:6.1f} MiB source, converted and "
              f"written in {seconds:5.2f} s ({n / 1e6:.1f}M parameters)")


if __name__ == "__main__":
    main()
