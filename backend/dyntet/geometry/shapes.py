"""Analytic signed distance functions with known area and volume.

Why: they give the marching-tets tests and benchmarks ground truth, and a sphere is the usual starting
SDF of a tet-grid model. Every function maps float [N, 3] points to float [N] distances (negative inside).
"""

from __future__ import annotations

import math

import torch


def sphere_sdf(points: torch.Tensor, radius: float, centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
               ) -> torch.Tensor:
    """Exact distance to a sphere. Area ``4 pi r^2``, volume ``4/3 pi r^3``."""
    _check(points)
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    return (points - points.new_tensor(centre)).norm(dim=-1) - radius


def torus_sdf(points: torch.Tensor, major: float, minor: float) -> torch.Tensor:
    """Exact distance to a torus around the y axis through the origin.

    Area ``4 pi^2 R r``, volume ``2 pi^2 R r^2`` for major radius R > minor radius r > 0.
    """
    _check(points)
    if not 0 < minor < major:
        raise ValueError(f"need 0 < minor < major, got minor={minor}, major={major}")
    ring = torch.stack([points[:, [0, 2]].norm(dim=-1) - major, points[:, 1]], -1)
    return ring.norm(dim=-1) - minor


def sphere_area(radius: float) -> float:
    return 4.0 * math.pi * radius ** 2


def sphere_volume(radius: float) -> float:
    return 4.0 / 3.0 * math.pi * radius ** 3


def torus_area(major: float, minor: float) -> float:
    return 4.0 * math.pi ** 2 * major * minor


def torus_volume(major: float, minor: float) -> float:
    return 2.0 * math.pi ** 2 * major * minor ** 2


def _check(points: torch.Tensor) -> None:
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be [N, 3], got {list(points.shape)}")
