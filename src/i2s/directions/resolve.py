"""Directions by name for a model: ``sefa:K``, ``ganspace:K``, InterFaceGAN's attributes
(``smile``, ``age``, ... for the models they were published for, downloaded on first use) or
a file."""

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


def published_directions() -> dict[str, list[str]]:
    """{attribute: registry entries} of the downloadable directions (InterFaceGAN's for the
    paper's StyleGAN, e4e's for StyleGAN2 config-f); each entry names its model."""
    out: dict[str, list[str]] = {}
    for e in REGISTRY.values():
        if e.kind == "direction":
            out.setdefault(e.name.rsplit("-", 1)[1], []).append(e.name)
    return out


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


def resolve_direction(G, name: str) -> Direction:
    """The direction ``name`` for ``G``: ``sefa:K`` / ``ganspace:K`` (component K), a
    published attribute for G's registry model (InterFaceGAN's ``age``, ``eyeglasses``,
    ``gender``, ``pose``, ``smile`` for ``stylegan-ffhq-1024``, the paper's model; e4e's
    ``age``, ``smile``, ``pose`` for ``stylegan2-ffhq-1024``; downloaded on first use), or a
    ``.npy`` / ``.pt`` file."""
    method, sep, index = name.partition(":")
    if sep and method in METHODS:
        try:
            k = int(index)
        except ValueError:
            raise I2SError(f"direction {name!r}: expected {method}:K, K a component "
                           "number") from None
        return direction_set(G, method)[k]
    published = published_directions()
    if name in published:
        entry = _entry_for(G, name)
        if entry is None:
            models = sorted({REGISTRY[n].for_model for n in published[name]})
            raise I2SError(f"direction {name!r} is published for {', '.join(models)}; this "
                           f"model is {getattr(G, 'source', None)!s:.60}: use sefa:K or "
                           "ganspace:K, or a direction file of this model")
        vec = load_direction_file(fetch(entry.name), G.w_dim, G.num_ws)
        method = "interfacegan" if entry.name.startswith("interfacegan") else "e4e"
        return Direction(vec, name, list(range(G.num_ws)), method, source=entry.urls[0])
    if name.lower().endswith((".npy", ".pt", ".pth")):
        vec = load_direction_file(name, G.w_dim, G.num_ws)
        return Direction(vec, name, list(range(G.num_ws)), "file", source=name)
    raise I2SError(f"unknown direction {name!r}: use sefa:K, ganspace:K, "
                   f"{', '.join(published)} (published for some models), or a .npy/.pt file")


def available_directions(G) -> list[dict]:
    """What ``G`` can be edited with: one row per kind (name pattern, count, source, note)."""
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
    return rows
