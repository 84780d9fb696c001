"""The DynTet avatar: geometry (f1, f2 on a tet grid → meshes with one topology), appearance G, light.

Paper: Zhang et al., "Learning Dynamic Tetrahedra for High-Quality Talking Head Synthesis", CVPR 2024.
Dataflow for a batch of B frames:

1. f1 on every grid vertex → SDF s, elastic e; marching-tets topology from sign(s) (no gradient).
2. f2 only on the grid vertices that touch crossing edges; Δv = e · f2 (Eq. 5), plus, when configured,
   the face model's own motion carried into the grid (:mod:`dyntet.model.face_motion`); per-frame mesh
   vertices by the lerp of Eq. 6 — faces are the same for every frame.
3. The canonical mesh is the same decode at the mean expression ᾱ (Eq. 8).
4. Rasterise each frame's mesh, interpolate canonical positions (canonical projection), query G there,
   shade with the learned cube-map light (split-sum GGX, Eqs. 10–12), composite over the background and
   antialias the silhouettes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dyntet.formats.dataset import FaceModel
from dyntet.geometry.marching import MarchingTopology, decode, topology
from dyntet.geometry.mesh import vertex_normals
from dyntet.geometry.smoothing import TaubinSmoothing, taubin_smoothing
from dyntet.geometry.tetgrid import tet_grid
from dyntet.model.config import ModelConfig
from dyntet.model.face_motion import FaceMotionField, GridFaceMotion, motion_offsets
from dyntet.model.face_prior import HeadToGrid, head_frame
from dyntet.model.networks import AppearanceNetwork, GeometryNetwork
from dyntet.render import raster
from dyntet.render.camera import projection, to_clip
from dyntet.render.light import CubeMapLight, LightConfig as CubeLightConfig
from dyntet.render.pbr import shade


@dataclass
class Meshes:
    """Meshes of B frames sharing one topology (head space, metres).

    ``faces`` int64 [F, 3]; ``vertices`` float [B, E, 3]; ``canonical`` float [E, 3] (mesh at ᾱ);
    ``topology`` the marching-tets topology the faces come from.
    """

    faces: torch.Tensor
    vertices: torch.Tensor
    canonical: torch.Tensor
    topology: MarchingTopology
    features: torch.Tensor | None = None
    """float [B, D]: the expression encoder's output for the B frames (reused by rendering and losses)."""


@dataclass
class RenderOutput:
    """Per-pixel results, all float [B, H, W, C]: ``rgb`` (composited, antialiased, linear), ``alpha``
    (antialiased head coverage, C=1), ``normals`` (head space, C=3), ``kd`` and ``orm`` (C=3)."""

    rgb: torch.Tensor
    alpha: torch.Tensor
    normals: torch.Tensor
    kd: torch.Tensor
    orm: torch.Tensor


def expression_windows(expression: torch.Tensor, frames: torch.Tensor, window: int) -> torch.Tensor:
    """Windows of α around each frame with clamped edges.

    Args:
        expression: float [N, K], a whole clip.
        frames: int64 [B] indices into the clip.
        window: odd number of frames W.
    Returns:
        float [B, W, K].
    """
    half = window // 2
    offsets = torch.arange(-half, half + 1, device=frames.device)
    idx = (frames[:, None] + offsets[None]).clamp(0, expression.shape[0] - 1)
    return expression[idx]


class _DerivedCache(dict):
    """Operators derived from a topology (rebuilt on demand): a copied model starts without them, since
    sparse CSR tensors cannot be deep-copied and a copy may change its configuration."""

    def __deepcopy__(self, memo) -> "_DerivedCache":
        return _DerivedCache()


