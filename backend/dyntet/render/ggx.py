"""The GGX (Trowbridge–Reitz) microfacet distribution: a deterministic sample set and its terms.

Shared by the light prefilter (:mod:`dyntet.render.light`) and the split-sum table
(:mod:`dyntet.render.pbr`). Roughness r maps to α = r² (Burley 2012). Everything here is NumPy float64:
these are precomputations, not part of the autograd graph. Reference: Walter et al., "Microfacet Models
for Refraction through Rough Surfaces", EGSR 2007; Heitz, "Understanding the Masking-Shadowing
Function in Microfacet-Based BRDFs", JCGT 2014.
"""

from __future__ import annotations

import numpy as np


def hammersley(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D Hammersley point set: ((i + ½)/S, radical inverse of i in base 2), each float64 [S]."""
    i = np.arange(samples)
    second = np.zeros(samples, dtype=np.float64)
    scale, bits = 0.5, i.copy()
    while bits.any():
        second += (bits & 1) * scale
        bits >>= 1
        scale *= 0.5
    return (i + 0.5) / samples, second


def sample_half_vectors(alpha2: float, samples: int) -> np.ndarray:
    """Half vectors distributed ∝ D(h)·(n·h) around n = +Z, from a Hammersley set: float64 [S, 3]."""
    xi1, xi2 = hammersley(samples)
    cos_h = np.sqrt((1 - xi1) / (1 + (alpha2 - 1) * xi1))
    sin_h = np.sqrt(np.clip(1 - cos_h ** 2, 0, None))
    phi = 2 * np.pi * xi2
    return np.stack([sin_h * np.cos(phi), sin_h * np.sin(phi), cos_h], -1)


def sample_visible_normals(view: np.ndarray, alpha: float, samples: int) -> np.ndarray:
    """Microfacet normals distributed ∝ G1(v)·max(0, v·h)·D(h) / (n·v) — the normals *visible* from each
    view — around n = +Z (Heitz, "Sampling the GGX Distribution of Visible Normals", JCGT 2018).

    Args:
        view: float64 [V, 3] unit view directions with positive z.
        alpha: GGX α (= roughness²).
        samples: S, from a Hammersley set (the same for every view).

    Returns:
        float64 [V, S, 3] unit half vectors. For l = reflect(v, h), the estimator of ∫ f·(n·l) dl is
        F·G2(v, l)/G1(v), far less noisy at grazing angles than sampling D(h)·(n·h).
    """
    u1, u2 = hammersley(samples)
    vh = view * np.array([alpha, alpha, 1.0])
    vh /= np.linalg.norm(vh, axis=-1, keepdims=True)                              # view in the hemisphere
    lensq = vh[:, 0] ** 2 + vh[:, 1] ** 2
    safe = np.sqrt(np.where(lensq > 0, lensq, 1.0))
    t1 = np.where(lensq[:, None] > 0, np.stack([-vh[:, 1], vh[:, 0], np.zeros_like(lensq)], -1) / safe[:, None],
                  np.array([1.0, 0.0, 0.0]))
    t2 = np.cross(vh, t1)
    radius, phi = np.sqrt(u1), 2 * np.pi * u2
    p1 = radius * np.cos(phi)                                                     # [S]
    p2 = radius * np.sin(phi)
    s = 0.5 * (1 + vh[:, 2:3])                                                    # [V, 1]
    p2 = (1 - s) * np.sqrt(1 - p1 ** 2) + s * p2                                  # [V, S]
    p3 = np.sqrt(np.clip(1 - p1 ** 2 - p2 ** 2, 0, None))
    nh = p1[None, :, None] * t1[:, None] + p2[..., None] * t2[:, None] + p3[..., None] * vh[:, None]
    ne = nh * np.array([alpha, alpha, 1.0])
    ne[..., 2] = np.clip(ne[..., 2], 0, None)
    return ne / np.linalg.norm(ne, axis=-1, keepdims=True)


def distribution(cos_h: np.ndarray, alpha2: float) -> np.ndarray:
    """GGX normal distribution D(h) for n·h = cos_h (normalised: ∫ D (n·h) dω = 1)."""
    return alpha2 / (np.pi * (cos_h ** 2 * (alpha2 - 1) + 1) ** 2)


def smith_lambda(cos_theta: np.ndarray, alpha2: float) -> np.ndarray:
    """Smith Λ(θ) = (√(1 + α² tan²θ) − 1) / 2 for GGX; masking G1 = 1 / (1 + Λ), cos_theta > 0."""
    cos2 = cos_theta ** 2
    return 0.5 * (np.sqrt(1 + alpha2 * (1 - cos2) / cos2) - 1)
