"""Embed a whole dataset on one or many processes (``torchrun``), resumably.

Rank 0 lists the dataset, hashes every file and drops the images already embedded with the
same settings (by content hash and settings hash, from the logs of earlier runs); the rest is
dealt out round-robin in name order (rank r takes images r, r + W, r + 2W, ...), so the plan
depends only on what is left and on the number of processes W, which may change between
runs. Each rank embeds its share ``config.batch_for(R)`` images at a time, writes the same
per-image folders as ``i2s embed`` and logs every image as it finishes
(:mod:`i2s.dataset.manifest`). Rank 0 then merges ``manifest.jsonl`` and ``summary.json``.

Each image's random stream comes from its content hash (:attr:`Source.image_id`), and the
images of a batch are optimised independently, so an image's result does not depend on the
rank, batch or number of processes -- for Adam recipes; L-BFGS (the ``fast`` recipe) shares
one line search per batch, and ``noise_mode random`` one noise stream per batch.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from i2s.dataset.manifest import (
    LOG_FOLDER,
    RankLog,
    Record,
    is_done,
    latest,
    read_logs,
    write_manifest,
    write_summary,
)
from i2s.dataset.ranks import Ranks
from i2s.dataset.sources import Source, find_sources, with_hash
from i2s.embedding.config import EmbedConfig
from i2s.embedding.files import ProgressFactory, input_image
from i2s.embedding.optimisation import embed, load_lpips_metric
from i2s.embedding.stages import total_steps
from i2s.errors import I2SError
from i2s.faces import FaceChoice, FaceModelsMissing
from i2s.media.files import write_json_atomic
from i2s.media.images import to_tensor
from i2s.weights.load import load_vgg16

METRICS = ("psnr", "lpips", "identity_distance")


@dataclass
class DatasetProgress:
    """Where the whole run stands (rank 0's view, after each of its batches)."""

    done: int                 # images embedded by this run, all ranks
    failed: int               # images that failed in this run
    todo: int                 # images this run set out to embed
    seconds: float            # since the work began
    images_per_second: float  # done / seconds
    eta_seconds: float | None  # the rest at that rate


@dataclass
class DatasetRun:
    """What :func:`embed_dataset` did (the whole run on rank 0; this rank's share elsewhere)."""

    run: str
    total: int = 0             # images in the dataset
    done: int = 0              # done with these settings, this run or earlier
    failed: int = 0
    pending: int = 0           # neither: a rank died or the run was stopped
    skipped: int = 0           # already done when the run started
    embedded: int = 0          # embedded by this run
    seconds: float = 0.0
    images_per_second: float = 0.0
    ranks: list[dict] = field(default_factory=list)
    rank_problem: str | None = None   # gloo's reason when a rank did not reach the end
    manifest: Path | None = None
    summary: Path | None = None

    @property
    def complete(self) -> bool:
        """Every image of the dataset done and every rank at the end."""
        return self.done == self.total and self.rank_problem is None


def settings_hash(G, config: EmbedConfig, aligned: bool | FaceChoice) -> str:
    """What decides an image's result: the model's weights, the embedding settings (not the
    batch size) and the alignment."""
    settings = {k: v for k, v in config.to_dict().items() if k != "batch_size"}
    align = aligned.to_dict() if isinstance(aligned, FaceChoice) else bool(aligned)
    blob = json.dumps({"model": G.sha256 or "", "settings": settings, "align": align,
                       "resolution": G.resolution}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def embed_dataset(G, src: str | Path, out: str | Path, config: EmbedConfig, *,
                  aligned: bool | FaceChoice = False, ranks: Ranks | None = None,
                  vgg_weights: str | None = None, lpips_weights: str | None = None,
                  progress: ProgressFactory | None = None,
                  on_progress: Callable[[DatasetProgress], None] | None = None,
                  on_failure: Callable[[str, str], None] | None = None) -> DatasetRun:
    """Embed every image of ``src`` (a folder, searched recursively; a glob pattern; or a
    list file: :func:`i2s.dataset.sources.find_sources`) into ``out/<name>/`` (the files of
    ``i2s embed``), sharing the work with the other ``ranks`` (started by the caller; default
    one process). Images done earlier with the same settings are skipped; failed, partial and
    changed ones are embedded again.

    An unreadable image (or one without a face, with ``aligned``) is recorded as failed with
    its reason (``on_failure(path, reason)``) and the run goes on. On rank 0, ``progress``
    makes the per-batch step callback and ``on_progress`` hears how the whole run stands.
    Writes ``out/manifest.jsonl`` and ``out/summary.json`` (rank 0), also when stopped by an
    exception (Ctrl-C, SIGTERM), which is then raised again.
    """
    ranks = ranks or Ranks()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings_hash(G, config, aligned)
    plan = _plan(src, out, settings) if ranks.rank == 0 else None
    # the other ranks need the run's id and what is left, not the whole dataset
    work = ranks.share({k: v for k, v in plan.items() if k != "sources"} if plan else None)
    if "error" in work:
        raise I2SError(work["error"])
    run_id, todo = work["run"], [Source(*s) for s in work["todo"]]
    mine = todo[ranks.rank::ranks.world]
    log = RankLog(out, run_id, ranks.rank)
    t0 = time.perf_counter()
    mine_done = mine_failed = 0
    try:
        if mine:
            mine_done, mine_failed = _embed_share(
                G, mine, out, config, aligned, settings, run_id, ranks, log, vgg_weights,
                lpips_weights, progress, on_failure,
                (lambda: _report(out, run_id, len(todo), t0, on_progress))
                if ranks.rank == 0 and on_progress is not None else None)
        seconds = time.perf_counter() - t0
        write_json_atomic(out / LOG_FOLDER / f"{run_id}-rank{ranks.rank}.end.json", {
            "rank": ranks.rank, "world": ranks.world, "images": len(mine), "done": mine_done,
            "failed": mine_failed, "seconds": round(seconds, 3),
            "images_per_second": round(mine_done / seconds, 4) if seconds > 0 else None,
            "device": str(G.w_avg.device)})
        problem = ranks.wait_for_all()
    except BaseException:
        log.close()
        if ranks.rank == 0:   # keep the record true for whoever looks before the rerun
            _merge(out, plan, settings, time.perf_counter() - t0, ranks.world,
                   "stopped before the end")
        raise
    log.close()
    if ranks.rank != 0:
        return DatasetRun(run_id, total=len(mine), done=mine_done, failed=mine_failed,
                          embedded=mine_done, seconds=seconds,
                          images_per_second=mine_done / seconds if seconds > 0 else 0.0)
    return _merge(out, plan, settings, time.perf_counter() - t0, ranks.world, problem)


def _plan(src, out: Path, settings: str) -> dict:
    """Rank 0: the dataset, and what is left to do with these settings."""
    try:
        sources = [with_hash(s) for s in find_sources(src)]
    except I2SError as e:
        return {"error": str(e)}
    records = latest(read_logs(out))
    todo = [s for s in sources if not is_done(records.get(s.name), s.sha256, settings, out)]
    run = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
    return {"run": run, "sources": [[s.path, s.name, s.sha256] for s in sources],
            "todo": [[s.path, s.name, s.sha256] for s in todo]}


def _embed_share(G, mine: list[Source], out: Path, config: EmbedConfig, aligned, settings: str,
                 run_id: str, ranks: Ranks, log: RankLog, vgg_weights, lpips_weights,
                 progress, on_failure, after_batch) -> tuple[int, int]:
    """This rank's images, a batch at a time; returns (done, failed)."""
    device = G.w_avg.device
    vgg = load_vgg16(vgg_weights, device=device, download=True) if config.needs_vgg else None
    lpips, _ = load_lpips_metric(None, vgg, device, lpips_weights, vgg_weights)
    batch = config.batch_for(G.resolution)
    done = failed = 0

    def fail(s: Source, reason: str) -> None:
        nonlocal failed
        failed += 1
        log.write(Record(s.path, s.name, s.sha256, settings, "failed", rank=ranks.rank,
                         run=run_id, reason=reason))
        if on_failure is not None:
            on_failure(s.path, reason)

    for start in range(0, len(mine), batch):
        good, arrays, transforms = [], [], []
        for s in mine[start:start + batch]:
            try:
                if not s.sha256:
                    raise I2SError(f"{s.path}: cannot read it")
                array, transform = input_image(s.path, G.resolution, aligned)
            except FaceModelsMissing:
                raise
            except I2SError as e:
                fail(s, str(e))
                continue
            good.append(s)
            arrays.append(array)
            transforms.append(transform)
        if not good:
            continue
        bar = progress(good[0].name if len(good) == 1 else f"{len(good)} images",
                       total_steps(config)) if progress else None
        try:
            result = embed(G, to_tensor(np.stack(arrays)).to(device), config, callback=bar,
                           vgg=vgg, lpips=lpips, lpips_weights=lpips_weights,
                           image_ids=[s.image_id for s in good])
            folders = result.save(out, [s.name for s in good], sources=[s.path for s in good],
                                  transforms=transforms)
        except I2SError as e:
            for s in good:
                fail(s, str(e))
            continue
        finally:
            if bar is not None:
                bar.close()
        for s, folder in zip(good, folders, strict=True):
            m = _metrics(folder)
            log.write(Record(s.path, s.name, s.sha256, settings, "done",
                             **{k: m.get(k) for k in (*METRICS, "seconds", "steps")},
                             rank=ranks.rank, run=run_id))
            done += 1
        if after_batch is not None:
            after_batch()
    return done, failed


def _metrics(folder: Path) -> dict:
    try:
        m = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return m if isinstance(m, dict) else {}


def _report(out: Path, run_id: str, todo: int, t0: float,
            on_progress: Callable[[DatasetProgress], None]) -> None:
    """Rank 0: count this run's records of every rank and tell ``on_progress``."""
    records = read_logs(out, run_id)
    done = sum(r.status == "done" for r in records)
    failed = sum(r.status == "failed" for r in records)
    seconds = time.perf_counter() - t0
    rate = done / seconds if seconds > 0 else 0.0
    left = todo - done - failed
    on_progress(DatasetProgress(done, failed, todo, seconds, rate,
                                left / rate if rate > 0 else None))


def _merge(out: Path, plan: dict, settings: str, seconds: float, world: int,
           problem: str | None) -> DatasetRun:
    """Rank 0: ``manifest.jsonl`` (the latest record of every image of the dataset) and
    ``summary.json``."""
    run_id = plan["run"]
    records = latest(read_logs(out))
    rows = []
    for path, name, sha in plan["sources"]:
        r = records.get(name)
        current = r is not None and r.sha256 == sha and r.settings == settings
        if not current or (r.status == "done" and not is_done(r, sha, settings, out)):
            r = Record(path, name, sha, settings, "pending")
        rows.append(r)
    manifest = write_manifest(out, rows)
    count = {s: sum(r.status == s for r in rows) for s in ("done", "failed", "pending")}
    embedded = sum(r.status == "done" and r.run == run_id for r in rows)
    per_rank = []
    for rank in range(world):
        try:
            per_rank.append(json.loads(
                (out / LOG_FOLDER / f"{run_id}-rank{rank}.end.json").read_text()))
        except (OSError, ValueError):
            per_rank.append({"rank": rank, "finished": False})
    done_rows = [r for r in rows if r.status == "done"]
    means = {k: _mean([getattr(r, k) for r in done_rows]) for k in METRICS}
    result = DatasetRun(run_id, total=len(rows), done=count["done"], failed=count["failed"],
                        pending=count["pending"],
                        skipped=len(plan["sources"]) - len(plan["todo"]),
                        embedded=embedded, seconds=seconds,
                        images_per_second=embedded / seconds if seconds > 0 else 0.0,
                        ranks=per_rank, rank_problem=problem, manifest=manifest)
    result.summary = write_summary(out, {
        "run": run_id, "settings_sha256": settings, "processes": world,
        "images": len(rows), **count, "skipped": result.skipped, "embedded": embedded,
        "complete": result.complete, "rank_problem": problem,
        "seconds": round(seconds, 3), "images_per_second": round(result.images_per_second, 4),
        "mean": means, "ranks": per_rank,
        "failures": [{"path": r.path, "reason": r.reason} for r in rows
                     if r.status == "failed"]})
    return result


def _mean(values: list) -> float | None:
    xs = [float(v) for v in values if isinstance(v, int | float) and np.isfinite(v)]
    return round(float(np.mean(xs)), 4) if xs else None
