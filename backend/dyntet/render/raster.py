"""Differentiable triangle rasterization: ``rasterize`` → ``interpolate`` → ``antialias``.

The three ops mirror nvdiffrast's torch ops (Laine et al., "Modular Primitives for High-Performance
Differentiable Rendering", SIGGRAPH Asia 2020) with the same conventions, so the CUDA backend is a thin
wrapper and the CPU backend is a drop-in replacement:

* Clip space as OpenGL: ``clip_pos = (x, y, z, w)``, NDC = xyz / w. NDC x points right and **image row 0
  is NDC y = -1** (:func:`dyntet.render.camera.projection` puts the top of the image there, so images
  come out upright). Pixel ``(row r, col c)`` samples NDC ``((c + 0.5) / W * 2 - 1, (r + 0.5) / H * 2 - 1)``.
* Both windings are drawn (no culling). The nearest surface (smallest z/w) wins; on the CPU backend
  exact ties go to the smaller triangle index and a top-left style fill rule gives each pixel centre
  on a shared edge or vertex to exactly one triangle.
* Triangles are clipped at the camera plane (``w <= 1e-6`` is behind the camera): wholly hidden ones
  vanish, crossing ones keep their visible part. The near/far planes act per pixel: only
  ``-1 <= z/w <= 1`` is drawn.

Gradients: ``rast[..., :3]`` = (u, v, z/w) is differentiable w.r.t. ``clip_pos`` (visibility itself is
piecewise constant); ``interpolate`` is differentiable w.r.t. ``attr`` and, through ``rast``,
``clip_pos``; ``antialias`` gives gradients w.r.t. ``color`` and ``clip_pos`` at silhouettes — the only
way a silhouette (mask) loss can move geometry.

Backends: ``"cpu"`` (numba + torch, always present; see :mod:`.raster_cpu`) and ``"nvdiffrast"`` (CUDA,
optional extra). ``"auto"`` picks nvdiffrast for CUDA tensors when it imports, else the CPU backend,
and says once in the log which one runs.

Example (one triangle covering three pixels of a 2×2 image):
    >>> clip = torch.tensor([[-1.0, -1.0, 0.0, 1.0], [1.5, -1.0, 0.0, 1.0], [-1.0, 1.5, 0.0, 1.0]])
    >>> tris = torch.tensor([[0, 1, 2]])
    >>> rast = rasterize(clip, tris, (2, 2), backend="cpu")
    >>> rast[0, ..., 3].tolist()   # triangle id + 1 per pixel; 0 = background
    [[1.0, 1.0], [1.0, 0.0]]
    >>> [round(x, 6) for x in rast[0, 0, 0, :3].tolist()]   # (u, v, z/w) at NDC (-0.5, -0.5)
    [0.6, 0.2, 0.0]
    >>> round(interpolate(torch.tensor([[10.0], [20.0], [30.0]]), rast, tris)[0, 0, 0].item(), 4)
    16.0
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from types import ModuleType
from typing import Literal

import torch

from .raster_topology import MeshTopology, build_topology
from .raster_visibility import MAX_RESOLUTION

__all__ = ["BackendName", "MeshTopology", "available_backends", "build_topology", "resolve_backend",
           "rasterize", "interpolate", "antialias"]

BackendName = Literal["auto", "cpu", "nvdiffrast"]
BACKENDS: tuple[str, ...] = ("cpu", "nvdiffrast")
MAX_TRIANGLES_FLOAT32 = 1 << 24
"""Triangle ids are stored as floats in ``rast[..., 3]``; float32 holds integers exactly up to 2**24."""

_log = logging.getLogger(__name__)
_announced: set[str] = set()


def available_backends() -> list[str]:
    """Backends usable on this machine: always ``"cpu"``; ``"nvdiffrast"`` with CUDA and the package."""
    names = ["cpu"]
    if torch.cuda.is_available() and importlib.util.find_spec("nvdiffrast") is not None:
        names.append("nvdiffrast")
    return names


def resolve_backend(name: str = "auto", device: torch.device | str | None = None) -> str:
    """Turn ``"auto"`` into a concrete backend name and check that an explicit choice can run.

    Args:
        name: ``"auto"``, ``"cpu"`` or ``"nvdiffrast"``.
        device: device of the tensors to render; ``"auto"`` only picks nvdiffrast for CUDA devices
            (``None`` means "CUDA if the machine has it").

    Raises:
        ValueError: unknown name. RuntimeError: nvdiffrast requested but CUDA or the package is missing.
    """
    if name not in ("auto", *BACKENDS):
        choices = ", ".join(repr(b) for b in ("auto", *BACKENDS))
        raise ValueError(f"unknown rasterizer backend {name!r}; expected one of {choices}")
    if name == "cpu":
        return "cpu"
    wants_cuda = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    if name == "nvdiffrast":
        if not torch.cuda.is_available():
            raise RuntimeError("the nvdiffrast rasterizer needs CUDA, and torch sees no CUDA device; use backend='cpu'")
        _import_backend("nvdiffrast")
        return "nvdiffrast"
    if wants_cuda and torch.cuda.is_available():
        try:
            _import_backend("nvdiffrast")
            return "nvdiffrast"
        except RuntimeError as err:
            if "fallback" not in _announced:
                _announced.add("fallback")
                _log.warning("CUDA is available but %s; rendering with the CPU rasterizer instead, which is "
                             "far slower and copies visibility through host memory", err)
    return "cpu"


def rasterize(clip_pos: torch.Tensor, tris: torch.Tensor, resolution: tuple[int, int], *,
              backend: BackendName = "auto") -> torch.Tensor:
    """Rasterize triangles: which triangle each pixel sees, where on it, and how deep.

    Args:
        clip_pos: float32/float64 [B, V, 4] (or [V, 4], treated as B = 1) clip-space vertex positions.
        tris: int32/int64 [F, 3] vertex indices into V.
        resolution: (H, W) image size in pixels.
        backend: see :func:`resolve_backend`.

    Returns:
        float [B, H, W, 4] = (u, v, z/w, triangle_id + 1), dtype of ``clip_pos`` (float32 on nvdiffrast).
        (u, v) are the perspective-correct barycentric weights of the triangle's vertices 0 and 1
        (vertex 2 has 1 - u - v); all four channels are 0 where no triangle is drawn.
    """
    clip_bv4 = _check_clip(clip_pos, "clip_pos")
    tris_f3 = _check_tris(tris, clip_bv4.shape[1], clip_bv4.device)
    height, width = _check_resolution(resolution)
    if clip_bv4.dtype == torch.float32 and tris_f3.shape[0] >= MAX_TRIANGLES_FLOAT32:
        raise ValueError(f"{tris_f3.shape[0]} triangles cannot be identified exactly in float32 "
                         f"(limit {MAX_TRIANGLES_FLOAT32 - 1}); pass float64 clip positions")
    return _backend(backend, clip_bv4.device).rasterize(clip_bv4, tris_f3, (height, width))


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tris: torch.Tensor, *,
                backend: BackendName = "auto") -> torch.Tensor:
    """Interpolate vertex attributes over the rasterized image.

    Args:
        attr: float [B, V, C], or [V, C] shared by every image of the batch.
        rast: float [B, H, W, 4] from :func:`rasterize`.
        tris: int [F, 3], the triangles given to :func:`rasterize`.

    Returns:
        float [B, H, W, C]: ``u·attr[t0] + v·attr[t1] + (1 - u - v)·attr[t2]`` per pixel, 0 on background.
        Differentiable w.r.t. ``attr`` and ``rast[..., :2]`` (hence the clip positions).
    """
    rast_bhw4 = _check_rast(rast)
    if not isinstance(attr, torch.Tensor) or not attr.is_floating_point() or attr.dim() not in (2, 3):
        raise ValueError(f"attr must be a float tensor [V, C] or [B, V, C], got {_describe(attr)}")
    attr_bvc = attr[None] if attr.dim() == 2 else attr
    if attr_bvc.shape[0] not in (1, rast_bhw4.shape[0]):
        raise ValueError(f"attr has batch {attr_bvc.shape[0]} but rast has batch {rast_bhw4.shape[0]}; "
                         "use [V, C] to share attributes across the batch")
    _check_same_device(rast_bhw4, attr=attr_bvc)
    tris_f3 = _check_tris(tris, attr_bvc.shape[1], rast_bhw4.device)
    return _backend(backend, rast_bhw4.device).interpolate(attr_bvc, rast_bhw4, tris_f3)


def antialias(color: torch.Tensor, rast: torch.Tensor, clip_pos: torch.Tensor, tris: torch.Tensor, *,
              topology: MeshTopology | None = None, backend: BackendName = "auto") -> torch.Tensor:
    """Antialias silhouette edges analytically, with gradients w.r.t. colour and clip positions.

    Wherever two neighbouring pixels (horizontal or vertical) see different surfaces and a silhouette
    edge of the front surface crosses the segment between their centres at fraction ``t`` from the
    front pixel, the front surface is taken to cover the pair up to that crossing: if ``t > 1/2`` the
    other pixel receives ``(t - 1/2)`` of the front colour, else the front pixel receives ``(1/2 - t)``
    of the other colour. Silhouette edges are mesh boundaries and edges whose two triangles fold onto
    one side in the image. Composite the background into ``color`` first so it blends too.

    Args:
        color: float [B, H, W, C] shaded image.
        rast: float [B, H, W, 4] from :func:`rasterize` with the same ``clip_pos`` and ``tris``.
        clip_pos: float [B, V, 4] (or [V, 4]) clip positions.
        tris: int [F, 3] triangles.
        topology: adjacency from :func:`build_topology`; built on the fly when None (an O(F) pass per
            call; pass it explicitly while the faces stay the same).
        backend: see :func:`resolve_backend`.

    Returns:
        float [B, H, W, C] antialiased colour.
    """
    rast_bhw4 = _check_rast(rast)
    if not isinstance(color, torch.Tensor) or not color.is_floating_point() or color.dim() != 4 \
            or color.shape[:3] != rast_bhw4.shape[:3]:
        raise ValueError(f"color must be a float tensor [B, H, W, C] matching rast {tuple(rast_bhw4.shape[:3])}, "
                         f"got {_describe(color)}")
    clip_bv4 = _check_clip(clip_pos, "clip_pos")
    if clip_bv4.shape[0] not in (1, rast_bhw4.shape[0]):
        raise ValueError(f"clip_pos has batch {clip_bv4.shape[0]} but rast has batch {rast_bhw4.shape[0]}")
    clip_bv4 = clip_bv4.expand(rast_bhw4.shape[0], -1, -1)
    _check_same_device(rast_bhw4, color=color, clip_pos=clip_bv4)
    tris_f3 = _check_tris(tris, clip_bv4.shape[1], rast_bhw4.device)
    if topology is None:
        topology = build_topology(tris_f3, clip_bv4.shape[1])
    elif not isinstance(topology, MeshTopology) or topology.num_faces != tris_f3.shape[0]:
        raise ValueError(f"topology was built for {getattr(topology, 'num_faces', '?')} triangles but tris has "
                         f"{tris_f3.shape[0]}; rebuild it with build_topology(tris) when the faces change")
    return _backend(backend, rast_bhw4.device).antialias(color, rast_bhw4, clip_bv4, tris_f3, topology)


def _backend(name: str, device: torch.device) -> ModuleType:
    resolved = resolve_backend(name, device)
    module = _import_backend(resolved)
    if resolved not in _announced:
        _announced.add(resolved)
        what = {"cpu": "numba visibility + torch autograd on the CPU",
                "nvdiffrast": "nvdiffrast CUDA kernels"}[resolved]
        _log.info("rasterizer backend: %s (%s)", resolved, what)
    return module


def _import_backend(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"{__package__}.raster_{name}")
    except (ImportError, OSError) as err:  # only nvdiffrast is optional (OSError: missing CUDA libraries)
        raise RuntimeError(f"the {name} rasterizer backend cannot be imported ({err}); nvdiffrast is an optional "
                           "extra built from https://github.com/NVlabs/nvdiffrast on CUDA machines") from err


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _check_clip(clip_pos: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(clip_pos, torch.Tensor) or not clip_pos.is_floating_point() \
            or clip_pos.dim() not in (2, 3) or clip_pos.shape[-1] != 4:
        raise ValueError(f"{name} must be a float tensor [V, 4] or [B, V, 4] (x, y, z, w), got {_describe(clip_pos)}")
    if not torch.isfinite(clip_pos).all():
        raise ValueError(f"{name} contains NaN or infinite coordinates; a diverged model or a broken camera upstream?")
    return clip_pos[None] if clip_pos.dim() == 2 else clip_pos


def _check_tris(tris: torch.Tensor, num_verts: int, device: torch.device) -> torch.Tensor:
    if not isinstance(tris, torch.Tensor) or tris.dtype not in (torch.int32, torch.int64) \
            or tris.dim() != 2 or tris.shape[1] != 3:
        raise ValueError(f"tris must be an int32/int64 tensor [F, 3], got {_describe(tris)}")
    if tris.device != device:
        raise ValueError(f"tris is on {tris.device} but the other inputs are on {device}")
    if tris.numel():
        lo, hi = int(tris.min()), int(tris.max())
        if lo < 0 or hi >= num_verts:
            raise ValueError(f"tris indexes vertices {lo}..{hi} but there are only {num_verts} vertices")
    return tris.long()


def _check_resolution(resolution: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = (int(r) for r in resolution)
        ok = (height, width) == tuple(resolution)
    except (TypeError, ValueError):
        ok = False
    if not ok or not (0 < height <= MAX_RESOLUTION and 0 < width <= MAX_RESOLUTION):
        raise ValueError(f"resolution must be (H, W) with integer sides in 1..{MAX_RESOLUTION}, got {resolution!r}")
    return height, width


def _check_rast(rast: torch.Tensor) -> torch.Tensor:
    if not isinstance(rast, torch.Tensor) or not rast.is_floating_point() or rast.dim() != 4 or rast.shape[-1] != 4:
        raise ValueError(f"rast must be the float [B, H, W, 4] output of rasterize(), got {_describe(rast)}")
    return rast


def _check_same_device(reference: torch.Tensor, **tensors: torch.Tensor) -> None:
    for name, tensor in tensors.items():
        if tensor.device != reference.device:
            raise ValueError(f"{name} is on {tensor.device} but rast is on {reference.device}")
