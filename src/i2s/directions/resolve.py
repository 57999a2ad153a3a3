"""Directions by name for a model: ``sefa:K``, ``ganspace:K``, InterFaceGAN's attributes
(``smile``, ``age``, ... for the paper's model, downloaded on first use) or a file."""

from __future__ import annotations

import numpy as np
import torch

from i2s.directions.direction import Direction, DirectionSet
from i2s.directions.files import load_direction_file
from i2s.directions.ganspace import DEFAULT_SAMPLES, ganspace
from i2s.directions.sefa import sefa
from i2s.errors import I2SError
from i2s.media.files import atomic_path
from i2s.resources import i2s_home
from i2s.weights.load import fetch
from i2s.weights.registry import REGISTRY

METHODS = ("sefa", "ganspace")


def interfacegan_names() -> dict[str, str]:
    """{attribute: registry entry} of the downloadable InterFaceGAN boundaries."""
    return {e.name.rsplit("-", 1)[1]: e.name for e in REGISTRY.values()
            if e.kind == "direction"}


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


def _is_paper_model(G) -> bool:
    source = str(getattr(G, "source", "") or "")
    return source == "stylegan-ffhq-1024"


def resolve_direction(G, name: str) -> Direction:
    """The direction ``name`` for ``G``: ``sefa:K`` / ``ganspace:K`` (component K), an
    InterFaceGAN attribute (``age``, ``eyeglasses``, ``gender``, ``pose``, ``smile``; only for
    ``stylegan-ffhq-1024``, the paper's model), or a ``.npy`` / ``.pt`` file."""
    method, sep, index = name.partition(":")
    if sep and method in METHODS:
        try:
            k = int(index)
        except ValueError:
            raise I2SError(f"direction {name!r}: expected {method}:K, K a component "
                           "number") from None
        return direction_set(G, method)[k]
    attrs = interfacegan_names()
    if name in attrs:
        entry = REGISTRY[attrs[name]]
        if not _is_paper_model(G):
            raise I2SError(f"direction {name!r} is InterFaceGAN's boundary for "
                           f"{entry.for_model}; this model is {getattr(G, 'source', None)!s:.60}"
                           ": use sefa:K or ganspace:K, or a direction file of this model")
        path = fetch(entry.name)
        vec = load_direction_file(path, G.w_dim, G.num_ws)
        return Direction(vec, name, list(range(G.num_ws)), "interfacegan", source=entry.urls[0])
    if name.lower().endswith((".npy", ".pt", ".pth")):
        vec = load_direction_file(name, G.w_dim, G.num_ws)
        return Direction(vec, name, list(range(G.num_ws)), "file", source=name)
    raise I2SError(f"unknown direction {name!r}: use sefa:K, ganspace:K, "
                   f"{', '.join(attrs)} (stylegan-ffhq-1024), or a .npy/.pt file")


def available_directions(G) -> list[dict]:
    """What ``G`` can be edited with: one row per kind (name pattern, count, source, note)."""
    rows = [
        {"name": "sefa:K", "count": G.w_dim, "method": "sefa",
         "note": "closed form from the modulation weights (no data), ranked by eigenvalue"},
        {"name": "ganspace:K", "count": min(64, G.w_dim), "method": "ganspace",
         "note": f"PCA of {DEFAULT_SAMPLES} mapped samples, ranked by variance"},
    ]
    paper = _is_paper_model(G)
    for attr, entry in interfacegan_names().items():
        rows.append({"name": attr, "count": 1, "method": "interfacegan",
                     "note": (REGISTRY[entry].description if paper else
                              f"only for {REGISTRY[entry].for_model}")})
    return rows
