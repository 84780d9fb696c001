"""The fixed tetrahedral grid DynTet deforms: a body-centred-cubic tetrahedralisation of the unit cube.

Why our own grid: the grids shipped with nvdiffrec are downloaded data under a non-commercial licence.
This module builds a conforming tetrahedralisation of ``[-0.5, 0.5]^3`` in a second with vectorised
numpy, the body-centred-cubic (BCC) lattice of isosurface stuffing (Labelle & Shewchuk, SIGGRAPH 2007):

* ``n = r / 2`` cubes per side (side ``2 / r``); vertices are the cube corners, the cube centres and the
  centres of the cube faces on the boundary of the domain, so every lattice direction is spaced ``1 / r``.
* For each pair of face-adjacent cubes, the octahedron spanned by the two centres and their shared square
  is split into 4 tetrahedra around the centre-centre edge (centres + one edge of the square each).
* For each square on the domain boundary, the pyramid spanned by the cube centre and the square is split
  into 4 tetrahedra by the square's centre, so the boundary is flat and conforming.

Counts for resolution ``r`` (``n = r / 2``): ``V = (n+1)^3 + n^3 + 6 n^2``,
``T = 12 n^2 (n - 1) + 24 n^2`` -- at r = 128: V = 561 345, T = 3 194 880 (the paper's "128" grid from
nvdiffrec has about 277k vertices and 1.5M tets; r = 100 gives a similar size: 272 651 / 1 530 000).

Marching tets needs the unique edge list and each tet's six edges; they are computed once here and stored
with the grid (``torch.unique`` per call is what makes the classic implementation slow). Built grids are
cached as ``.npz`` under ``$DYNTET_CACHE_DIR`` (default ``~/.cache/dyntet``), written atomically.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

LOCAL_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
"""Local vertex pairs of a tet's six edges; ``TetGrid.tet_edges[t, k]`` is the edge ``LOCAL_EDGES[k]``."""

CACHE_FORMAT_VERSION = 1
"""Bump when the construction or the file layout changes: old cache files are then ignored."""

_CACHE_KEYS = ("format_version", "resolution", "vertices", "tets", "edges", "tet_edges")


