"""Bookkeeping for converters: every source variable must be used, every target filled."""

from __future__ import annotations

import re

import numpy as np
import torch

from i2s.errors import I2SError
from i2s.weights.convert.safe_pickle import TFNetwork


class SourceVariables:
    """Source arrays by name; :meth:`take` marks one used, :meth:`check_all_used` verifies."""

    def __init__(self, arrays: dict[str, np.ndarray | torch.Tensor], source: str) -> None:
        self.arrays = dict(arrays)
        self.source = source
        self.used: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def shape(self, name: str, ndim: int | None = None) -> tuple[int, ...]:
        """The named variable's shape (not marked as used); I2SError if it is missing or does
        not have ``ndim`` dimensions."""
        if name not in self.arrays:
            raise I2SError(f"{self.source}: missing variable '{name}'")
        v = self.arrays[name]
        if not isinstance(v, (torch.Tensor, np.ndarray)) or \
                (isinstance(v, np.ndarray) and v.dtype.kind not in "biuf"):
            raise I2SError(f"{self.source}: variable '{name}' is not a numeric array")
        shape = tuple(int(d) for d in v.shape)
        if ndim is not None and len(shape) != ndim:
            raise I2SError(f"{self.source}: variable '{name}' has shape {shape}, expected "
                           f"{ndim} dimensions")
        return shape

    def take(self, name: str, ndim: int | None = None) -> torch.Tensor:
        """The named variable as a float32 tensor (copy), marked as used; with ``ndim``, it
        must have that many dimensions."""
        self.shape(name, ndim)
        self.used.add(name)
        v = self.arrays[name]
        if isinstance(v, torch.Tensor):
            return v.detach().to(torch.float32, copy=True)
        return torch.from_numpy(np.array(v, dtype=np.float32))

    def skip(self, name: str) -> None:
        """Mark a variable as deliberately not needed (the caller documents why)."""
        self.used.add(name)

    def check_all_used(self) -> None:
        unused = sorted(set(self.arrays) - self.used)
        if unused:
            more = f" (+{len(unused) - 5} more)" if len(unused) > 5 else ""
            raise I2SError(f"{self.source}: {len(unused)} source variable(s) not used by the "
                           f"conversion: {', '.join(unused[:5])}{more}")


def load_strict(G: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Fill every parameter and buffer of ``G`` from ``state``; I2SError naming any gap."""
    own = G.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise I2SError(f"{source}: conversion does not cover the model: missing "
                       f"{missing[:4]}, unexpected {extra[:4]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise I2SError(f"{source}: '{k}' has shape {tuple(v.shape)}, the model needs "
                           f"{tuple(own[k].shape)}")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise I2SError(f"{source}: '{k}' holds NaN or infinite values")
    G.load_state_dict(state, strict=True)


def tf_generator_variables(gs, source: str
                           ) -> tuple[SourceVariables, SourceVariables, SourceVariables, dict]:
    """Split a TF ``Gs`` network into (mapping, synthesis, own) variables and the static
    kwargs its networks were built with (Gs's, which ``G_main`` passes on to both components,
    updated with the components' own)."""
    comps = gs.components
    if not all(isinstance(comps.get(k), TFNetwork) for k in ("mapping", "synthesis")):
        raise I2SError(f"{source}: Gs has no mapping/synthesis components")
    kw = {**gs.static_kwargs, **comps["mapping"].static_kwargs,
          **comps["synthesis"].static_kwargs}
    return (SourceVariables(comps["mapping"].variables, f"{source} (mapping)"),
            SourceVariables(comps["synthesis"].variables, f"{source} (synthesis)"),
            SourceVariables(gs.variables, f"{source} (Gs)"), kw)


def tf_mapping_layers(mapping: SourceVariables) -> int:
    """Number of ``Dense{i}`` layers of a TF mapping network (``Dense0`` ... without gaps)."""
    idx = sorted(int(m.group(1)) for k in mapping.arrays
                 if (m := re.fullmatch(r"Dense(\d+)/weight", k)))
    gap = next((i for i, j in enumerate(idx) if i != j), len(idx))
    if gap < len(idx) or not idx:
        raise I2SError(f"{mapping.source}: missing variable 'Dense{gap}/weight'")
    return len(idx)


def tf_mapping_state(mapping: SourceVariables, own: SourceVariables, synth: SourceVariables,
                     n_map: int) -> dict[str, torch.Tensor]:
    """The parts StyleGAN v1 and v2 TF networks share: ``Dense{i}`` (transposed) ->
    ``mapping.fc{i}``, ``dlatent_avg`` -> ``mapping.w_avg``, ``4x4/Const/const[0]`` ->
    ``synthesis.b4.const``."""
    state: dict[str, torch.Tensor] = {}
    for i in range(n_map):
        state[f"mapping.fc{i}.weight"] = mapping.take(f"Dense{i}/weight", 2).t().contiguous()
        state[f"mapping.fc{i}.bias"] = mapping.take(f"Dense{i}/bias")
    state["mapping.w_avg"] = own.take("dlatent_avg")
    state["synthesis.b4.const"] = synth.take("4x4/Const/const", 4)[0]
    return state
