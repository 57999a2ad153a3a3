"""``i2s models``: list, describe and download the registry's pretrained models."""

from __future__ import annotations

import click

from i2s.weights.download import is_cached
from i2s.weights.load import download_path, fetch, model_path
from i2s.weights.registry import REGISTRY, ModelEntry, get_entry


def _bytes(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{max(1, round(n / 1024))} KB"


def _size(e: ModelEntry) -> str:
    if e.packaged and model_path(e).is_file():
        return _bytes(model_path(e).stat().st_size)
    if e.size is not None:
        return _bytes(e.size)
    if e.kind == "direction":
        return "~2-4 KB"
    return f"~{e.approx_mb} MB" if e.approx_mb else "?"


def _cached(e: ModelEntry) -> bool:
    """Present in the cache (not re-hashed here: files are fully verified when used)."""
    if e.packaged:
        return model_path(e).is_file()
    return (e.kind == "generator" and is_cached(model_path(e))) or is_cached(download_path(e))


@click.group("models")
def models_group() -> None:
    """Pretrained models: list, info, download (cache: $I2S_HOME, default ~/.cache/i2s)."""


@models_group.command("list")
def list_command() -> int:
    """Name, resolution, architecture, size and whether it is cached."""
    click.echo(f"{'name':<30} {'res':>5}  {'architecture':<12} {'size':>8}  cached")
    for e in REGISTRY.values():
        res = str(e.resolution) if e.resolution else "-"
        click.echo(f"{e.name:<30} {res:>5}  {e.architecture:<12} {_size(e):>8}  "
                   f"{'yes' if _cached(e) else 'no'}")
    return 0


@models_group.command("info")
@click.argument("name")
def info_command(name: str) -> int:
    """Everything known about one model."""
    e = get_entry(name)
    rows = [("name", e.name), ("description", e.description), ("architecture", e.architecture),
            ("resolution", e.resolution or "-"), ("file", e.filename), ("size", _size(e)),
            ("sha256", e.sha256 or "not published; recorded at download"),
            ("licence", e.licence), ("cached", "yes" if _cached(e) else "no"),
            ("packaged" if e.packaged else "cache path",
             model_path(e) if e.kind == "generator" else download_path(e))]
    rows += [("url", u) for u in e.urls]
    if e.mean is not None:  # a feature network: the input it was trained on
        rows += [("input", f"RGB in [0, 1], {e.input_size} px, mean {e.mean}, std {e.std}")]
    for k, v in rows:
        click.echo(f"{k + ':':<13} {v}")
    return 0


@models_group.command("download")
@click.argument("name")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def download_command(name: str, quiet: bool) -> int:
    """Download NAME (verified), and convert it if it is a generator."""
    path = fetch(name, quiet=quiet)
    click.echo(f"{name}: {path}")
    return 0
