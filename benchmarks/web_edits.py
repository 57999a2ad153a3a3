"""How fast the web app's edits render (issue: web app, "each rendered in well under a
second on demo"): the shipped ``demo`` generator served on 127.0.0.1, three bundled example
faces embedded through the API (few steps: the edit's cost does not depend on how well the
latents fit), then every edit endpoint timed as the page calls it when a slider moves.

The first direction request of a kind computes that kind's directions (SeFa/GANSpace, then
cached on disk); it is reported apart from the steady state.

    python benchmarks/web_edits.py [--model demo] [--repeats 20] [--steps 20]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time

import httpx
import uvicorn

import i2s
from i2s.provenance import describe_machine
from i2s.web.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    a = parser.parse_args()
    G = i2s.load_generator(a.model)
    with tempfile.TemporaryDirectory() as data:
        server = uvicorn.Server(uvicorn.Config(create_app(G, data), host="127.0.0.1",
                                               port=_free_port(), log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{server.config.port}"
        with httpx.Client(base_url=url, timeout=300) as c:
            files = [("images", (f"face_seed10{i}.png",
                                 i2s.example_path("faces", f"face_seed10{i}.png").read_bytes()))
                     for i in range(3)]
            r = c.post("/api/embed", files=files, data={"steps": str(a.steps), "align": "true"})
            jobs = [j["id"] for j in r.json()["jobs"]]
            for j in jobs:
                while c.get(f"/api/jobs/{j}").json()["status"] not in ("done", "failed"):
                    time.sleep(0.2)
            A, B, C = jobs
            edits = {
                "morph": ("morph", lambda k: {"a": A, "b": B, "t": (k % 20) / 19}),
                "crossover": ("crossover", lambda k: {"content": A, "style": B,
                                                      "layers": f"{1 + k % (G.num_ws - 1)}-"}),
                "expression": ("expression", lambda k: {"target": A, "neutral": B,
                                                        "expressive": C, "strength": k % 20}),
                "direction sefa:0": ("direction", lambda k: {"latent": A, "direction": "sefa:0",
                                                             "strength": k % 20 - 10}),
                "direction ganspace:0": ("direction",
                                         lambda k: {"latent": A, "direction": "ganspace:0",
                                                    "strength": k % 20 - 10}),
                "morph + paste-back": ("morph", lambda k: {"a": A, "b": B, "t": (k % 20) / 19,
                                                           "paste": True}),
            }
            print(f"machine: {describe_machine()}")
            print(f"model {a.model} ({G.resolution} px, {G.num_ws} ws); {a.repeats} requests "
                  "per edit after one warm-up")
            for name, (kind, payload) in edits.items():
                t0 = time.perf_counter()
                r = c.post(f"/api/edit/{kind}", json=payload(0))
                first = time.perf_counter() - t0
                if r.status_code != 200:
                    print(f"  {name}: HTTP {r.status_code} {r.text[:80]}")
                    continue
                times = []
                for k in range(1, a.repeats + 1):
                    t0 = time.perf_counter()
                    r = c.post(f"/api/edit/{kind}", json=payload(k))
                    r.raise_for_status()
                    times.append(time.perf_counter() - t0)
                times.sort()
                print(f"  {name:22s} first {1000 * first:7.1f} ms; then p50 "
                      f"{1000 * statistics.median(times):6.1f} ms, p95 "
                      f"{1000 * times[int(0.95 * (len(times) - 1))]:6.1f} ms, max "
                      f"{1000 * times[-1]:6.1f} ms")
        server.should_exit = True
        thread.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
