"""DynTet meshes of named controls: the shape keys of the rig and exact meshes of edited curves.

Two kinds of keys. :func:`held_keys` is the generator's mesh at one control = 1 (the others 0, a held
expression window); these do not add up: the DynTet mesh is far from linear in α, so their linear mix
misses most of the clip's motion (``bench.py retarget``: ``held_keys_fit_rms_mm``). :func:`fitted_keys`
are the avatar's own DynTet meshes of the training clip, fitted by least squares as basis + Σ c_k ·
delta_k over the clip's measured controls: the best linear rig of those controls, and the one the
add-on imports. Baking edited curves (:func:`bake_exact`) decodes α(c(t)) with the clip's real windows,
so it gives the true DynTet mesh of the performance, not the linear mix of keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from dyntet.generate.geometry import FrozenGeometry
from dyntet.model.dyntet import expression_windows
from dyntet.rig.fit import ControlMap


@dataclass
class ControlKeys:
    """Basis float32 [E, 3] and one key per control float32 [C, E, 3], head space (metres)."""

    names: tuple[str, ...]
    basis: np.ndarray
    keys: np.ndarray

    def mix(self, controls: np.ndarray) -> np.ndarray:
        """The linear shape-key mix of controls [T, C]: float32 [T, E, 3] (what Blender shows)."""
        deltas = (self.keys - self.basis).reshape(len(self.names), -1)
        return (self.basis.reshape(-1) + np.asarray(controls, np.float32) @ deltas).reshape(
            len(controls), *self.basis.shape).astype(np.float32)


def held_vertices(geometry: FrozenGeometry, expression: np.ndarray, window: int, batch: int = 16) -> np.ndarray:
    """Meshes of held expressions α [N, K] (each a constant window): float32 [N, E, 3]."""
    alpha = torch.as_tensor(np.asarray(expression, np.float32), device=geometry.base.device)
    windows = alpha[:, None].expand(-1, window, -1).contiguous()
    return np.concatenate([b.cpu().numpy() for b in geometry.iter_vertices(windows, batch)])


def clip_vertices(geometry: FrozenGeometry, expression: np.ndarray, window: int, batch: int = 16) -> np.ndarray:
    """Meshes of a clip α [T, K] with its real sliding windows (as ``generate`` does): float32 [T, E, 3]."""
    return np.concatenate(list(iter_clip_vertices(geometry, expression, window, batch=batch)))


def iter_clip_vertices(geometry: FrozenGeometry, expression: np.ndarray, window: int, rows: slice | None = None,
                       batch: int = 16) -> Iterator[np.ndarray]:
    """Batches float32 [B, E, 3] of the meshes of frames ``rows`` (all by default) of a clip α [T, K].

    Every frame's window reads the whole clip, so the frames outside ``rows`` are context: a bake of
    rows 10:20 of a 40-frame take gives the same meshes as rows 10:20 of the whole take.
    """
    alpha = torch.as_tensor(np.asarray(expression, np.float32), device=geometry.base.device)
    start, stop, _ = (rows or slice(None)).indices(len(alpha))
    windows = expression_windows(alpha, torch.arange(start, stop, device=alpha.device), window)
    for vertices in geometry.iter_vertices(windows, batch):
        yield vertices.cpu().numpy()


def fitted_keys(names: tuple[str, ...], controls: np.ndarray, meshes: np.ndarray, ridge: float = 1e-4) -> ControlKeys:
    """The linear rig closest to a clip: controls [T, C], its true meshes [T, E, 3].

    ``ridge`` (per frame, on the deltas only) keeps keys of controls that barely move in the clip tame.
    """
    controls = np.asarray(controls, np.float64)
    flat = np.asarray(meshes, np.float64).reshape(len(controls), -1)
    c_mean, m_mean = controls.mean(0), flat.mean(0)
    centred = controls - c_mean
    gram = centred.T @ centred + ridge * len(controls) * np.eye(controls.shape[1])
    deltas = np.linalg.solve(gram, centred.T @ (flat - m_mean))
    basis = m_mean - c_mean @ deltas
    shape = meshes.shape[1:]
    return ControlKeys(tuple(names), basis.reshape(shape).astype(np.float32),
                       (basis + deltas).reshape(len(names), *shape).astype(np.float32))


def held_keys(geometry: FrozenGeometry, control_map: ControlMap, window: int) -> ControlKeys:
    """Basis and one key per control straight from the generator (control = 1, held expression)."""
    count = len(control_map.names)
    controls = np.vstack([np.zeros((1, count), np.float32), np.eye(count, dtype=np.float32)])
    meshes = held_vertices(geometry, control_map.expression(controls), window)
    return ControlKeys(control_map.names, meshes[0], meshes[1:])


def bake_exact(geometry: FrozenGeometry, control_map: ControlMap, controls: np.ndarray, window: int) -> np.ndarray:
    """True DynTet meshes float32 [T, E, 3] of control curves [T, C] (the "Bake exact" of the add-on)."""
    return clip_vertices(geometry, control_map.expression(controls), window)
