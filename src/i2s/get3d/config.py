"""``GET3DConfig``: the architecture of a GET3D generator ("unified" generator of the release).

Defaults are NVIDIA's released configuration (docs/get3d.md): z_dim = w_dim = 512, 8-layer
mapping networks, tri-plane 256 px, channel_base 32768, channel_max 512, feat_channel 16,
mlp_latent_channel 32, n_implicit_layer 1, tet_res 90, dmtet_scale 1.0 (car, motorbike; 0.8
for chair and table), image 1024 px. With them num_ws_geo = 22, num_ws_tex = 9 and the
generator has 34,314,180 parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from i2s.models.common import GeneratorConfig

TRI_PLANE_CHANNELS = 32  # features per plane (3 planes: 96 channels per head)


@dataclass(frozen=True)
class GET3DConfig(GeneratorConfig):
    """Architecture of a GET3D generator; stored as JSON beside the weights.

    ``resolution`` is the tri-plane's size (the 2D synthesis network's output), so the
    StyleGAN2 block helpers of :class:`i2s.models.common.GeneratorConfig` apply to it.
    """

    z_dim: int = 512                   # Input latent width (both branches).
    w_dim: int = 512                   # Intermediate latent width.
    mapping_layers: int = 8
    tri_plane_resolution: int = 256    # Tri-plane size, a power of two from 8 to 1024.
    channel_base: int = 32768          # Tri-plane channels at r px: min(base // r, max).
    channel_max: int = 512
    feat_channel: int = 16             # Texture feature width before to_rgb.
    mlp_latent_channel: int = 32       # Hidden width of the implicit MLPs.
    n_implicit_layer: int = 1          # Hidden layers of each implicit MLP.
    tet_res: int = 90                  # Tetrahedral grid resolution.
    dmtet_scale: float = 1.0           # Tet grid extent: 1.0 car/motorbike, 0.8 chair/table.
    image_resolution: int = 1024       # Rendered image size of the release.
    deformation_multiplier: float = 2.0
    conv_clamp: float | None = None    # Tri-plane conv clamp (None: the fp32 release).
    rgb_clamp: float | None = 256.0    # to_rgb's clamp (fixed at 256 in GET3D).
    mapping_lr_multiplier: float = 0.01
    img_channels: int = 3

    def __post_init__(self) -> None:
        r = self.tri_plane_resolution
        if r < 8 or r > 1024 or r & (r - 1):
            raise ValueError(f"tri_plane_resolution must be a power of two in [8, 1024], got {r}")
        for name in ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max",
                     "feat_channel", "mlp_latent_channel", "tet_res", "image_resolution",
                     "img_channels"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive whole number, got {v!r}")
        if self.n_implicit_layer < 0:
            raise ValueError("n_implicit_layer must be >= 0")
        if not 4 <= self.tet_res <= 256:
            raise ValueError(f"tet_res must be in [4, 256], got {self.tet_res}")
        for name in ("dmtet_scale", "deformation_multiplier", "mapping_lr_multiplier"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v}")
        if self.channel_base // r < 1:
            raise ValueError(f"channel_base {self.channel_base} gives no channels at {r} px")

    @property
    def resolution(self) -> int:  # what GeneratorConfig's block helpers read
        return self.tri_plane_resolution

    def channels(self, res: int) -> int:
        """Feature maps of the tri-plane block at resolution ``res``."""
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_ws_tri_plane_geo(self) -> int:
        """Geometry ws of the tri-plane: [conv0, conv1, togeo] per block ([conv1, togeo] in
        the 4x4 block), not shared between blocks."""
        return 3 * len(self.block_resolutions) - 1

    @property
    def num_ws_tri_plane_tex(self) -> int:
        """Texture ws of the tri-plane: one ``totex`` per block."""
        return len(self.block_resolutions)

    @property
    def num_ws_geo(self) -> int:
        """Tri-plane geometry ws, then one per implicit layer (shared by the SDF and the
        deformation MLP): 22 for the release."""
        return self.num_ws_tri_plane_geo + self.n_implicit_layer + 1

    @property
    def num_ws_tex(self) -> int:
        """Tri-plane texture ws, then one per layer of the texture MLP (the last one also
        styles to_rgb): 9 for the release."""
        return self.num_ws_tri_plane_tex + self.n_implicit_layer + 1

    @property
    def num_ws(self) -> int:
        """The texture branch's count (``mapping``'s); see :attr:`num_ws_geo` for geometry."""
        return self.num_ws_tex
