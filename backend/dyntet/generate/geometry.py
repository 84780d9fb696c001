"""Fast per-frame geometry of a trained avatar: everything frame-independent computed once.

``DynTet.meshes`` is written for training: it re-evaluates f1 on the used grid points and f2's position
half on every call, and it decodes through the generic Eq. 6 path. Generation drives a *fixed* model, so
the topology (signs of f1), the used grid points, their SDF and elastic scores, f2's position code and
the undeformed mesh (the lerp of the grid points on each crossing edge) never change. :class:`FrozenGeometry`
caches them; per batch of frames only the expression encoder, f2's expression half, the rest of f2 and a
lerp of the offsets remain (paper Eqs. 5–6):

    v_i(t) = lerp(x_a, x_b) + w_a · e_a · f2(x_a, t) + w_b · e_b · f2(x_b, t)

with ``(a, b)`` the crossing edge of mesh vertex ``i`` and ``w_a, w_b`` the SDF weights. Head-space
scale and offset are folded into the cached terms, so a frame costs one broadcast add, the f2 GEMMs and
one gather. Faces come from the cached topology, so they are bit-identical for every frame by construction.

The expression encoder's 1-D convolutions are evaluated as unfold + GEMM (:func:`encode_expression`): on
CPUs PyTorch's convolution kernels spend 15–90 ms on a [16, 8, 27] window batch, the GEMMs about 1 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn

from dyntet.geometry.marching import MarchingTopology, topology
from dyntet.model.dyntet import DynTet, Meshes

DEFAULT_MAX_ROWS = 1 << 17
"""Frames × points evaluated by f2 at once: bounds the hidden activations to ≈ 64 MB at width 128
(chunks of 2^15–2^18 rows timed within noise of each other on 2 cores)."""


@dataclass
class FrozenGeometry:
    """The frame-independent part of a trained avatar's geometry, and a fast per-frame decoder.

    Build with :meth:`from_model` (or :meth:`from_sdf` when the grid SDF is already known). All tensors
    live on the model's device; positions are in head space (metres).

    Attributes:
        model: the avatar (its expression encoder and f2 are evaluated per frame).
        topology: the marching-tets topology of f1's signs (full grid indexing).
        faces: int64 [F, 3] triangles over the E mesh vertices, counter-clockwise seen from outside.
        base: float32 [E, 3] head-space mesh vertices without offsets (the lerp of the grid points).
        edge_a, edge_b: int64 [E] indices into the U used grid points of each crossing edge's ends.
        gain_a, gain_b: float32 [E, 1] ``w · e · max_offset / scale``: SDF weight × elastic score × the
            tanh bound, in metres per unit of ``tanh``.
        position_code: float32 [U, H] f2's first layer on the positional encoding (bias included).
        canonical: float32 [E, 3] the mesh at the mean expression ᾱ (Eq. 8).
        motion: float32 [E, K, 3] the face model's motion at each mesh vertex, metres per unit of α
            (``w_a · B(x_a) + w_b · B(x_b)``, :mod:`dyntet.model.face_motion`), or None without it.
    """

    model: DynTet
    topology: MarchingTopology
    faces: torch.Tensor
    base: torch.Tensor
    edge_a: torch.Tensor
    edge_b: torch.Tensor
    gain_a: torch.Tensor
    gain_b: torch.Tensor
    position_code: torch.Tensor
    canonical: torch.Tensor
    motion: torch.Tensor | None = None

    @classmethod
    def from_model(cls, model: DynTet) -> FrozenGeometry:
        """Evaluate f1 on the whole grid once and cache everything that does not depend on the frame."""
        return cls.from_sdf(model, model.sdf())

    @classmethod
    @torch.inference_mode()
    def from_sdf(cls, model: DynTet, sdf: torch.Tensor) -> FrozenGeometry:
        """Like :meth:`from_model` with the grid SDF given: float [V] grid units, negative inside.

        Elastic scores still come from f1 (evaluated on the used points only). Useful when the SDF is
        already at hand (``model.sdf()`` was computed elsewhere) or for benchmarks on a prescribed shape.

        Raises:
            ValueError: the SDF has no zero crossing inside the grid (no surface to decode).
        """
        if sdf.shape != (model.grid_vertices.shape[0],):
            raise ValueError(f"sdf must have one value per grid vertex ([{model.grid_vertices.shape[0]}]), "
                             f"got {list(sdf.shape)}")
        sdf = sdf.to(model.grid_vertices)
        topo = topology(model.grid, sdf)
        if topo.num_faces == 0:
            raise ValueError("the avatar's SDF has no surface inside its grid (f1 is all inside or all "
                             "outside): the run is not trained, or its checkpoint is broken")
        used, local = topo.compact()
        points = model.grid_vertices[used]
        sdf_used = sdf[used]
        _, elastic = model.geometry.sdf_elastic(points)
        position_code = model.geometry.position_code(points).contiguous()
        a, b = local.edge_vertices[:, 0], local.edge_vertices[:, 1]
        s_a, s_b = sdf_used[a], sdf_used[b]
        w_b = (s_a / (s_a - s_b))[:, None]
        w_a = 1 - w_b
        to_grid = model.head_to_grid
        base = to_grid.inverse(w_a * points[a] + w_b * points[b])
        unit = model.config.geometry.max_offset / float(to_grid.scale)
        motion = None
        if model.grid_motion is not None:
            basis = model.grid_motion.gather(used)                                      # [U, K, 3] grid units
            motion = ((w_a[:, :, None] * basis[a] + w_b[:, :, None] * basis[b]) / float(to_grid.scale)).contiguous()
        geometry = cls(model=model, topology=topo, faces=topo.faces, base=base.contiguous(), edge_a=a, edge_b=b,
                       gain_a=(w_a * elastic[a, None] * unit).contiguous(),
                       gain_b=(w_b * elastic[b, None] * unit).contiguous(),
                       position_code=position_code, canonical=base, motion=motion)
        geometry.canonical = geometry.vertices(model.mean_window())[0]
        return geometry

    # -- sizes ---------------------------------------------------------------------------------------
    @property
    def num_vertices(self) -> int:
        """E, mesh vertices per frame."""
        return int(self.base.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def num_points(self) -> int:
        """U, the grid points f2 runs on (the ends of the crossing edges)."""
        return int(self.position_code.shape[0])

    def faces_int32(self) -> np.ndarray:
        """int32 [F, 3] faces as numpy (the sequence-folder dtype)."""
        return self.faces.to(torch.int32).cpu().numpy()

    # -- per frame -------------------------------------------------------------------------------------
    @torch.inference_mode()
    def vertices(self, windows: torch.Tensor, max_rows: int = DEFAULT_MAX_ROWS) -> torch.Tensor:
        """Head-space mesh vertices of B frames.

        Args:
            windows: float [B, W, K] expression windows (see :func:`dyntet.model.dyntet.expression_windows`).
            max_rows: frames × points evaluated at once (memory bound; results do not depend on it).

        Returns:
            float32 [B, E, 3], head space, metres.
        """
        geo = self.model.geometry
        expected = (self.model.config.geometry.expression_window, self.model.mean_expression.shape[0])
        if windows.dim() != 3 or tuple(windows.shape[1:]) != expected:
            raise ValueError(f"windows must be [B, {expected[0]}, {expected[1]}] (window, coefficients), "
                             f"got {list(windows.shape)}")
        windows = windows.to(self.base)
        expression = geo.f2_expression(encode_expression(geo.expression_encoder, windows))  # [B, H]
        delta = self.model.expression_delta(windows) if self.motion is not None else None
        per_chunk = max(1, max_rows // max(self.num_points, 1))
        out = torch.empty(windows.shape[0], self.num_vertices, 3, dtype=self.base.dtype, device=self.base.device)
        for start in range(0, windows.shape[0], per_chunk):
            stop = min(start + per_chunk, windows.shape[0])
            out[start:stop] = self._decode(self._f2_tanh(expression[start:stop]),
                                           None if delta is None else delta[start:stop])
        return out

    def _f2_tanh(self, expression: torch.Tensor) -> torch.Tensor:
        """tanh of f2's last layer for B frames: expression float [B, H] → float [B, U, 3]."""
        batch, width = expression.shape
        hidden = (self.position_code[None] + expression[:, None]).reshape(-1, width)     # [B·U, H]
        rest = self.model.geometry.f2_rest
        relu = isinstance(rest.activation, nn.ReLU)
        hidden = hidden.relu_() if relu else rest.activation(hidden)
        for layer in rest.layers[:-1]:
            hidden = torch.addmm(layer.bias, hidden, layer.weight.t())
            hidden = hidden.relu_() if relu else rest.activation(hidden)
        last = rest.layers[-1]
        out = rest.output_activation(torch.addmm(last.bias, hidden, last.weight.t()))
        return out.tanh_().reshape(batch, -1, 3)

    def _decode(self, tanh_offsets: torch.Tensor, expression_delta: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 6 with cached weights: float [B, U, 3] (and α − ᾱ float [B, K] with face motion) →
        float [B, E, 3] head space."""
        at_a = tanh_offsets.index_select(1, self.edge_a)
        at_b = tanh_offsets.index_select(1, self.edge_b)
        verts = torch.addcmul(torch.addcmul(self.base, self.gain_a, at_a), self.gain_b, at_b)
        if self.motion is not None and expression_delta is not None:
            verts = verts + torch.einsum("bk,ekd->bed", expression_delta, self.motion)
        return self.model.smoothing(self.topology)(verts)  # affine-invariant: head space is fine

    def iter_vertices(self, windows: torch.Tensor, batch: int = 16) -> Iterator[torch.Tensor]:
        """:meth:`vertices` in batches of ``batch`` frames: yields float32 [b, E, 3] (b ≤ batch)."""
        if batch < 1:
            raise ValueError(f"batch must be a positive number of frames, got {batch}")
        for start in range(0, windows.shape[0], batch):
            yield self.vertices(windows[start:start + batch])

    def meshes(self, windows: torch.Tensor) -> Meshes:
        """The same frames as a :class:`~dyntet.model.dyntet.Meshes`, ready for ``DynTet.render``."""
        return Meshes(faces=self.faces, vertices=self.vertices(windows), canonical=self.canonical,
                      topology=self.topology)


def encode_expression(encoder: nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """The expression encoder's features float [B, D] for windows float [B, W, K].

    :class:`dyntet.model.networks.ExpressionEncoder` already runs its convolutions as GEMMs, so this
    is a plain call kept as the one place generation encodes expressions.
    """
    return encoder(windows)
