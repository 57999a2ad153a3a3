"""Bookkeeping for converters: every source variable must be used, every target filled."""

from __future__ import annotations

import re

import numpy as np
import torch

from i2s.errors import I2SError


class SourceVariables:
    """Source arrays by name; :meth:`take` marks one used, :meth:`check_all_used` verifies."""

    def __init__(self, arrays: dict[str, np.ndarray | torch.Tensor], source: str) -> None:
        self.arrays = dict(arrays)
        self.source = source
        self.used: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def take(self, name: str) -> torch.Tensor:
        """The named variable as a float32 tensor (copy), marked as used."""
        if name not in self.arrays:
            raise I2SError(f"{self.source}: missing variable '{name}'")
        self.used.add(name)
        v = self.arrays[name]
        t = v.detach().clone() if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v))
        return t.float()

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
    G.load_state_dict(state, strict=True)


def tf_generator_variables(gs, source: str
                           ) -> tuple[SourceVariables, SourceVariables, SourceVariables, dict]:
    """Split a TF ``Gs`` network into (mapping, synthesis, own) variables and the synthesis
    network's static kwargs."""
    comps = gs.components
    if "mapping" not in comps or "synthesis" not in comps:
        raise I2SError(f"{source}: Gs has no mapping/synthesis components")
    return (SourceVariables(comps["mapping"].variables, f"{source} (mapping)"),
            SourceVariables(comps["synthesis"].variables, f"{source} (synthesis)"),
            SourceVariables(gs.variables, f"{source} (Gs)"),
            dict(comps["synthesis"].state.get("static_kwargs") or {}))


def tf_mapping_layers(mapping: SourceVariables) -> int:
    """Number of ``Dense{i}`` layers of a TF mapping network."""
    return sum(1 for k in mapping.arrays if re.match(r"Dense\d+/weight$", k))


def tf_mapping_state(mapping: SourceVariables, own: SourceVariables, synth: SourceVariables,
                     n_map: int) -> dict[str, torch.Tensor]:
    """The parts StyleGAN v1 and v2 TF networks share: ``Dense{i}`` (transposed) ->
    ``mapping.fc{i}``, ``dlatent_avg`` -> ``mapping.w_avg``, ``4x4/Const/const[0]`` ->
    ``synthesis.b4.const``."""
    state: dict[str, torch.Tensor] = {}
    for i in range(n_map):
        state[f"mapping.fc{i}.weight"] = mapping.take(f"Dense{i}/weight").t().contiguous()
        state[f"mapping.fc{i}.bias"] = mapping.take(f"Dense{i}/bias")
    state["mapping.w_avg"] = own.take("dlatent_avg")
    state["synthesis.b4.const"] = synth.take("4x4/Const/const")[0]
    return state