@dataclass(frozen=True)
class TetGrid:
    """A tetrahedral grid with its edge tables (immutable; build with :func:`tet_grid`).

    Attributes:
        resolution: lattice resolution r; the lattice spacing is ``1 / r`` (the scale of DynTet's offsets).
        vertices: float32 [V, 3] vertex positions in grid space ``[-0.5, 0.5]^3``.
        tets: int64 [T, 4] vertex indices, every tet positively oriented:
            ``det(v1 - v0, v2 - v0, v3 - v0) > 0``.
        edges: int64 [E, 2] unique undirected edges as vertex pairs ``(a, b)`` with ``a < b``, sorted.
        tet_edges: int64 [T, 6] indices into ``edges`` of each tet's edges, in the local order
            :data:`LOCAL_EDGES`.
    """

    resolution: int
    vertices: torch.Tensor
    tets: torch.Tensor
    edges: torch.Tensor
    tet_edges: torch.Tensor

    def __post_init__(self) -> None:
        checks = (
            ("vertices", self.vertices, torch.float32, 3),
            ("tets", self.tets, torch.int64, 4),
            ("edges", self.edges, torch.int64, 2),
            ("tet_edges", self.tet_edges, torch.int64, 6),
        )
        for name, tensor, dtype, width in checks:
            if tensor.dtype != dtype or tensor.dim() != 2 or tensor.shape[1] != width:
                raise ValueError(
                    f"TetGrid.{name} must be {dtype} [N, {width}], got {tensor.dtype} {list(tensor.shape)}")
        if self.tet_edges.shape[0] != self.tets.shape[0]:
            raise ValueError(f"TetGrid.tet_edges has {self.tet_edges.shape[0]} rows for {self.tets.shape[0]} tets")
        devices = {t.device for t in (self.vertices, self.tets, self.edges, self.tet_edges)}
        if len(devices) != 1:
            raise ValueError(f"TetGrid tensors must share one device, got {sorted(map(str, devices))}")

    @property
    def device(self) -> torch.device:
        return self.vertices.device

    @property
    def num_vertices(self) -> int:
        return self.vertices.shape[0]

    @property
    def num_tets(self) -> int:
        return self.tets.shape[0]

    def to(self, device: torch.device | str) -> TetGrid:
        """The same grid with every tensor on ``device``."""
        return replace(self, vertices=self.vertices.to(device), tets=self.tets.to(device),
                       edges=self.edges.to(device), tet_edges=self.tet_edges.to(device))

    @classmethod
    def from_tets(cls, vertices: torch.Tensor | np.ndarray, tets: torch.Tensor | np.ndarray,
                  resolution: int) -> TetGrid:
        """A grid from any positively oriented tet mesh (tests, custom grids); builds the edge tables.

        Args:
            vertices: float [V, 3] positions.
            tets: int [T, 4] vertex indices with positive volume.
            resolution: the lattice resolution the offsets are scaled by (``1 / resolution`` spacing).

        Raises:
            ValueError: for wrong shapes, indices out of range or tets that are not positively oriented.

        >>> grid = TetGrid.from_tets([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 1, 2, 3]], 1)
        >>> grid.edges.tolist()
        [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
        """
        verts_vx3 = np.asarray(vertices, dtype=np.float32)
        tets_tx4 = np.asarray(tets, dtype=np.int64)
        if verts_vx3.ndim != 2 or verts_vx3.shape[1] != 3:
            raise ValueError(f"vertices must be [V, 3], got shape {list(verts_vx3.shape)}")
        if tets_tx4.ndim != 2 or tets_tx4.shape[1] != 4:
            raise ValueError(f"tets must be [T, 4], got shape {list(tets_tx4.shape)}")
        if tets_tx4.size and (tets_tx4.min() < 0 or tets_tx4.max() >= len(verts_vx3)):
            raise ValueError(f"tet indices must lie in [0, {len(verts_vx3)}), got "
                             f"[{tets_tx4.min()}, {tets_tx4.max()}]")
        det_t = _orientation(verts_vx3.astype(np.float64), tets_tx4)
        if (det_t <= 0).any():
            bad = np.flatnonzero(det_t <= 0)
            raise ValueError(f"{len(bad)} tets are not positively oriented (first: tet {bad[0]}); "
                             "marching tets derives triangle winding from the tet orientation")
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        edges_ex2, tet_edges_tx6 = _edge_tables(tets_tx4, len(verts_vx3))
        return _from_numpy(resolution, verts_vx3, tets_tx4, edges_ex2, tet_edges_tx6)


def bcc_counts(resolution: int) -> tuple[int, int]:
    """(vertex count, tet count) of :func:`build_tet_grid` at ``resolution``, without building it."""
    _check_resolution(resolution)
    n = resolution // 2
    return (n + 1) ** 3 + n ** 3 + 6 * n * n, 12 * n * n * (n - 1) + 24 * n * n


