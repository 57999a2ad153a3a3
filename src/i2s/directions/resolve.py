"""Directions by name for a model: ``sefa:K``, ``ganspace:K``, InterFaceGAN's and e4e's
attributes (``smile``, ``age``, ... for the models they were published for, downloaded on first
use), component K of a published PCA (a registry entry of kind ``direction-set``:
``NAME:K``), or a file (``.npy``/``.pt``; a PCA file as ``FILE.pt:K``)."""

from __future__ import annotations

import numpy as np
import torch

from i2s.directions.direction import Direction, DirectionSet
from i2s.directions.files import load_direction_file, load_pca_file
from i2s.directions.ganspace import DEFAULT_SAMPLES, ganspace
from i2s.directions.sefa import sefa
from i2s.errors import I2SError
from i2s.media.files import atomic_path
from i2s.resources import i2s_home
from i2s.weights.load import fetch
from i2s.weights.registry import REGISTRY

METHODS = ("sefa", "ganspace")


def published_directions() -> dict[str, list[str]]:
    """{attribute: registry entries} of the downloadable directions (InterFaceGAN's for the
    paper's StyleGAN, e4e's for StyleGAN2 config-f); each entry names its model."""
    out: dict[str, list[str]] = {}
    for e in REGISTRY.values():
        if e.kind == "direction":
            out.setdefault(e.name.rsplit("-", 1)[1], []).append(e.name)
    return out


def published_sets() -> list[str]:
    """Registry entries of kind ``direction-set``: published PCA files (e4e's GANSpace
    components), each for the model named by its ``for_model``."""
    return [e.name for e in REGISTRY.values() if e.kind == "direction-set"]


def _cache_path(G, method: str):
    ident = (getattr(G, "sha256", None) or "")[:16]
    if not ident:
        return None
    tag = f"n{DEFAULT_SAMPLES}-s0" if method == "ganspace" else "all"
    return i2s_home() / "directions" / ident / f"{method}-{tag}.npz"


def direction_set(G, method: str) -> DirectionSet:
    """The SeFa or GANSpace set of ``G`` with the default settings, cached per model in
    ``$I2S_HOME/directions/<model digest>/`` (plain arrays, read without pickle)."""
    if method not in METHODS:
        raise I2SError(f"unknown direction method {method!r}: use {', '.join(METHODS)}")
    path = _cache_path(G, method)
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                stds = f.get("stds", None)
                return DirectionSet(torch.from_numpy(f["vectors"]), f["values"], method,
                                    f["layers"].tolist(), stds)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache is made again
    found = sefa(G) if method == "sefa" else ganspace(G)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"vectors": found.vectors.numpy(), "values": np.asarray(found.values),
                  "layers": np.asarray(found.layers, np.int64)}
        if found.stds is not None:
            arrays["stds"] = np.asarray(found.stds)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return found


def _entry_for(G, attribute: str):
    """The registry entry of ``attribute`` made for G's registry model, or None."""
    source = str(getattr(G, "source", "") or "")
    for name in published_directions().get(attribute, []):
        if REGISTRY[name].for_model == source:
            return REGISTRY[name]
    return None


def _not_for(G, name: str, models: set[str]) -> I2SError:
    """The one-line refusal of a published direction used with another model."""
    return I2SError(f"direction {name!r} is published for {', '.join(sorted(models))}; this "
                    f"model is {getattr(G, 'source', None)!s:.60}: use sefa:K or ganspace:K, "
                    "or a direction file of this model")


def _index(name: str, prefix: str, index: str) -> int:
    """K of ``<prefix>:K``; one line for anything but a whole number."""
    try:
        return int(index)
    except ValueError:
        raise I2SError(f"direction {name!r}: expected {prefix}:K, K a component "
                       "number") from None


def published_set(G, name: str) -> DirectionSet:
    """The published PCA ``name`` (a ``direction-set`` registry entry) for ``G``, downloaded
    on first use; refused on one line for a model it was not made for."""
    entry = REGISTRY[name]
    if entry.for_model != str(getattr(G, "source", "") or ""):
        raise _not_for(G, f"{name}:K", {str(entry.for_model)})
    found = load_pca_file(fetch(entry.name), G.w_dim, G.num_ws)
    found.prefix, found.source = name, entry.urls[0]
    return found


def resolve_direction(G, name: str) -> Direction:
    """The direction ``name`` for ``G``: ``sefa:K`` / ``ganspace:K`` (component K), a
    published attribute for G's registry model (InterFaceGAN's ``age``, ``eyeglasses``,
    ``gender``, ``pose``, ``smile`` for ``stylegan-ffhq-1024``, the paper's model; e4e's
    ``age``, ``smile``, ``pose`` for ``stylegan2-ffhq-1024``; downloaded on first use),
    component K of a published PCA (``NAME:K``, NAME a ``direction-set`` registry entry), a
    ``.npy`` / ``.pt`` file, or component K of a PCA file in e4e's layout (``FILE.pt:K``)."""
    head, sep, index = name.rpartition(":")
    if sep and head in METHODS:
        return direction_set(G, head)[_index(name, head, index)]
    if sep and head in published_sets():
        return published_set(G, head)[_index(name, head, index)]
    if sep and head.lower().endswith((".pt", ".pth")):
        return load_pca_file(head, G.w_dim, G.num_ws)[_index(name, head, index)]
    published = published_directions()
    if name in published:
        entry = _entry_for(G, name)
        if entry is None:
            raise _not_for(G, name, {str(REGISTRY[n].for_model) for n in published[name]})
        vec = load_direction_file(fetch(entry.name), G.w_dim, G.num_ws)
        method = "interfacegan" if entry.name.startswith("interfacegan") else "e4e"
        return Direction(vec, name, list(range(G.num_ws)), method, source=entry.urls[0])
    if name.lower().endswith((".npy", ".pt", ".pth")):
        vec = load_direction_file(name, G.w_dim, G.num_ws)
        return Direction(vec, name, list(range(G.num_ws)), "file", source=name)
    sets = "".join(f"{n}:K, " for n in published_sets())
    raise I2SError(f"unknown direction {name!r}: use sefa:K, ganspace:K, {sets}"
                   f"{', '.join(published)} (published for some models), or a .npy/.pt file")


def available_directions(G) -> list[dict]:
    """What ``G`` can be edited with: one row per kind (name pattern, count (None: known once
    downloaded), method, note)."""
    rows = [
        {"name": "sefa:K", "count": G.w_dim, "method": "sefa",
         "note": "closed form from the modulation weights (no data), ranked by eigenvalue"},
        {"name": "ganspace:K", "count": min(64, G.w_dim), "method": "ganspace",
         "note": f"PCA of {DEFAULT_SAMPLES} mapped samples, ranked by variance"},
    ]
    for attr, names in published_directions().items():
        entry = _entry_for(G, attr)
        rows.append({"name": attr, "count": 1, "method": "published",
                     "note": entry.description if entry is not None else
                     "only for " + ", ".join(sorted({REGISTRY[n].for_model for n in names}))})
    source = str(getattr(G, "source", "") or "")
    for name in published_sets():
        entry = REGISTRY[name]
        rows.append({"name": f"{name}:K", "count": None, "method": "published",
                     "note": entry.description if entry.for_model == source else
                     f"only for {entry.for_model}"})
    return rows
