"""Semantic edit directions in W: found in closed form from the generator's weights (SeFa),
by PCA of mapped samples (GANSpace), or downloaded (InterFaceGAN's boundaries, e4e's
directions and GANSpace PCA), and applied to W+ codes (:func:`apply_direction`)."""

from i2s.directions.apply import apply_direction
from i2s.directions.direction import Direction, DirectionSet
from i2s.directions.files import load_direction_file, load_pca_file
from i2s.directions.ganspace import ganspace
from i2s.directions.resolve import available_directions, resolve_direction
from i2s.directions.sefa import modulated_layers, sefa

__all__ = ["Direction", "DirectionSet", "apply_direction", "available_directions",
           "ganspace", "load_direction_file", "load_pca_file", "modulated_layers",
           "resolve_direction", "sefa"]
