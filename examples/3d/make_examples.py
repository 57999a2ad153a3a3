"""Regenerate the held-out teacher objects of this folder (seeds chosen for variety among
0-59; demo-3d was trained on other latents only): python examples/3d/make_examples.py"""

from pathlib import Path

from i2s.demo.examples3d import pick_varied_seeds, write_teacher_example

if __name__ == "__main__":
    here = Path(__file__).parent
    for seed in pick_varied_seeds(range(0, 60), 8):
        print("wrote", write_teacher_example(seed, here / f"seed{seed:03d}"))
