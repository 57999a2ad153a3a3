"""GET3D (Gao et al. 2022): a generator of textured 3D meshes with two latent branches."""
