"""Files in and out: images, videos, grids, image metrics and atomic file writing."""