class DynTet(nn.Module):
    """A person-specific DynTet avatar.

    Args:
        config: the model configuration.
        face_model: the subject's linear face model (places the grid and initialises the SDF).
        mean_expression: float [K], ᾱ over the training frames.
        expression_std: float [K], per-coefficient standard deviation over the training frames (the
            expression encoder standardises its input with ᾱ and this).
    """

    def __init__(self, config: ModelConfig, face_model: FaceModel, mean_expression: np.ndarray,
                 expression_std: np.ndarray | None = None) -> None:
        super().__init__()
        self.config = config
        geo = config.geometry
        num_expression = face_model.num_expression
        self.geometry = GeometryNetwork(geo, num_expression)
        self.geometry.expression_encoder.set_input_statistics(
            torch.as_tensor(mean_expression),
            torch.as_tensor(expression_std if expression_std is not None else np.ones(num_expression)))
        self.appearance = AppearanceNetwork(config.appearance, geo.expression_feature_dim)
        res = config.light.cube_resolution
        self.light = CubeMapLight(CubeLightConfig(base_resolution=res, min_resolution=min(16, res),
                                                  irradiance_resolution=min(16, res)))
        frame = head_frame(face_model, mean_expression, geo.grid_size_m)
        self.register_buffer("grid_center", frame.center.clone())
        self.register_buffer("mean_expression", torch.as_tensor(mean_expression, dtype=torch.float32))
        self.grid = tet_grid(geo.grid_resolution)
        self.register_buffer("grid_vertices", self.grid.vertices.clone(), persistent=False)
        self.face_motion: FaceMotionField | None = None
        self.grid_motion: GridFaceMotion | None = None
        if geo.face_motion_reach_m > 0:
            self.face_motion = FaceMotionField(face_model, mean_expression, frame, geo.face_motion_reach_m)
            self.grid_motion = GridFaceMotion(self.face_motion, self.grid_vertices)

    def smoothing(self, topo: MarchingTopology) -> TaubinSmoothing:
        """The model's mesh smoothing for one topology (built once per topology)."""
        cache = self._topology_cache()
        cached = cache.get("smoothing")
        if cached is None or cached[0] is not topo:
            cached = (topo, taubin_smoothing(topo.faces, topo.num_vertices, self.config.geometry.smoothing_passes))
            cache["smoothing"] = cached
        return cached[1]

    def adjacency(self, meshes: Meshes) -> raster.MeshTopology:
        """Face adjacency of ``meshes`` (antialiasing, the normal-consistency loss), built once per topology."""
        cache = self._topology_cache()
        cached = cache.get("adjacency")
        if meshes.topology is None or cached is None or cached[0] is not meshes.topology:
            cached = (meshes.topology, raster.build_topology(meshes.faces, meshes.vertices.shape[-2]))
            cache["adjacency"] = cached
        return cached[1]

    def _topology_cache(self) -> "_DerivedCache":
        return self.__dict__.setdefault("_derived", _DerivedCache())

    def _apply(self, fn, recurse=True):  # keep the (non-module) grid on the model's device
        super()._apply(fn, recurse)
        self.grid = self.grid.to(self.grid_vertices.device)
        return self

    # -- spaces ------------------------------------------------------------------------------
    @property
    def head_to_grid(self) -> HeadToGrid:
        return HeadToGrid(self.grid_center, 1.0 / self.config.geometry.grid_size_m)

    def to_head(self, points: torch.Tensor) -> torch.Tensor:
        return self.head_to_grid.inverse(points)

    # -- geometry ------------------------------------------------------------------------------
    def mean_window(self, batch: int = 1) -> torch.Tensor:
        """The expression window of a frame at ᾱ throughout: float [batch, W, K]."""
        w = self.config.geometry.expression_window
        return self.mean_expression.expand(batch, w, -1)

    def expression_delta(self, windows: torch.Tensor) -> torch.Tensor:
        """α − ᾱ of each window's centre frame: float [B, K]."""
        return windows[:, windows.shape[1] // 2] - self.mean_expression

    def face_motion_at(self, points: torch.Tensor, expression_delta: torch.Tensor) -> torch.Tensor | None:
        """The face model's motion at arbitrary points float [N, 3] (grid space) for α − ᾱ float [B, K]:
        float [B, N, 3] grid units, or None when the model has no face motion."""
        if self.face_motion is None:
            return None
        basis = torch.from_numpy(self.face_motion.basis_at(points.detach().cpu().numpy())).to(points)
        return motion_offsets(basis, expression_delta)

    def sdf(self) -> torch.Tensor:
        """SDF on every grid vertex, without gradient (it only decides the topology): float [V]."""
        with torch.no_grad():
            chunks = [self.geometry.sdf_elastic(p)[0] for p in torch.split(self.grid_vertices, 131072)]
        return torch.cat(chunks)

    def meshes(self, windows: torch.Tensor, topo: MarchingTopology | None = None,
               sdf_all: torch.Tensor | None = None) -> Meshes:
        """Per-frame meshes for expression windows float [B, W, K] (+ the canonical mesh).

        ``topo`` alone reuses a topology (inference); ``topo`` with ``sdf_all`` (float [V], the values
        it was built from) skips the full-grid SDF evaluation (training's :class:`SurfaceCache`).
        Gradients flow to f1 through the SDF values of crossing-edge endpoints, to f2 and the
        expression encoder through the offsets.
        """
        if topo is None:
            sdf_all = self.sdf()
            topo = topology(self.grid, sdf_all)
        used, local_topo = topo.compact()                                      # [U], topology over U
        points = self.grid_vertices[used]
        sdf_used, elastic = self.geometry.sdf_elastic(points)
        if sdf_all is not None:
            # Values exactly as the topology saw them (batching can change the last bits, and a flipped
            # sign would put a vertex off its edge); gradients from this evaluation.
            sdf_used = sdf_all[used] + (sdf_used - sdf_used.detach())
        code = self.geometry.position_code(points)
        features = self.geometry.expression_encoder(torch.cat([windows, self.mean_window()], 0))
        offsets = elastic[None, :, None] * self.geometry.offsets(code, features)  # [B+1, U, 3]
        if self.grid_motion is not None:
            delta = torch.cat([self.expression_delta(windows), torch.zeros_like(self.mean_expression)[None]])
            offsets = offsets + motion_offsets(self.grid_motion.gather(used), delta)
        verts = decode(local_topo, points, sdf_used, offsets, check_signs=False)  # [B+1, E, 3]
        verts = self.to_head(self.smoothing(topo)(verts))
        return Meshes(faces=topo.faces, vertices=verts[:-1], canonical=verts[-1], topology=topo,
                      features=features[:-1])

    # -- appearance ------------------------------------------------------------------------------
    def render(self, meshes: Meshes, windows: torch.Tensor, poses: torch.Tensor, intrinsics: torch.Tensor,
               size: int, background: torch.Tensor) -> RenderOutput:
        """Render B frames.

        Args:
            meshes: from :meth:`meshes` for the same B frames.
            windows: float [B, W, K] expression windows (for G's expression input).
            poses: float [B, 4, 4] head-to-camera.
            intrinsics: float [4] or [B, 4] (fx, fy, cx, cy) in pixels of a ``size``² image.
            background: float [B, H, W, 3] linear RGB shown where the head is not.
        """
        batch = poses.shape[0]
        faces = meshes.faces
        proj = projection(intrinsics.expand(batch, 4), size, size)
        clip = to_clip(meshes.vertices, poses, proj)
        rast = raster.rasterize(clip, faces, (size, size))
        covered = rast[..., 3] > 0                                                   # [B, H, W]

        # Shading happens in head space (as in the paper, the head is fixed and the camera moves), so
        # the learned light is an environment around the head.
        normals = vertex_normals(meshes.vertices, faces)                             # [B, E, 3]
        canonical_attr = meshes.canonical.expand(batch, -1, -1)
        attrs = raster.interpolate(torch.cat([canonical_attr, normals, meshes.vertices], -1), rast, faces)
        # Covered pixels by flat index: gathers and scatters as index_select / index_copy, whose backward
        # passes are a plain index_add / index_select (advanced indexing's backward sorts its indices).
        flat = covered.reshape(-1).nonzero()[:, 0]                                   # [P]
        frame = torch.div(flat, covered.shape[1] * covered.shape[2], rounding_mode="floor")
        at_pixels = attrs.reshape(-1, attrs.shape[-1]).index_select(0, flat)          # [P, 9]
        canon = at_pixels[:, 0:3]
        normal = nn.functional.normalize(at_pixels[:, 3:6], dim=-1)
        position = at_pixels[:, 6:9]
        rotation = poses[:, :3, :3]
        camera_centre = -(rotation.transpose(1, 2) @ poses[:, :3, 3:4])[..., 0]      # [B, 3] head space

        features = meshes.features if meshes.features is not None else self.geometry.expression_encoder(windows)
        kd, orm = self.appearance(self.head_to_grid(canon) + 0.5, features, frame)
        view = nn.functional.normalize(camera_centre.index_select(0, frame) - position, dim=-1)
        color = shade(normal, view, kd, orm, self.light)

        def scatter(values: torch.Tensor) -> torch.Tensor:
            out = values.new_zeros(covered.numel(), values.shape[-1]).index_copy(0, flat, values)
            return out.reshape(*covered.shape, values.shape[-1])

        rgb = torch.where(covered[..., None], scatter(color), background)
        alpha = covered[..., None].to(rgb.dtype)
        both = raster.antialias(torch.cat([rgb, alpha], -1), rast, clip, faces, topology=self.adjacency(meshes))
        return RenderOutput(rgb=both[..., :3], alpha=both[..., 3:4], normals=scatter(normal),
                            kd=scatter(kd), orm=scatter(orm))
