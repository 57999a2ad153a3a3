"""The web app's API with FastAPI's test client, on a tiny model: embedding jobs with live
progress, files, edits, cancel, restart listing, and hostile inputs."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

import i2s

fastapi = pytest.importorskip("fastapi", reason="the web extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from i2s.web.app import create_app  # noqa: E402


def png_bytes(size=(16, 16), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def client(tmp_path, model_file):
    G = i2s.load_generator(model_file)
    app = create_app(G, tmp_path / "data", max_upload_bytes=200_000, max_pixels=1_000_000)
    with TestClient(app) as c:
        yield c


def wait(client, job_id, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        j = client.get(f"/api/jobs/{job_id}").json()
        if j["status"] in ("done", "failed", "cancelled", "interrupted"):
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def embed(client, n=1, steps=4, **form):
    files = [("images", (f"face{i}.png", png_bytes(seed=i), "image/png")) for i in range(n)]
    r = client.post("/api/embed", files=files,
                    data={"recipe": "paper", "loss": "mse", "steps": str(steps), **form})
    assert r.status_code == 200, r.text
    return [j["id"] for j in r.json()["jobs"]]


def test_embed_progress_files_and_edits(client):
    assert client.get("/api/health").json()["resolution"] == 16
    assert "<h1>i2s</h1>" in client.get("/").text
    a, b = embed(client, n=2)
    events = client.get(f"/api/jobs/{a}/events").text
    states = [json.loads(line[6:]) for line in events.splitlines() if line.startswith("data: ")]
    assert states[-1]["status"] == "done" and states[-1]["step"] == 4
    jb = wait(client, b)
    assert jb["status"] == "done" and jb["psnr"] is not None
    for name in ("latent.npz", "comparison.png", "metrics.json", "reconstruction.png"):
        r = client.get(f"/api/jobs/{a}/files/{name}")
        assert r.status_code == 200 and len(r.content) > 50
    w = np.load(io.BytesIO(client.get(f"/api/jobs/{a}/files/latent.npz").content))["w"]
    assert w.shape == (6, 32)
    r = client.post("/api/edit/morph", json={"a": a, "b": b, "t": 1.0})
    assert r.headers["content-type"] == "image/png"
    recon = client.get(f"/api/jobs/{a}/files/reconstruction.png").content
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))),
                          np.asarray(Image.open(io.BytesIO(recon))))  # t = 1 is A itself
    for kind, body in (("crossover", {"content": a, "style": b, "layers": "3-"}),
                       ("expression", {"target": a, "neutral": a, "expressive": b}),
                       ("direction", {"latent": a, "direction": "sefa:1", "strength": 3})):
        r = client.post(f"/api/edit/{kind}", json=body)
        assert r.status_code == 200 and r.content[:4] == b"\x89PNG", (kind, r.text)
    kept = [client.post("/api/edit/expression", json={
        "target": a, "neutral": a, "expressive": b, "threshold": t}).headers["X-I2S-Kept-Layers"]
        for t in (0.0, 1e9)]
    assert kept == [",".join(map(str, range(6))), ""]     # every layer moved; none did
    listed = client.get("/api/jobs").json()["jobs"]
    assert {j["id"] for j in listed} == {a, b}


def test_cancel_delete_and_restart_listing(tmp_path, model_file):
    G = i2s.load_generator(model_file)
    with TestClient(create_app(G, tmp_path / "d")) as c:
        (slow,) = embed(c, steps=100_000)
        (queued,) = embed(c, steps=5)
        assert c.delete(f"/api/jobs/{queued}").json()["status"] == "cancelled"
        assert c.delete(f"/api/jobs/{slow}").status_code == 200
        assert wait(c, slow)["status"] == "cancelled"
        (ok,) = embed(c, steps=3)
        assert wait(c, ok)["status"] == "done"
        assert c.delete(f"/api/jobs/{ok}").status_code == 200     # a finished job: deleted
        assert c.get(f"/api/jobs/{ok}").status_code == 404
        (kept,) = embed(c, steps=3)
        wait(c, kept)
    with TestClient(create_app(G, tmp_path / "d")) as c:             # a restart
        ids = {j["id"]: j["status"] for j in c.get("/api/jobs").json()["jobs"]}
        assert ids[kept] == "done" and ok not in ids
        assert c.get(f"/api/jobs/{kept}/files/latent.npz").status_code == 200


@pytest.mark.parametrize("path", [
    "/api/jobs/../../etc/passwd", "/api/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/jobs/0123/files/latent.npz", "/api/jobs/" + "a" * 32,
    "/api/jobs/" + "a" * 32 + "/files/..%2f..%2fjob.json"])
def test_unknown_ids_and_traversal_are_404(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert "error" in r.json() or r.status_code == 404


def test_bad_uploads_and_requests(client):
    big = png_bytes(size=(400, 400))
    bomb = io.BytesIO()
    Image.new("1", (5000, 5000)).save(bomb, format="PNG")   # 25 MP claimed, tiny file
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    cases = [
        ([("images", ("x.png", b"not an image", "image/png"))], {}, 400, "not an image"),
        ([("images", ("x.png", b"A" * 300_000, "image/png"))], {}, 413, "larger than"),
        ([("images", ("big.png", big, "image/png"))], {}, 413, "larger than"),
        ([("images", ("bomb.png", bomb.getvalue(), "image/png"))], {}, 413, "pixels"),
        ([("images", ("x.gif", gif.getvalue(), "image/gif"))], {}, 400, "GIF images"),
        ([("images", ("x.png", png_bytes(), "image/png"))], {"recipe": "nope"}, 400,
         "settings"),
        ([("images", ("x.png", png_bytes(), "image/png"))], {"loss": "mse+vgg"}, 400,
         "VGG-16"),
        ([("images", ("x.png", png_bytes(), "image/png"))], {"steps": "zero"}, 422, "steps"),
    ]
    for files, data, code, msg in cases:
        r = client.post("/api/embed", files=files, data=data)
        assert r.status_code == code and msg in r.json()["error"], (msg, r.text)
    assert client.post("/api/embed").status_code == 422
    r = client.post("/api/edit/morph", json={"a": "x", "b": "y"})
    assert r.status_code == 404 and "no job" in r.json()["error"]
    (a,) = embed(client, steps=2)
    wait(client, a)
    r = client.post("/api/edit/morph", json={"a": a, "b": a, "t": 2})
    assert r.status_code == 400 and "t must be" in r.json()["error"]
    for body in (f'{{"a": "{a}", "b": "{a}", "t": NaN}}',
                 f'{{"latent": "{a}", "strength": Infinity}}'):
        kind = "morph" if '"t"' in body else "direction"
        r = client.post(f"/api/edit/{kind}", content=body,
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "finite" in r.json()["error"], r.text
    r = client.post("/api/edit/direction", json={"latent": a, "direction": "nope"})
    assert r.status_code == 400 and "unknown direction" in r.json()["error"]
    assert client.get(f"/api/jobs/{a}/files/job.json").status_code == 404
    assert client.get("/api/jobs").status_code == 200        # GET changes nothing


def test_concurrent_jobs_all_finish(client):
    ids = embed(client, n=6, steps=3)
    states = [wait(client, i)["status"] for i in ids]
    assert states == ["done"] * 6


def test_preview_and_curve(client):
    (a,) = embed(client, steps=30)
    j = wait(client, a)
    assert j["previews"] >= 1 and 2 <= len(j["curve"]) <= 31
    assert j["curve"][-1] == pytest.approx(j["psnr"], abs=1e-3)
    r = client.get(f"/api/jobs/{a}/preview.png")
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    assert r.headers["cache-control"] == "no-store"


def test_faces_align_choice_and_paste_back(client, tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    from i2s.faces import identity_available
    if not identity_available():
        pytest.skip("dlib / face-recognition-models not installed")
    buf = io.BytesIO()
    Image.fromarray(skimage_data.astronaut()).save(buf, format="JPEG", quality=85)
    photo = buf.getvalue()  # under the test server's 200 KB limit
    found = client.post("/api/faces", files={"image": ("a.jpg", photo)}).json()
    assert found["width"] == 512 and len(found["faces"]) == 2
    assert found["faces"][0]["score"] > 1.0 > found["faces"][1]["score"]
    r = client.post("/api/embed", files=[("images", ("a.jpg", photo, "image/jpeg"))],
                    data={"recipe": "paper", "loss": "mse", "steps": "3", "align": "true",
                          "face_index": "5"})
    (bad,) = [j["id"] for j in r.json()["jobs"]]
    assert wait(client, bad)["status"] == "failed"
    assert "face index 5" in client.get(f"/api/jobs/{bad}").json()["error"]
    r = client.post("/api/embed", files=[("images", ("a.jpg", photo, "image/jpeg"))],
                    data={"recipe": "paper", "loss": "mse", "steps": "3", "align": "true"})
    (a,) = [j["id"] for j in r.json()["jobs"]]
    assert wait(client, a)["status"] == "done"
    pasted = client.post("/api/edit/direction", json={"latent": a, "direction": "sefa:0",
                                                      "strength": 2, "paste": True})
    assert pasted.status_code == 200
    assert Image.open(io.BytesIO(pasted.content)).size == (512, 512)
    (plain,) = embed(client, steps=2)
    wait(client, plain)
    r = client.post("/api/edit/morph", json={"a": plain, "b": a, "paste": True})
    assert r.status_code == 409 and "not aligned" in r.json()["error"]


def test_3d_mesh_inversion_and_swap(tmp_path, model_file):
    from pathlib import Path
    G, G3 = i2s.load_generator(model_file), i2s.load_generator("demo-3d")
    mesh = Path(__file__).resolve().parents[1] / "examples" / "3d" / "seed000" / "mesh.glb"
    with TestClient(create_app(G, tmp_path / "d", G3=G3)) as c:
        assert c.get("/api/health").json()["model_3d"] == "demo-3d"
        ids = []
        for _ in range(2):
            r = c.post("/api/embed3d", files={"mesh": ("chair.glb", mesh.read_bytes())},
                       data={"steps": "3", "orbit": "2"})
            assert r.status_code == 200, r.text
            ids.append(r.json()["jobs"][0]["id"])
        for i in ids:
            j = wait(c, i, timeout=300)
            assert j["status"] == "done" and j["kind"] == "embed-3d", j
        glb = c.get(f"/api/jobs/{ids[0]}/files/mesh.glb").content
        assert glb[:4] == b"glTF"
        assert c.get(f"/api/jobs/{ids[0]}/files/views.png").content[:4] == b"\x89PNG"
        swapped = c.post("/api/edit3d/swap", json={"a": ids[0], "b": ids[1]})
        assert swapped.status_code == 200 and swapped.content[:4] == b"glTF"
        r = c.post("/api/embed3d", files={"mesh": ("x.stl", b"solid x")})
        assert r.status_code == 400 and "OBJ" not in r.json()["error"] and ".glb" in \
            r.json()["error"]
        before = set((tmp_path / "d" / "jobs").iterdir())
        r = c.post("/api/embed3d", files={"mesh": ("x.obj", b"this is no mesh")})
        assert r.status_code == 400 and set((tmp_path / "d" / "jobs").iterdir()) == before
        views = sorted((mesh.parent / "views").glob("*.png"))[:3]
        cams = json.loads((mesh.parent / "cameras.json").read_text())
        cams = cams[:3] if isinstance(cams, list) else {**cams, "views": cams["views"][:3]}
        files = [("views", (p.name, p.read_bytes(), "image/png")) for p in views]
        r = c.post("/api/embed3d", files=[*files, ("cameras", ("c.json", json.dumps(cams)))],
                   data={"steps": "3"})
        assert r.status_code == 200, r.text
        assert wait(c, r.json()["jobs"][0]["id"], timeout=300)["status"] == "done"
        r = c.post("/api/embed3d", files=[("mesh", ("chair.glb", mesh.read_bytes())),
                                          *files])
        assert r.status_code == 400 and "not both" in r.json()["error"]
        (a2,) = embed(c, steps=2)
        wait(c, a2)
        r = c.post("/api/edit3d/swap", json={"a": a2, "b": ids[1]})
        assert r.status_code == 409 and "no 3D latent" in r.json()["error"]
    with TestClient(create_app(G, tmp_path / "e")) as c:
        r = c.post("/api/embed3d", files={"mesh": ("chair.glb", mesh.read_bytes())})
        assert r.status_code == 404 and "no 3D model" in r.json()["error"]


def test_edits_of_a_noise_fitted_latent_use_its_maps(client, tmp_path, model_file):
    """As on the CLI: an i2s++ job's edits render with its fitted noise maps."""
    import torch

    from i2s.embedding.latents import load_latent
    from i2s.embedding.noise_maps import synthesis_with_noise
    from i2s.media.images import to_uint8

    (a,) = embed(client, recipe="i2s++", steps=3)
    assert wait(client, a)["status"] == "done"
    folder = next((tmp_path / "data").rglob("latent.npz")).parent
    lat = load_latent(folder / "latent.npz")
    assert lat.noise
    r = client.post("/api/edit/morph", json={"a": a, "b": a, "t": 1.0})
    assert r.status_code == 200, r.text
    got = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    G = i2s.load_generator(model_file)
    w = torch.from_numpy(lat.w)[None]
    with torch.no_grad():
        want = to_uint8(synthesis_with_noise(G, w, {k: torch.from_numpy(v)
                                                   for k, v in lat.noise.items()}))[0]
        plain = to_uint8(G.synthesis(w, noise_mode="const"))[0]
    assert np.array_equal(got, want) and not np.array_equal(got, plain)