def build_tet_grid(resolution: int) -> TetGrid:
    """Build the BCC grid of ``resolution`` (even, >= 2) in memory; no caching (see :func:`tet_grid`)."""
    _check_resolution(resolution)
    coords_vx3, tets_tx4 = _bcc_lattice(resolution // 2)
    edges_ex2, tet_edges_tx6 = _edge_tables(tets_tx4, len(coords_vx3))
    vertices = (coords_vx3.astype(np.float32) / np.float32(resolution)) - np.float32(0.5)
    return _from_numpy(resolution, vertices, tets_tx4, edges_ex2, tet_edges_tx6)


def default_cache_dir() -> Path:
    """``$DYNTET_CACHE_DIR`` when set, else ``~/.cache/dyntet``."""
    env = os.environ.get("DYNTET_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dyntet"


def cache_path(resolution: int, cache_dir: Path | None = None) -> Path:
    """Where :func:`tet_grid` keeps the grid of ``resolution``."""
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return directory / f"tetgrid_bcc_r{resolution}_v{CACHE_FORMAT_VERSION}.npz"


def tet_grid(resolution: int, cache_dir: Path | None = None) -> TetGrid:
    """The BCC grid of ``resolution``, loaded from the disk cache or built and cached.

    A missing, corrupt or outdated cache file is rebuilt (with a warning for the corrupt case); a cache
    directory that cannot be written only costs a warning. Tensors are on the CPU.

    Args:
        resolution: even lattice resolution >= 2 (the paper's setting is 128).
        cache_dir: directory of the cache; ``None`` uses :func:`default_cache_dir`.
    """
    _check_resolution(resolution)
    path = cache_path(resolution, cache_dir)
    if path.exists():
        try:
            return _load(path, resolution)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            log.warning("tet grid cache %s is unreadable (%s); rebuilding it", path, error)
    grid = build_tet_grid(resolution)
    try:
        _save_atomic(path, grid)
    except OSError as error:
        log.warning("could not write the tet grid cache %s (%s); continuing without it", path, error)
    return grid


# --- construction ------------------------------------------------------------------------------------


def _check_resolution(resolution: int) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise TypeError(f"resolution must be an int, got {type(resolution).__name__}")
    if resolution < 2 or resolution % 2:
        raise ValueError(f"resolution must be even and >= 2 (two lattice steps per BCC cube), got {resolution}")


def _bcc_lattice(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer coordinates int64 [V, 3] (unit 1/r, range [0, 2n]) and positively oriented tets int64 [T, 4]."""
    corner = np.arange((n + 1) ** 3).reshape(n + 1, n + 1, n + 1)
    centre = (n + 1) ** 3 + np.arange(n ** 3).reshape(n, n, n)
    face0 = (n + 1) ** 3 + n ** 3
    ci = np.arange(n + 1)
    cc = np.arange(n)
    coords = [
        np.stack(np.meshgrid(2 * ci, 2 * ci, 2 * ci, indexing="ij"), -1).reshape(-1, 3),
        np.stack(np.meshgrid(2 * cc + 1, 2 * cc + 1, 2 * cc + 1, indexing="ij"), -1).reshape(-1, 3),
    ]
    tets = []
    face_id = 0
    for axis in range(3):
        # Corner indices as seen from this axis: [along, u, w] with (axis, u, w) a cyclic frame.
        perm = (axis, (axis + 1) % 3, (axis + 2) % 3)
        corner_a = corner.transpose(perm)
        centre_a = centre.transpose(perm)
        # The 4 edges of the square between corners (a, u..u+1, w..w+1), as (du, dw) pairs.
        square = ((0, 0), (1, 0), (1, 1), (0, 1))
        ring = [(square[k], square[(k + 1) % 4]) for k in range(4)]

        # Interior squares: centres of cubes (a, u, w) and (a + 1, u, w), square at corner layer a + 1.
        c1 = centre_a[:-1].ravel()
        c2 = centre_a[1:].ravel()
        layer = corner_a[1:n]
        for (pu, pw), (qu, qw) in ring:
            p = layer[:, pu:pu + n, pw:pw + n].ravel()
            q = layer[:, qu:qu + n, qw:qw + n].ravel()
            tets.append(np.stack([c1, c2, p, q], 1))

        # Boundary squares at corner layers 0 and n: cube centre, square centre, each square edge.
        for side, (cube_layer, corner_layer) in enumerate(((0, 0), (n - 1, n))):
            f = face0 + face_id * n * n + np.arange(n * n)
            face_id += 1
            along = np.full((n, n), 2 * corner_layer)
            uu, ww = np.meshgrid(2 * cc + 1, 2 * cc + 1, indexing="ij")
            local = np.stack([along, uu, ww], -1).reshape(-1, 3)
            coords_face = np.empty_like(local)
            coords_face[:, perm] = local
            coords.append(coords_face)
            c = centre_a[cube_layer].ravel()
            for (pu, pw), (qu, qw) in ring:
                p = corner_a[corner_layer, pu:pu + n, pw:pw + n].ravel()
                q = corner_a[corner_layer, qu:qu + n, qw:qw + n].ravel()
                tets.append(np.stack([c, f, p, q], 1))
    coords_vx3 = np.concatenate(coords).astype(np.int64)
    tets_tx4 = np.concatenate(tets).astype(np.int64)
    det_t = _orientation(coords_vx3, tets_tx4)
    if (det_t == 0).any():
        raise RuntimeError("BCC construction produced a degenerate tet; this is a bug")
    flip = det_t < 0
    tets_tx4[flip, 2], tets_tx4[flip, 3] = tets_tx4[flip, 3], tets_tx4[flip, 2].copy()
    return coords_vx3, tets_tx4


def _orientation(points_vx3: np.ndarray, tets_tx4: np.ndarray) -> np.ndarray:
    """Six times the signed volume of each tet, [T] in the dtype of ``points``."""
    p0 = points_vx3[tets_tx4[:, 0]]
    a = points_vx3[tets_tx4[:, 1]] - p0
    b = points_vx3[tets_tx4[:, 2]] - p0
    c = points_vx3[tets_tx4[:, 3]] - p0
    return np.einsum("ij,ij->i", a, np.cross(b, c))


def _edge_tables(tets_tx4: np.ndarray, num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique sorted edges int64 [E, 2] and each tet's edge indices int64 [T, 6] (order LOCAL_EDGES)."""
    a = np.stack([tets_tx4[:, i] for i, _ in LOCAL_EDGES], 1)
    b = np.stack([tets_tx4[:, j] for _, j in LOCAL_EDGES], 1)
    keys_tx6 = np.minimum(a, b) * num_vertices + np.maximum(a, b)
    unique_keys, inverse = np.unique(keys_tx6.ravel(), return_inverse=True)
    edges_ex2 = np.stack([unique_keys // num_vertices, unique_keys % num_vertices], 1)
    return edges_ex2, inverse.reshape(-1, 6).astype(np.int64)


def _from_numpy(resolution: int, vertices: np.ndarray, tets: np.ndarray, edges: np.ndarray,
                tet_edges: np.ndarray) -> TetGrid:
    return TetGrid(
        resolution=int(resolution),
        vertices=torch.from_numpy(np.ascontiguousarray(vertices, dtype=np.float32)),
        tets=torch.from_numpy(np.ascontiguousarray(tets, dtype=np.int64)),
        edges=torch.from_numpy(np.ascontiguousarray(edges, dtype=np.int64)),
        tet_edges=torch.from_numpy(np.ascontiguousarray(tet_edges, dtype=np.int64)),
    )


# --- cache -------------------------------------------------------------------------------------------


def _save_atomic(path: Path, grid: TetGrid) -> None:
    """Write ``grid`` to ``path`` via a temporary file and a rename, so readers never see half a file.

    Indices are stored as int32 (half the size; any grid that fits in memory fits in int32).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                format_version=np.int64(CACHE_FORMAT_VERSION),
                resolution=np.int64(grid.resolution),
                vertices=grid.vertices.cpu().numpy(),
                tets=grid.tets.cpu().numpy().astype(np.int32),
                edges=grid.edges.cpu().numpy().astype(np.int32),
                tet_edges=grid.tet_edges.cpu().numpy().astype(np.int32),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes it owner-only; a cache is plain readable data
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _load(path: Path, resolution: int) -> TetGrid:
    """Read a cache file, checking version, sizes and index ranges (ValueError when anything is off)."""
    with np.load(path, allow_pickle=False) as data:
        missing = [key for key in _CACHE_KEYS if key not in data.files]
        if missing:
            raise ValueError(f"missing arrays {missing}")
        arrays = {key: data[key] for key in _CACHE_KEYS}
    if int(arrays["format_version"]) != CACHE_FORMAT_VERSION or int(arrays["resolution"]) != resolution:
        raise ValueError(f"file holds version {int(arrays['format_version'])}, resolution "
                         f"{int(arrays['resolution'])}; expected {CACHE_FORMAT_VERSION}, {resolution}")
    num_vertices, num_tets = bcc_counts(resolution)
    vertices, tets, edges, tet_edges = (arrays[k] for k in ("vertices", "tets", "edges", "tet_edges"))
    if vertices.shape != (num_vertices, 3) or tets.shape != (num_tets, 4) or tet_edges.shape != (num_tets, 6):
        raise ValueError(f"unexpected shapes vertices {vertices.shape}, tets {tets.shape}, "
                         f"tet_edges {tet_edges.shape}")
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(f"unexpected edges shape {edges.shape}")
    if tets.min() < 0 or tets.max() >= num_vertices or edges.min() < 0 or edges.max() >= num_vertices:
        raise ValueError("vertex indices out of range")
    if tet_edges.min() < 0 or tet_edges.max() >= len(edges):
        raise ValueError("edge indices out of range")
    return _from_numpy(resolution, vertices, tets, edges, tet_edges)
