"""The record of a dataset embedding: one JSON line per image and attempt.

While a run goes, every rank appends to its own log ``OUT/.manifest/<run>-rank<r>.jsonl``
(a line per finished or failed image, flushed and synced, so a killed rank loses only the
images in flight). Rank 0 merges every log ever written into ``OUT/manifest.jsonl`` (the
latest record of each image of the dataset, ``pending`` for those not yet done) and
``OUT/summary.json``. A later run reads the logs to skip what is done.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from i2s.media.files import write_json_atomic, write_text_atomic

LOG_FOLDER = ".manifest"
STATUSES = ("done", "failed", "pending")


@dataclass
class Record:
    """One image's outcome (a line of the manifest)."""

    path: str                       # the input as listed
    name: str                       # its folder under the output
    sha256: str                     # of the input's bytes
    settings: str                   # hash of the settings (see :func:`settings_hash`)
    status: str                     # done, failed or pending
    psnr: float | None = None       # of the 8-bit files (dB)
    lpips: float | None = None
    identity_distance: float | None = None
    seconds: float | None = None    # optimisation time of its batch (metrics.json)
    steps: int | None = None
    rank: int | None = None
    run: str | None = None
    reason: str | None = None       # why it failed
    time: float | None = None       # when it was recorded (Unix time)

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        return cls(**{f.name: d.get(f.name) for f in fields(cls)})


def log_path(out: Path, run: str, rank: int) -> Path:
    return out / LOG_FOLDER / f"{run}-rank{rank}.jsonl"


class RankLog:
    """Appends a rank's records to its log, each line flushed and synced to disk."""

    def __init__(self, out: Path, run: str, rank: int) -> None:
        self.path = log_path(out, run, rank)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)

    def write(self, record: Record) -> None:
        record.time = time.time()
        self._file.write(json.dumps(asdict(record)) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_logs(out: Path, run: str | None = None) -> list[Record]:
    """Every record of every run's logs (of ``run`` only, when given), oldest first. A line
    cut short by a killed process is ignored."""
    records = []
    for path in sorted((out / LOG_FOLDER).glob(f"{run or '*'}-rank*.jsonl")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and d.get("status") in STATUSES:
                records.append(Record.from_dict(d))
    records.sort(key=lambda r: r.time or 0.0)
    return records


def latest(records: list[Record]) -> dict[str, Record]:
    """The last record of each output folder name."""
    return {r.name: r for r in records}


def is_done(record: Record | None, sha256: str, settings: str, out: Path) -> bool:
    """Whether ``record`` is a finished embedding of these bytes with these settings whose
    files are still there."""
    return (record is not None and record.status == "done" and record.sha256 == sha256
            and record.settings == settings and (out / record.name / "latent.npz").is_file())


def write_manifest(out: Path, records: list[Record]) -> Path:
    """``OUT/manifest.jsonl``, one line per image (written atomically)."""
    path = out / "manifest.jsonl"
    write_text_atomic(path, "".join(json.dumps(asdict(r)) + "\n" for r in records))
    return path


def write_summary(out: Path, summary: dict) -> Path:
    path = out / "summary.json"
    write_json_atomic(path, summary)
    return path
