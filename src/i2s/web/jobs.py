"""Embedding jobs of the web app: a queue with a bounded number of running jobs, progress,
cancellation, and job folders that survive a restart (``<data>/jobs/<id>/job.json``)."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from i2s.embedding.config import EmbedConfig
from i2s.embedding.files import embed_files
from i2s.embedding.result import StepInfo
from i2s.errors import I2SError
from i2s.faces.detect import FaceChoice
from i2s.media.files import write_json_atomic
from i2s.media.images import save_image, to_uint8

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
CURVE_POINTS = 200     # the PSNR curve keeps about this many points
PREVIEW_SECONDS = 1.0  # the current reconstruction is written at most this often
TERMINAL = ("done", "failed", "cancelled", "interrupted")


class Cancelled(Exception):
    """A job was cancelled while it ran."""


@dataclass
class Job:
    """One embedding of one uploaded image."""

    id: str
    image: str                      # the upload's original file name (display only)
    settings: dict
    kind: str = "embed"             # "embed" (an image) or "embed-3d" (views or a mesh)
    status: str = "queued"          # queued, running, done, failed, cancelled, interrupted
    step: int = 0
    steps: int = 0
    loss: float | None = None
    psnr: float | None = None
    curve: list[float] = field(default_factory=list)  # PSNR every CURVE_EVERY steps
    previews: int = 0               # how many times preview.png was written
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eta_seconds"] = self.eta()
        return d

    def eta(self) -> float | None:
        if self.status != "running" or not self.started or not self.step or not self.steps:
            return None
        per_step = (time.time() - self.started) / self.step
        return round(per_step * (self.steps - self.step), 1)


class JobStore:
    """Jobs under ``data/jobs/``; ``workers`` run at once (1 on a CPU: embedding uses every
    core). The generator is loaded once by the caller and shared."""

    def __init__(self, data: Path, G, workers: int = 1) -> None:
        self.root = Path(data) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.G = G
        self.jobs: dict[str, Job] = {}
        self.cancel_flags: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="i2s-job")
        self._load_existing()

    # -- persistence -----------------------------------------------------------------------
    def _load_existing(self) -> None:
        for folder in sorted(self.root.iterdir()):
            meta = folder / "job.json"
            if not (JOB_ID.match(folder.name) and meta.is_file()):
                continue
            try:
                job = Job(**json.loads(meta.read_text()))
            except (ValueError, TypeError):
                continue
            if job.status not in TERMINAL:
                job.status, job.error = "interrupted", "the server stopped while it ran"
            self.jobs[job.id] = job

    def _save(self, job: Job) -> None:
        write_json_atomic(self.root / job.id / "job.json", asdict(job))

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    # -- jobs ------------------------------------------------------------------------------
    def submit(self, image_path: Path, name: str, config: EmbedConfig,
               aligned: bool | FaceChoice) -> Job:
        """Queue the embedding of ``image_path`` (already inside the job's folder);
        ``aligned``: FFHQ-align a face first (a :class:`FaceChoice` says which)."""
        face = aligned.to_dict() if isinstance(aligned, FaceChoice) else bool(aligned)
        folder = image_path.parent

        def work(job: Job) -> None:
            done = embed_files(self.G, [str(image_path)], folder / "out", config,
                               aligned=aligned, progress=self._progress(job))
            if done.failed:
                raise I2SError(done.failed[0][1])

        return self.submit_work(folder, name, "embed", {**config.to_dict(), "align": face},
                                config.steps, work)

    def submit_work(self, folder: Path, name: str, kind: str, settings: dict, steps: int,
                    work: Callable[[Job], None]) -> Job:
        """Queue ``work(job)`` for a job in ``folder``; the work reports its progress with
        :meth:`report` (which raises :class:`Cancelled` once the job is cancelled)."""
        job = Job(folder.name, name, settings, kind=kind, steps=steps)
        with self.lock:
            self.jobs[job.id] = job
            self.cancel_flags[job.id] = threading.Event()
        self._save(job)
        self.pool.submit(self._run, job, work)
        return job

    def report(self, job: Job, step: int, steps: int, loss: float, psnr: float) -> None:
        """Progress of a running job (``psnr`` NaN in phases without colour: kept as it was);
        every ``steps // CURVE_POINTS`` steps a point of its PSNR curve."""
        if self.cancel_flags[job.id].is_set():
            raise Cancelled
        job.step, job.steps, job.loss = step, steps, loss
        job.psnr = psnr if psnr == psnr else job.psnr
        if job.psnr is not None and step % max(1, steps // CURVE_POINTS) == 0:
            job.curve.append(round(job.psnr, 3))

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        if self.cancel_flags[job.id].is_set():
            return
        job.status, job.started = "running", time.time()
        self._save(job)
        try:
            work(job)
            job.status = "done"
        except Cancelled:
            job.status = "cancelled"
        except I2SError as e:
            job.status, job.error = "failed", str(e).replace(str(self.root), "<data>")
        except Exception as e:  # a bug must not kill the worker; the job says what happened
            job.status, job.error = "failed", f"internal error: {type(e).__name__}: {e}"
        job.finished = time.time()
        self._save(job)

    def new_folder(self) -> Path:
        folder = self.root / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id) if JOB_ID.match(job_id or "") else None

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; a finished one is deleted with its files."""
        job = self.get(job_id)
        if job is None:
            return None
        if job.status in TERMINAL:
            with self.lock:
                self.jobs.pop(job_id, None)
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
            return job
        self.cancel_flags[job_id].set()
        if job.status == "queued":
            job.status = "cancelled"
            self._save(job)
        return job

    def _progress(self, job: Job) -> Callable[[str, int], Callable[[StepInfo], None]]:
        """The embedding's progress factory: :meth:`report` each step, and the current
        reconstruction as ``preview.png`` at most every :data:`PREVIEW_SECONDS`."""
        preview = self.folder(job.id) / "preview.png"
        last = [0.0]

        def factory(desc: str, steps: int):
            def step(s: StepInfo) -> None:
                self.report(job, s.step, steps, float(s.loss.mean()), float(s.psnr.mean()))
                now = time.monotonic()
                if now - last[0] >= PREVIEW_SECONDS or s.step == s.steps:
                    last[0] = now
                    save_image(preview, to_uint8(s.image[:1])[0])
                    job.previews += 1

            step.close = lambda: None  # type: ignore[attr-defined]
            return step
        return factory

    def result_folder(self, job: Job) -> Path | None:
        """The result's folder of a job (``out/<stem>/``; ``out3d/`` for a 3D one)."""
        if job.kind == "embed-3d":
            out3d = self.folder(job.id) / "out3d"
            return out3d if out3d.is_dir() else None
        out = self.folder(job.id) / "out"
        found = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")] \
            if out.is_dir() else []
        return found[0] if found else None

    def shutdown(self) -> None:
        for flag in self.cancel_flags.values():
            flag.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
