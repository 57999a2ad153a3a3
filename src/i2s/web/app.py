"""The web app: one page and a JSON API (``/api``, OpenAPI at ``/docs``) over the library.

Guarantees, as the command line's: inputs are checked where they enter (upload size, pixel
count, image type), every file is addressed by a generated id (no path from a request ever
reaches the file system), nothing from an upload is executed, no GET changes state, and every
error is JSON with one message: ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from PIL import Image
from pydantic import BaseModel, Field

from i2s._version import __version__
from i2s.directions import apply_direction, resolve_direction
from i2s.edits import crossover, morph, parse_layers, transfer_expression
from i2s.embedding.config import EmbedConfig
from i2s.embedding.latents import LatentFile, load_latent
from i2s.embedding.noise_maps import synthesis_with_noise
from i2s.embedding3d import Embed3DConfig, embed_3d, load_image_target, load_mesh_target
from i2s.embedding3d.edits import swap_texture
from i2s.embedding3d.outputs import write_shape_files
from i2s.errors import I2SError
from i2s.faces import AlignTransform, paste_back
from i2s.faces.detect import FaceChoice, detect_faces
from i2s.get3d.export import load_latent_3d
from i2s.media.images import read_rgb, to_uint8
from i2s.models import render
from i2s.resources import i2s_home, package_path
from i2s.web.jobs import TERMINAL, JobStore

IMAGE_TYPES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}
RESULT_FILES = ("latent.npz", "target.png", "reconstruction.png", "comparison.png",
                "metrics.json", "mesh.glb", "views.png", "cameras.json")
MESH_TYPES = (".obj", ".glb", ".ply")


Finite = Annotated[float, Field(allow_inf_nan=False)]   # NaN/inf refused with HTTP 422


class SwapRequest(BaseModel):
    a: str                          # geometry from this 3D job
    b: str                          # texture latents from this one


class MorphRequest(BaseModel):
    a: str
    b: str
    t: Finite = 0.5
    paste: bool = False          # paste the result back into the photo of the first job


class CrossoverRequest(BaseModel):
    content: str
    style: str
    layers: str | None = None
    paste: bool = False          # paste the result back into the photo of the first job


class ExpressionRequest(BaseModel):
    target: str
    neutral: str
    expressive: str
    strength: Finite = 10.0
    threshold: Finite = 1.0      # layers whose difference is below this are dropped (paper: 1)
    normalise: str = "unit"
    paste: bool = False          # paste the result back into the photo of the first job


class DirectionRequest(BaseModel):
    latent: str
    direction: str = "sefa:0"
    strength: Finite = 5.0
    layers: str | None = None
    paste: bool = False          # paste the result back into the photo of the first job


def create_app(G, data: str | Path | None = None, workers: int = 1,
               max_upload_bytes: int = 20 * 2**20, max_pixels: int = 40_000_000,
               G3=None) -> FastAPI:
    """The app for generator ``G`` (and ``G3``, a GET3D generator for the 3D endpoints; both
    loaded once by the caller), keeping jobs under ``data`` (default ``$I2S_HOME/web``)."""
    store = JobStore(Path(data) if data else i2s_home() / "web", G, workers)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        store.shutdown()

    app = FastAPI(title="i2s", version=__version__, lifespan=lifespan,
                  description="Embed images into a StyleGAN's latent space and edit them.")
    app.state.store = store

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(I2SError)
    async def _i2s_error(request: Request, e: I2SError) -> JSONResponse:
        return error(400, str(e))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, e: HTTPException) -> JSONResponse:
        return error(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", []))
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")

    def job_or_404(job_id: str):
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id[:40]!r}")
        return job

    def latent_file(job_id: str) -> LatentFile:
        job = job_or_404(job_id)
        folder = store.result_folder(job) if job.status == "done" else None
        if folder is None:
            raise HTTPException(409, f"job {job_id} has no latent (status {job.status})")
        return load_latent(folder / "latent.npz")

    def code(lat: LatentFile) -> torch.Tensor:
        return torch.from_numpy(lat.w).to(G.w_avg.device)

    def latent_of(job_id: str) -> torch.Tensor:
        return code(latent_file(job_id))

    def png(ws: torch.Tensor, paste_into: str | None = None,
            maps: dict[str, np.ndarray] | None = None) -> Response:
        """The image of ``ws`` [1, num_ws, w_dim], rendered with ``maps`` (the first input's
        fitted noise maps, recipes i2s++ and projector, as the CLI's edits do) when given,
        else with the model's noise; with ``paste_into`` (an aligned job) pasted back into
        that job's original photo (face and hair, multi-band blending)."""
        if maps:
            dev = G.w_avg.device
            with torch.no_grad():
                image = to_uint8(synthesis_with_noise(
                    G, ws.to(dev), {k: torch.from_numpy(v).to(dev) for k, v in maps.items()}))[0]
        else:
            image = render(G, ws)[0]
        if paste_into is not None:
            job = job_or_404(paste_into)
            folder = store.result_folder(job)
            if folder is None or not (folder / "transform.json").is_file():
                raise HTTPException(409, f"job {paste_into} was not aligned: nothing to paste "
                                         "back into (embed with align)")
            photo = next(store.folder(job.id).glob("input.*"))
            image, _ = paste_back(image, read_rgb(photo),
                                  AlignTransform.load(folder / "transform.json"))
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        return Response(buf.getvalue(), media_type="image/png")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return package_path("web", "static", "index.html").read_text()

    @app.get("/static/vendor/model-viewer.min.js", include_in_schema=False)
    def model_viewer() -> FileResponse:
        return FileResponse(package_path("web", "static", "vendor", "model-viewer.min.js"),
                            media_type="text/javascript")

    @app.get("/api/health")
    def health() -> dict:
        return {"version": __version__, "model": getattr(G, "source", None),
                "resolution": G.resolution, "num_ws": G.num_ws, "jobs": len(store.jobs),
                "model_3d": None if G3 is None else getattr(G3, "source", None)}

    @app.post("/api/embed")
    async def embed(images: Annotated[list[UploadFile], File()],
                    recipe: Annotated[str, Form()] = "fast",
                    loss: Annotated[str, Form()] = "mse",
                    steps: Annotated[int | None, Form()] = None,
                    align: Annotated[bool, Form()] = False,
                    face_index: Annotated[int, Form(ge=0, le=100)] = 0,
                    min_face_score: Annotated[float | None, Form()] = None) -> dict:
        """Queue one embedding per uploaded image; returns the jobs. With ``align`` the
        ``face_index``-th largest face scoring at least ``min_face_score`` is aligned first
        (``POST /api/faces`` lists them)."""
        try:
            config = EmbedConfig(recipe=recipe, loss=loss,
                                 **({"steps": steps} if steps is not None else {}))
        except (I2SError, TypeError, ValueError) as e:
            raise HTTPException(400, f"settings: {e}") from None
        if config.needs_vgg:
            raise HTTPException(400, "this server embeds without VGG-16 weights: use loss "
                                     "mse (or install the weights and restart)")
        accepted = []
        for upload in images:
            body = await _read_limited(upload, max_upload_bytes)
            ext = _check_image(body, upload.filename or "upload", max_pixels)
            folder = store.new_folder()
            path = folder / f"input{ext}"
            path.write_bytes(body)
            face = FaceChoice(index=face_index, min_score=min_face_score) if align else False
            accepted.append(store.submit(path, (upload.filename or "upload")[:200], config,
                                         face).to_dict())
        return {"jobs": accepted}

    @app.post("/api/faces")
    async def faces(image: Annotated[UploadFile, File()]) -> dict:
        """The faces dlib finds in an upload, largest first: box, score, index (for
        ``face_index``). Nothing is kept."""
        body = await _read_limited(image, max_upload_bytes)
        _check_image(body, image.filename or "upload", max_pixels)
        rgb = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
        found = detect_faces(rgb)
        return {"width": rgb.shape[1], "height": rgb.shape[0], "faces": [
            {"index": i, "box": list(f.box), "score": round(f.score, 3)}
            for i, f in enumerate(found)]}

    def g3d():
        if G3 is None:
            raise HTTPException(404, "this server has no 3D model (i2s serve --model-3d)")
        return G3

    @app.post("/api/embed3d")
    async def embed3d(mesh: Annotated[UploadFile | None, File()] = None,
                      views: Annotated[list[UploadFile] | None, File()] = None,
                      cameras: Annotated[UploadFile | None, File()] = None,
                      steps: Annotated[int, Form(ge=1, le=5000)] = 100,
                      strategy: Annotated[str, Form()] = "staged-joint",
                      orbit: Annotated[int, Form(ge=1, le=64)] = 8) -> dict:
        """Invert an object into the 3D model's two branches: a ``mesh`` (OBJ, GLB or PLY
        with colours; rendered from ``orbit`` views), or ``views`` (square images, RGBA or on
        a uniform background) with their ``cameras`` (a cameras.json, one view per image;
        without it the cameras are estimated). The job's files are ``mesh.glb``,
        ``views.png``, ``latent.npz``, ``metrics.json`` and ``cameras.json``."""
        model = g3d()
        if (mesh is None) == (not views):
            raise HTTPException(400, "give a mesh or views, not both")
        try:
            config = Embed3DConfig(steps=steps, strategy=strategy)
        except (I2SError, TypeError, ValueError) as e:
            raise HTTPException(400, f"settings: {e}") from None
        folder = store.new_folder()
        try:
            if mesh is not None:
                name = (mesh.filename or "mesh.glb")[:200]
                ext = Path(name).suffix.lower()
                if ext not in MESH_TYPES:
                    raise HTTPException(400, f"{name[:60]}: a mesh must be "
                                             f"{', '.join(MESH_TYPES)}")
                path = folder / f"input{ext}"
                path.write_bytes(await _read_limited(mesh, max_upload_bytes))
                target = load_mesh_target(path, config.resolution, orbit,
                                          fit=0.9 * model.shape_length)
            else:
                name = f"{len(views)} views"
                paths = []
                for i, v in enumerate(views):
                    body = await _read_limited(v, max_upload_bytes)
                    ext = _check_image(body, v.filename or f"view{i}", max_pixels)
                    paths.append(folder / f"view{i:03d}{ext}")
                    paths[-1].write_bytes(body)
                cams = None
                if cameras is not None:
                    cams = folder / "cameras.json"
                    cams.write_bytes(await _read_limited(cameras, 2**20))
                target = load_image_target(paths, config.resolution, cameras=cams)
        except (I2SError, HTTPException):
            shutil.rmtree(folder, ignore_errors=True)
            raise

        def work(job) -> None:
            result = embed_3d(model, target, config, callback=lambda s: store.report(
                job, s.step, s.steps, s.loss, s.psnr))
            result.save(folder / "out3d", model=model, atlas=False, novel_views=0)

        job = store.submit_work(folder, name, "embed-3d",
                                {**config.to_dict(), "input": "mesh" if mesh else "views"},
                                config.steps, work)
        return {"jobs": [job.to_dict()]}

    @app.post("/api/edit3d/swap", response_class=Response)
    def swap3d(r: SwapRequest) -> Response:
        """A's geometry with B's texture latents, as a binary glTF (model/gltf-binary)."""
        model = g3d()
        lat = []
        for job_id in (r.a, r.b):
            job = job_or_404(job_id)
            folder = store.result_folder(job) if job.kind == "embed-3d" else None
            if folder is None or not (folder / "latent.npz").is_file():
                raise HTTPException(409, f"job {job_id} has no 3D latent")
            lat.append(load_latent_3d(folder / "latent.npz", model))
        ws_geo, ws_tex = swap_texture(*[(torch.from_numpy(x.ws_geo)[None],
                                         torch.from_numpy(x.ws_tex)[None]) for x in lat])
        with tempfile.TemporaryDirectory() as tmp:
            write_shape_files(Path(tmp) / "s", model, ws_geo, ws_tex, views=1, resolution=64,
                              atlas=False)
            glb = (Path(tmp) / "s" / "mesh.glb").read_bytes()
        return Response(glb, media_type="model/gltf-binary")

    @app.get("/api/jobs")
    def jobs() -> dict:
        return {"jobs": [j.to_dict() for j in sorted(store.jobs.values(),
                                                     key=lambda j: j.created)]}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict:
        return job_or_404(job_id).to_dict()

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str) -> StreamingResponse:
        """Server-sent events: the job's state every half second until it ends."""
        job_or_404(job_id)

        async def stream():
            while True:
                j = store.get(job_id)
                if j is None:
                    break
                yield f"data: {json.dumps(j.to_dict())}\n\n"
                if j.status in TERMINAL:
                    break
                await asyncio.sleep(0.5)
        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.get("/api/jobs/{job_id}/preview.png")
    def preview(job_id: str) -> FileResponse:
        """The reconstruction as the optimisation stands (updated about once a second)."""
        job_or_404(job_id)
        path = store.folder(job_id) / "preview.png"
        if not path.is_file():
            raise HTTPException(404, "no preview yet")
        return FileResponse(path, media_type="image/png",
                            headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/files/{name}")
    def file(job_id: str, name: str) -> FileResponse:
        job = job_or_404(job_id)
        if name not in RESULT_FILES:
            raise HTTPException(404, f"no file {name[:40]!r}: one of {', '.join(RESULT_FILES)}")
        folder = store.result_folder(job)
        if folder is None or not (folder / name).is_file():
            raise HTTPException(404, f"{name} is not there (job {job.status})")
        return FileResponse(folder / name, filename=name)

    @app.delete("/api/jobs/{job_id}")
    def delete(job_id: str) -> dict:
        job = store.cancel(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id[:40]!r}")
        return job.to_dict()

    @app.post("/api/edit/morph", response_class=Response)
    def edit_morph(r: MorphRequest) -> Response:
        if not 0 <= r.t <= 1:
            raise HTTPException(400, "t must be in [0, 1]")
        a = latent_file(r.a)
        return png(morph(code(a), latent_of(r.b), r.t)[None], r.a if r.paste else None,
                   a.noise)

    @app.post("/api/edit/crossover", response_class=Response)
    def edit_crossover(r: CrossoverRequest) -> Response:
        layers = None if r.layers is None else parse_layers(r.layers, G.num_ws)
        content = latent_file(r.content)
        return png(crossover(code(content), latent_of(r.style), layers)[None],
                   r.content if r.paste else None, content.noise)

    @app.post("/api/edit/expression", response_class=Response)
    def edit_expression(r: ExpressionRequest) -> Response:
        """The target with the neutral → expressive difference added; the header
        ``X-I2S-Kept-Layers`` lists the layers kept after cleaning (empty: nothing moved)."""
        target = latent_file(r.target)
        res = transfer_expression(code(target), latent_of(r.neutral),
                                  latent_of(r.expressive), r.strength, threshold=r.threshold,
                                  normalise=r.normalise)
        out = png(res.latent[None], r.target if r.paste else None, target.noise)
        out.headers["X-I2S-Kept-Layers"] = ",".join(map(str, res.kept_layers))
        return out

    @app.post("/api/edit/direction", response_class=Response)
    def edit_direction(r: DirectionRequest) -> Response:
        d = resolve_direction(G, r.direction)
        layers = d.layers if r.layers is None else parse_layers(r.layers, G.num_ws)
        lat = latent_file(r.latent)
        return png(apply_direction(code(lat), d.vector, r.strength, layers)[None],
                   r.latent if r.paste else None, lat.noise)

    return app


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes; HTTP 413 past ``limit``."""
    body = await upload.read(limit + 1)
    if len(body) > limit:
        raise HTTPException(413, f"{(upload.filename or 'upload')[:60]}: larger than "
                                 f"{_size(limit)}")
    return body


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def _check_image(body: bytes, name: str, max_pixels: int) -> str:
    """The file extension for an accepted upload; HTTP 400/413 otherwise. The header is read
    before any pixel: a decompression bomb is refused by its claimed size."""
    try:
        with Image.open(io.BytesIO(body)) as im:
            kind, (w, h) = im.format, im.size
    except Exception:  # Pillow raises many types for non-images
        raise HTTPException(400, f"{name[:60]}: not an image") from None
    if kind not in IMAGE_TYPES:
        raise HTTPException(400, f"{name[:60]}: {kind} images are not accepted (PNG, JPEG, "
                                 "WebP, BMP)")
    if w * h > max_pixels:
        raise HTTPException(413, f"{name[:60]}: {w}x{h} is more than {max_pixels} pixels")
    return IMAGE_TYPES[kind]
