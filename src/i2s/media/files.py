"""Writing outputs safely: atomic files and folders, JSON without non-finite numbers, one
run per output folder (a lock), hashing, and one-line reasons for unreadable inputs."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from i2s.errors import I2SError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the final suffix (some writers choose the format from it).
    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None: JSON has no such
    numbers (``json.dumps`` would write the invalid ``NaN`` / ``Infinity``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int = 2) -> None:
    """Write JSON data atomically; non-finite floats become null (see :func:`json_safe`)."""
    text = json.dumps(json_safe(data), indent=indent, allow_nan=False, default=float)
    write_text_atomic(path, text + "\n")


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a readable regular file (one line), or None if it is one."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        if p.is_symlink():
            return "broken symbolic link"
        if e.errno == errno.ENOENT:
            return "no such file"
        return e.strerror or str(e)
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if not os.access(p, os.R_OK):
        return "permission denied"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OverflowError, ValueError):
        return False
    return True


LOCK_NAME = ".i2s-lock"


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder/.i2s-lock`` (with this process's id) while a command writes into
    ``folder``, so that two runs never mix their files in one folder. A lock left by a process
    that no longer runs is taken over. Yields the folder (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = -1
            if pid > 0 and _pid_alive(pid):
                raise I2SError(f"another i2s run (process {pid}) is writing to {folder}; "
                               "wait for it to finish or choose another output folder") from None
            lock.unlink(missing_ok=True)  # left by a run that no longer exists
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        break
    else:
        raise I2SError(f"cannot lock the output folder {folder}")
    try:
        yield folder
    finally:
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new hidden folder beside ``path``; on success it replaces ``path`` (a folder of
    one run's files, never a mix of two runs), on failure it is removed and ``path`` is left
    as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        os.replace(path, old / path.name)
    os.replace(stage, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _replace(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst``, replacing a file or a whole folder there."""
    if dst.is_dir() and not dst.is_symlink():
        aside = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
        os.replace(dst, aside / dst.name)
        os.replace(src, dst)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(src, dst)


@contextlib.contextmanager
def staged_outputs(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden staging folder inside ``folder`` for a command's outputs. On success
    every file and folder in it is renamed into ``folder`` (replacing what a previous run left
    under the same names); on failure it is removed, so a failed run adds nothing."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".i2s-partial-", dir=folder))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    for entry in sorted(stage.iterdir()):
        _replace(entry, folder / entry.name)
    stage.rmdir()


def read_npz(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """All arrays of an ``.npz`` file (``allow_pickle=False``), read whole; a missing,
    unreadable or corrupt file is one I2SError naming ``what`` it should have been."""
    p = Path(path)
    problem = file_problem(p)
    if problem is not None:
        raise I2SError(f"{p}: {what}: {problem}")
    try:
        with np.load(p, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except Exception as e:  # numpy raises many types for corrupt archives
        raise I2SError(f"{p}: cannot read {what} ({type(e).__name__})") from None


def unique_stems(paths: list[Path]) -> list[str]:
    """Output folder names: the file stem, with -2, -3, ... for repeated stems."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        n = seen.get(p.stem, 0) + 1
        seen[p.stem] = n
        out.append(p.stem if n == 1 else f"{p.stem}-{n}")
    return out
