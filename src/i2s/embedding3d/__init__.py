"""3D inversion: images or a mesh of an object -> GET3D's two latent branches (ws_geo, ws_tex).

The settings (:mod:`.config`), the targets (:mod:`.targets`: image files with or without
cameras, mesh files rendered by i2s), the losses (:mod:`.losses`), the render path with control
over what the colour loss moves (:mod:`.rendering`), camera estimation
(:mod:`.cameras_estimate`), the strategies and the optimisation (:mod:`.strategies`), the result
and its files (:mod:`.result`, :mod:`.outputs`).
"""

from i2s.embedding3d.config import STRATEGIES, Embed3DConfig
from i2s.embedding3d.result import Embed3DResult, StepInfo3D
from i2s.embedding3d.strategies.optimisation import embed_3d
from i2s.embedding3d.targets import Target3D, load_image_target, load_mesh_target

__all__ = ["STRATEGIES", "Embed3DConfig", "Embed3DResult", "StepInfo3D", "Target3D",
           "embed_3d", "load_image_target", "load_mesh_target"]
