"""Dataset throughput (issue: embed-dataset): images/s of ``i2s embed-dataset`` on ``demo``
(64 px) for 1 and 2 processes (``torchrun``, gloo) and batch sizes 1, 4 and 16, and where
the time goes.

The 16 bundled example faces are embedded with MSE (VGG-16 weights cannot be downloaded
everywhere; the loss changes the cost per step, not the scaling) for ``--steps`` Adam steps.
Each configuration is a fresh command in a fresh output folder, as a user runs it:

* ``1 process``: ``python -m i2s embed-dataset`` with OMP_NUM_THREADS=T (default: every core)
* ``2 processes``: ``torchrun --nproc-per-node 2 -m i2s embed-dataset`` (1 thread each)

Reported per configuration: the wall time of the command, the run's own time and images/s
(``summary.json``: from the plan to the merge, without start-up and model loading), the
optimisation's share of it (the sum of each batch's ``seconds`` over the processes' busy
time), and start-up = wall - run.

    python benchmarks/dataset_throughput.py [--steps 200] [--batch-sizes 1,4,16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import i2s
from i2s.provenance import describe_machine


def run(nproc: int, batch: int, steps: int, src: Path, out: Path, threads: int) -> dict:
    args = ["embed-dataset", str(src), "--out", str(out), "--model", "demo", "--loss", "mse",
            "--steps", str(steps), "--batch-size", str(batch), "-q"]
    env = dict(os.environ)
    if nproc == 1:
        cmd = [sys.executable, "-m", "i2s", *args]
        env["OMP_NUM_THREADS"] = str(threads)
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
               "-m", "i2s", *args]
        env.pop("OMP_NUM_THREADS", None)   # torchrun sets 1 per process
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    optimisation = 0.0
    seen_batches = set()
    for line in (out / "manifest.jsonl").read_text().splitlines():
        r = json.loads(line)
        key = (r["rank"], r["seconds"])          # the images of a batch share its seconds
        if key not in seen_batches:
            seen_batches.add(key)
            optimisation += r["seconds"]
    busy = sum(r["seconds"] for r in summary["ranks"])
    return {"wall": wall, "run": summary["seconds"], "ips": summary["images_per_second"],
            "optimisation_share": optimisation / busy if busy else float("nan"),
            "per_rank": [r["images_per_second"] for r in summary["ranks"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads of the one-process runs")
    a = parser.parse_args()
    batches = [int(b) for b in a.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "faces"
        shutil.copytree(i2s.example_path("faces"), src)
        n = len(list(src.glob("*.png")))
        print(f"machine: {describe_machine()}")
        print(f"demo (64 px), {n} images, MSE, {a.steps} Adam steps each; one process with "
              f"{a.threads} thread(s), two processes (torchrun, gloo) with 1 thread each")
        print(f"{'processes':>9} {'batch':>5} {'wall s':>7} {'run s':>6} {'images/s':>8} "
              f"{'optimising':>10} {'start-up s':>10}  per process images/s")
        results = {}
        for batch in batches:
            for nproc in (1, 2):
                r = run(nproc, batch, a.steps, src, Path(tmp) / f"out-{nproc}-{batch}",
                        a.threads)
                results[nproc, batch] = r
                print(f"{nproc:>9} {batch:>5} {r['wall']:7.1f} {r['run']:6.1f} "
                      f"{r['ips']:8.3f} {100 * r['optimisation_share']:9.0f}% "
                      f"{r['wall'] - r['run']:10.1f}  "
                      + ", ".join(f"{x:.3f}" for x in r["per_rank"]), flush=True)
        for batch in batches:
            one, two = results[1, batch], results[2, batch]
            print(f"batch {batch}: 2 processes / 1 process = {two['ips'] / one['ips']:.2f}x "
                  f"images/s ({one['wall'] / two['wall']:.2f}x in wall time)")


if __name__ == "__main__":
    main()
