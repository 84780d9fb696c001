"""nvdiffrast backend: a thin wrapper over ``nvdiffrast.torch`` for CUDA machines.

Imported only when :func:`dyntet.render.raster.resolve_backend` picks it, because nvdiffrast is an
optional extra built from its own repository. nvdiffrast already follows the conventions of our API
(clip space, ``(u, v, z/w, triangle_id + 1)``, analytic silhouette antialiasing), so the wrapper only
adapts dtypes, keeps one CUDA rasterizer context per device and caches the topology hash.
"""

from __future__ import annotations

import torch

import nvdiffrast.torch as dr

from .raster_topology import MeshTopology

_contexts: dict[torch.device, "dr.RasterizeCudaContext"] = {}


def _context(device: torch.device) -> "dr.RasterizeCudaContext":
    if device not in _contexts:
        _contexts[device] = dr.RasterizeCudaContext(device=device)
    return _contexts[device]


def rasterize(clip_bv4: torch.Tensor, tris_f3: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
    rast, _ = dr.rasterize(_context(clip_bv4.device), clip_bv4.float().contiguous(),
                           tris_f3.int().contiguous(), resolution=[int(resolution[0]), int(resolution[1])])
    return rast


def interpolate(attr_bvc: torch.Tensor, rast_bhw4: torch.Tensor, tris_f3: torch.Tensor) -> torch.Tensor:
    attr = attr_bvc[0] if attr_bvc.shape[0] == 1 else attr_bvc  # [V, C] broadcasts over the batch
    out, _ = dr.interpolate(attr.float().contiguous(), rast_bhw4, tris_f3.int().contiguous())
    return out


def antialias(color_bhwc: torch.Tensor, rast_bhw4: torch.Tensor, clip_bv4: torch.Tensor,
              tris_f3: torch.Tensor, topology: MeshTopology) -> torch.Tensor:
    tris = tris_f3.int().contiguous()
    key = f"nvdiffrast:{tris.device}"
    if key not in topology.backend_cache:
        topology.backend_cache[key] = dr.antialias_construct_topology_hash(tris)
    return dr.antialias(color_bhwc.float().contiguous(), rast_bhw4, clip_bv4.float().contiguous(), tris,
                        topology_hash=topology.backend_cache[key])
