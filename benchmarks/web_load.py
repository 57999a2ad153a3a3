"""Load test of the web app (issue: web app): N concurrent uploads and status polling against
a tiny generator, on 127.0.0.1 only.

The generator is a small StyleGAN2 with random weights built here (a test fixture, not a
model). N clients each upload one image at the same moment, then poll their job's status
until it ends; the script reports how many jobs finished or were refused (and why), the
p50/p95/max latency of ``GET /api/jobs/{id}``, the wall time and the server process's peak
memory (this process: server and clients share it).

    python benchmarks/web_load.py [--clients 20] [--steps 20] [--jobs 1]
"""

from __future__ import annotations

import argparse
import io
import resource
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import torch
import uvicorn
from PIL import Image

import i2s
from i2s.provenance import describe_machine
from i2s.web.app import create_app


def tiny_generator() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = i2s.StyleGAN2Config(resolution=32, z_dim=64, w_dim=64, channel_base=1024,
                              channel_max=64, mapping_layers=2)
    return i2s.StyleGAN2Generator(cfg).eval().requires_grad_(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1, help="jobs the server runs at once")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        app = create_app(tiny_generator(), data, workers=a.jobs)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        latencies: list[float] = []
        lock = threading.Lock()
        start = threading.Barrier(a.clients)

        def client(i: int) -> tuple[str, str]:
            rng = np.random.default_rng(i)
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (48, 48, 3), np.uint8)).save(buf, "PNG")
            with httpx.Client(base_url=url, timeout=60) as c:
                start.wait()
                r = c.post("/api/embed", files={"images": (f"{i}.png", buf.getvalue())},
                           data={"recipe": "paper", "loss": "mse", "steps": str(a.steps)})
                if r.status_code != 200:
                    return "refused", r.json().get("error", r.text)
                job = r.json()["jobs"][0]["id"]
                while True:
                    t0 = time.perf_counter()
                    s = c.get(f"/api/jobs/{job}").json()
                    with lock:
                        latencies.append(time.perf_counter() - t0)
                    if s["status"] in ("done", "failed", "cancelled", "interrupted"):
                        return s["status"], s.get("error") or ""
                    time.sleep(0.1)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.clients) as pool:
            outcomes = list(pool.map(client, range(a.clients)))
        wall = time.perf_counter() - t0
        server.should_exit = True
        thread.join(timeout=10)
    counts: dict[str, int] = {}
    for status, _ in outcomes:
        counts[status] = counts.get(status, 0) + 1
    lat = sorted(latencies)
    p = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {describe_machine()}")
    print(f"{a.clients} concurrent uploads, {a.steps} steps each, {a.jobs} job(s) at once: "
          f"{counts} in {wall:.1f} s")
    print(f"status requests: {len(lat)}; latency p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms, "
          f"max {1000 * lat[-1]:.1f} ms (mean {1000 * statistics.mean(lat):.1f} ms)")
    print(f"peak memory of the process (server + clients): {peak:.0f} MB")
    for status, why in outcomes:
        if status != "done":
            print(f"  {status}: {why}")


if __name__ == "__main__":
    main()
