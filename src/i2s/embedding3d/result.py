"""What a 3D inversion returns: per-step information for callbacks and the result, with the
measures per view and ``save()`` (the files ``i2s embed-3d`` writes)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from i2s.embedding3d.config import Embed3DConfig
from i2s.embedding3d.strategies.schedule import Phase
from i2s.embedding3d.targets import Target3D
from i2s.get3d.cameras import Cameras
from i2s.get3d.generator import Mesh


@dataclass
class StepInfo3D:
    """What the callback receives after every step (1-based ``step`` of ``steps``; the
    generator-tuning steps follow with ``phase`` "tune")."""

    step: int
    steps: int
    phase: str
    loss: float
    terms: dict[str, float]
    iou: float                 # mean silhouette IoU over the fitted views, before this update
    psnr: float                # mean RGB PSNR there (NaN in phases without colour)
    ws_geo: torch.Tensor       # [1, num_ws_geo, w_dim], detached, before this update
    ws_tex: torch.Tensor       # [1, num_ws_tex, w_dim]


@dataclass
class Embed3DResult:
    """Outcome of :func:`i2s.embedding3d.embed_3d` for one object.

    ``renders`` [K, 4, H, W] are the final shape from every view of ``target`` (fitted and
    held out) with ``cameras`` (estimated ones for fitted views without cameras); ``view_iou``
    and ``view_psnr`` [K] measure them; ``held_out`` lists the views never used in the loss.
    ``generator`` is the tuned copy of G when generator tuning ran (else None).
    """

    ws_geo: torch.Tensor
    ws_tex: torch.Tensor
    target: Target3D
    cameras: Cameras
    cameras_estimated: bool
    renders: torch.Tensor
    mesh: Mesh
    view_iou: np.ndarray
    view_psnr: np.ndarray
    held_out: list[int]
    history: dict[str, np.ndarray]
    phases: list[Phase]
    seconds: float
    config: Embed3DConfig = field(default_factory=Embed3DConfig)
    record: dict = field(default_factory=dict)
    chamfer: float | None = None
    chamfer_initial: float | None = None
    initial_iou: np.ndarray | None = None
    initial_psnr: np.ndarray | None = None
    search_seconds: float = 0.0
    tune_seconds: float = 0.0
    generator: torch.nn.Module | None = None
    camera_search_iou: np.ndarray | None = None

    @property
    def fitted(self) -> list[int]:
        return [i for i in range(len(self.target)) if i not in self.held_out]

    def mean_measures(self, views: list[int]) -> dict[str, float | None]:
        """Mean IoU and PSNR (NaN views skipped) over ``views``; None for no views."""
        if not views:
            return {"iou": None, "psnr": None}
        psnr = self.view_psnr[views]
        psnr = psnr[np.isfinite(psnr)]
        return {"iou": float(self.view_iou[views].mean()),
                "psnr": float(psnr.mean()) if len(psnr) else None}

    def metrics(self) -> dict:
        """The numbers of ``metrics.json`` (without the file list)."""
        cams = self.cameras
        views = []
        for i, name in enumerate(self.target.names):
            v = {"name": name, "used": i not in self.held_out,
                 "iou": float(self.view_iou[i]), "psnr": _finite(self.view_psnr[i])}
            if self.initial_iou is not None:
                v["iou_initial"] = float(self.initial_iou[i])
                v["psnr_initial"] = _finite(self.initial_psnr[i])
            if cams.azimuth_deg is not None:
                v["camera"] = {"azimuth_deg": float(cams.azimuth_deg[i]) % 360,
                               "elevation_deg": float(cams.elevation_deg[i]),
                               "radius": float(cams.radius[i])}
            views.append(v)
        final = {k: float(v[-1]) for k, v in self.history.items()
                 if len(v) and k not in ("phase",)}
        return {
            "input": {"kind": self.target.kind, "files": self.target.source,
                      "views": len(self.target), "colours": self.target.has_colour},
            "strategy": self.config.strategy, "space_geo": self.config.space_geo,
            "space_tex": self.config.space_tex,
            "cameras": "estimated" if self.cameras_estimated else "given",
            "fitted": self.mean_measures(self.fitted),
            "held_out": self.mean_measures(self.held_out),
            "chamfer": self.chamfer, "chamfer_initial": self.chamfer_initial,
            "chamfer_unit": "bounding-box diagonal of the input mesh",
            "views": views,
            "losses": final,
            "history": {k: [_finite(x) for x in v] for k, v in self.history.items()},
            "phases": [{"name": p.name, "steps": p.steps, "geo": p.geo, "tex": p.tex,
                        "rgb_to_geo": p.rgb_to_geo} for p in self.phases],
            "steps": self.config.steps, "tune_steps": self.config.tune_steps,
            "seconds": self.seconds, "search_seconds": self.search_seconds,
            "tune_seconds": self.tune_seconds,
            "mesh": {"vertices": int(self.mesh.vertices.shape[0]),
                     "faces": int(self.mesh.faces.shape[0]), "empty": self.mesh.empty},
            **self.record,
        }

    def save(self, out: str | os.PathLike, *, model=None, video: bool = False,
             novel_views: int = 8, atlas: bool = True, texture_size: int = 1024) -> list[str]:
        """Write into ``out`` (created if needed; all files or none): ``latent.npz``,
        ``mesh.obj`` (+ ``mesh.mtl``, ``mesh_texture.png`` with an atlas) and ``mesh.glb``,
        ``cameras.json``, ``views/<name>_input.png`` beside ``views/<name>_render.png``,
        ``views.png`` (inputs over renders), ``novel/NNN.png`` (``novel_views`` views between
        and above the inputs), ``turntable.mp4`` with ``video``, ``generator.safetensors``
        when the generator was tuned, and ``metrics.json``. ``model``: the generator the
        result was made with (the tuned one is used when present). Returns the names."""
        from i2s.embedding3d.outputs import write_result

        return write_result(self, Path(out), model, video=video, novel_views=novel_views,
                            atlas=atlas, texture_size=texture_size)


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
