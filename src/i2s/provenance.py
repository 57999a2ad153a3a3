"""The run record: what produced an output (versions, machine, device, model, settings).

Every file i2s writes about a run (``metrics.json`` of an embedding, ``edit.json`` of an
edit, ``results.json`` of an experiment, the benchmarks' JSON) starts from
:func:`run_record`, so they all name the same things the same way.
"""

from __future__ import annotations

import datetime
import os
import platform

import torch

from i2s._version import __version__


def _cpuinfo_lines(*prefixes: str) -> list[str]:
    """The first line of /proc/cpuinfo (Linux) starting with each prefix (in file order)."""
    found: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                for p in prefixes:
                    if line.startswith(p) and p not in found:
                        found[p] = line
                if len(found) == len(prefixes):
                    break
    except OSError:
        pass
    return [found[p] for p in prefixes if p in found]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    lines = _cpuinfo_lines("model name")
    if lines:
        return lines[0].split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_identity() -> str:
    """Model name and instruction-set flags of this CPU: what a ``-march=native`` build
    depends on (the compiled kernels' cache key)."""
    lines = _cpuinfo_lines("model name", "flags")
    return "".join(lines) if lines else platform.processor() + platform.machine()


def describe_machine(device: torch.device | str = "cpu") -> str:
    """E.g. ``AMD EPYC 7B13, 2 logical CPUs, torch 2.13.0+cpu (2 threads), Python 3.12.3``;
    for a CUDA device the GPU's name comes first."""
    device = torch.device(device)
    gpu = f"{torch.cuda.get_device_name(device)}; " if device.type == "cuda" else ""
    return (f"{gpu}{cpu_model()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def oversubscription(threads: int | None = None) -> tuple[float, int] | None:
    """(1-minute load average, suggested thread count) when the machine is busy enough that
    ``threads`` (default: torch's) compute threads would compete for cores with other work,
    else None. Cheap (reads the load average); None where the load average is unknown."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cpus = available_cpus()
    threads = threads or torch.get_num_threads()
    free = max(1, int(cpus - load + 0.5))
    if threads > 1 and threads > free:
        return load, free
    return None


def versions() -> dict[str, str]:
    """``{"i2s", "torch", "python"}`` version strings."""
    return {"i2s": __version__, "torch": torch.__version__,
            "python": platform.python_version()}


def same_model(G, recorded: str | None) -> bool:
    """Whether a file that records the model SHA-256 ``recorded`` was made with ``G``: yes when
    either is unknown, or ``recorded`` is G's identity (weights + config) or, for files made
    before i2s identified models that way, its file's SHA-256."""
    ids = {getattr(G, "sha256", None), getattr(G, "file_sha256", None)} - {None, ""}
    return not recorded or not ids or recorded in ids


def model_record(G) -> dict:
    """What identifies a generator: how it was named when loaded (``G.source``), the digest of
    its weights and config (``model_sha256``), its file's SHA-256, resolution and latent
    shape."""
    return {"model": getattr(G, "source", None), "model_sha256": getattr(G, "sha256", None),
            "model_file_sha256": getattr(G, "file_sha256", None),
            "resolution": G.resolution, "num_ws": G.num_ws, "w_dim": G.w_dim}


def run_record(G=None, settings: dict | None = None,
               device: torch.device | str | None = None) -> dict:
    """The common part of every run record.

    Args:
        G: the generator that was used (see :func:`model_record`), or None.
        settings: the run's settings as JSON data (e.g. ``EmbedConfig.to_dict()``).
        device: the device it ran on (default: G's).
    Returns:
        ``model``, ``model_sha256``, ``resolution``, ``num_ws``, ``w_dim`` (with G),
        ``settings``, ``device``, ``machine``, ``versions`` and ``date`` (UTC, ISO 8601).
    """
    if device is None:
        device = G.w_avg.device if G is not None else "cpu"
    record = model_record(G) if G is not None else {}
    if settings is not None:
        record["settings"] = settings
    record.update(
        device=str(device), machine=describe_machine(device), versions=versions(),
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    return record
