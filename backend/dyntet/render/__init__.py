"""Differentiable rasterisation (CPU and nvdiffrast backends), textures, lighting and PBR shading."""
