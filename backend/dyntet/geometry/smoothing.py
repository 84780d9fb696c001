"""Taubin smoothing of marching-tets meshes as a fixed linear map, applied inside the model.

Marching tets on a coarse grid places each vertex on a lattice edge, so even a smooth SDF gives a mesh
whose face normals zig-zag with the lattice (visible in shading and in every imported frame). Taubin's
λ|μ filter (Taubin, "A signal processing approach to fair surface design", SIGGRAPH 1995) removes that
high-frequency crease pattern without shrinking the shape the way plain Laplacian passes do. It is
linear in the vertex positions with weights fixed by the faces, so it keeps DynTet's one-topology
property, commutes with the per-frame decode (the same map for every frame) and is differentiable:
the networks learn the surface *after* smoothing. Each pass is one sparse product; the operator is
built once per topology, in CSR with its transpose for the backward pass (autograd through a COO
``torch.sparse.mm`` was 7× slower on the CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import warnings

import torch

LAMBDA, MU = 0.5, -0.53
"""Taubin's pass weights (the pass band sits at k ≈ 0.1; μ < −λ keeps the volume)."""


@dataclass(frozen=True)
class TaubinSmoothing:
    """``passes`` λ|μ pairs of the uniform Laplacian of a mesh with ``num_vertices`` vertices."""

    neighbour_mean: torch.Tensor
    """float sparse CSR [E, E]: row i averages the one-ring neighbours of vertex i."""
    neighbour_mean_t: torch.Tensor
    """Its transpose (CSR), for the backward pass."""
    passes: int

    def __call__(self, vertices: torch.Tensor) -> torch.Tensor:
        """vertices float [E, 3] or [B, E, 3] → the same shape, smoothed."""
        if self.passes == 0:
            return vertices
        batched = vertices.dim() == 3
        x = vertices if batched else vertices[None]
        b, e, c = x.shape
        flat = x.permute(1, 0, 2).reshape(e, b * c)                                 # [E, B·3]
        for _ in range(self.passes):
            for weight in (LAMBDA, MU):
                mean = _SparseProduct.apply(flat, self.neighbour_mean, self.neighbour_mean_t)
                flat = flat + weight * (mean - flat)
        out = flat.reshape(e, b, c).permute(1, 0, 2)
        return out if batched else out[0]


class _SparseProduct(torch.autograd.Function):
    """matrix @ x with the gradient matrixᵀ @ grad (both CSR, built once)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, matrix: torch.Tensor, transpose: torch.Tensor) -> torch.Tensor:
        ctx.transpose = transpose
        return matrix @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.transpose @ grad, None, None


def taubin_smoothing(faces: torch.Tensor, num_vertices: int, passes: int,
                     dtype: torch.dtype = torch.float32) -> TaubinSmoothing:
    """The smoothing operator of a triangle mesh (faces int [F, 3]); isolated vertices stay put.

    Built straight in CSR (training rebuilds it whenever the topology changes, i.e. most steps): the
    sorted unique directed-edge keys are already CSR order, and the edge set is symmetric, so the
    transpose has the same pattern with each entry weighted by its column's degree instead of its row's.
    """
    faces = faces.to(torch.int64)
    rows = torch.cat([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    cols = torch.cat([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    key = torch.unique(rows * num_vertices + cols)                     # each directed edge once, sorted
    degree = torch.bincount(key // num_vertices, minlength=num_vertices)
    isolated = (degree == 0).nonzero()[:, 0]
    if len(isolated):                                                  # a 1 on their diagonal
        key = torch.sort(torch.cat([key, isolated * (num_vertices + 1)])).values
    rows, cols = key // num_vertices, key % num_vertices
    weight = 1.0 / degree.clamp(min=1).to(dtype)                       # isolated: degree 0 → weight 1
    crow = torch.zeros(num_vertices + 1, dtype=torch.int64, device=faces.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=num_vertices), 0)
    size = (num_vertices, num_vertices)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
        warnings.simplefilter("ignore", UserWarning)
        matrix = torch.sparse_csr_tensor(crow, cols, weight[rows], size)
        transpose = torch.sparse_csr_tensor(crow, cols, weight[cols], size)
    return TaubinSmoothing(matrix, transpose, passes)
