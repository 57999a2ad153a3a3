"""GET3D (Gao et al. 2022): a generator of textured 3D meshes with two latent branches.

:class:`GET3DGenerator` (NVIDIA's released "unified" generator, its ``G_ema`` names) with
:class:`GET3DConfig`; the tri-plane network (:mod:`.triplane`), the implicit MLPs and point
sampling (:mod:`.implicit`), tetrahedral grids (:mod:`.tets`), differentiable marching
tetrahedra (:mod:`.marching_tets`), cameras (:mod:`.cameras`), the rasteriser (:mod:`.raster`,
pure PyTorch; nvdiffrast on CUDA when installed), texture atlases (:mod:`.atlas`, xatlas) and
mesh / latent files (:mod:`.export`).
"""

from i2s.get3d.cameras import Cameras
from i2s.get3d.config import GET3DConfig
from i2s.get3d.export import Latent3D, load_latent_3d, save_latent_3d
from i2s.get3d.generator import GET3DGenerator, Mesh
from i2s.get3d.raster import render_mesh

__all__ = ["Cameras", "GET3DConfig", "GET3DGenerator", "Latent3D", "Mesh", "load_latent_3d",
           "render_mesh", "save_latent_3d"]
