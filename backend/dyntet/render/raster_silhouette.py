"""Where antialiasing applies: neighbouring pixel pairs split by a silhouette edge (numba, no gradients).

For every horizontal and vertical pair of neighbouring pixels that see different triangles, the *front*
pixel A is the one whose surface occludes the other: the covered one if the other is background, else
the one with the smaller z/w. Pairs whose two triangles share a vertex are one continuous surface and
are skipped. Otherwise the segment from A's centre towards B's is followed across the front surface:
it leaves A's triangle through one edge; if that edge is a silhouette — a mesh boundary, or an edge
whose neighbour triangle folds onto the same side of it in the image — the pair is kept with that
edge; if not, the walk continues in the neighbour triangle (up to :data:`MAX_WALK` triangles), which
finds silhouettes lying beyond thin, foreshortened triangles near the outline. If the walk reaches B's
centre first, the front surface covers B too and nothing is blended. Each edge is blended by one pair
direction only — horizontal pairs for edges steeper than 45°, vertical pairs for the others — so the
blended coverage of a straight edge is exact row by row (or column by column) instead of counted twice.

Only these discrete choices are made here; the crossing point (and its gradient) is recomputed in
torch by :mod:`dyntet.render.raster_cpu`. Triangles with a vertex at ``w <= W_EPS`` (partly behind the
camera) have no usable screen-space edges and are never antialiased.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .raster_parallel import num_workers, run_tasks
from .raster_visibility import W_EPS

MAX_WALK = 16
"""Most triangles crossed between a pixel centre and the silhouette edge found for it."""
FIRST_IS_FRONT = 4
"""Bit of a pair code set when the first pixel of the pair (left / upper) is the front pixel A;
bits 0–1 hold the silhouette edge k of the pair's triangle."""
_NO_CROSSING = -np.inf


def screen_positions(clip_bv4: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates of vertices (x right, y down from row 0, pixel centres at +0.5).

    Args:
        clip_bv4: float64 [B, V, 4] clip positions.

    Returns:
        float64 [B, V, 2] positions and bool [B, V] mask of vertices in front of the camera.
    """
    w = clip_bv4[..., 3]
    front = w > W_EPS
    safe_w = np.where(front, w, 1.0)
    scale = np.array([0.5 * width, 0.5 * height])
    pos = (clip_bv4[..., :2] / safe_w[..., None] + 1.0) * scale
    return np.ascontiguousarray(pos), front


def silhouette_pairs(ids_bhw: np.ndarray, zw_bhw: np.ndarray, screen_bv2: np.ndarray, front_bv: np.ndarray,
                     tris_f3: np.ndarray, neighbours_f3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Silhouette crossings between every pixel and its right (index 0) and lower (index 1) neighbour.

    Args:
        ids_bhw: int32 [B, H, W] triangle index + 1 (0 = background).
        zw_bhw: float64 [B, H, W] z/w per pixel.
        screen_bv2, front_bv: from :func:`screen_positions`.
        tris_f3: int64 [F, 3]; neighbours_f3: int64 [F, 3] from :class:`MeshTopology`.

    Returns:
        int32 [B, H, W, 2]: triangle owning the silhouette edge crossed by the pair, -1 for none; and
        uint8 [B, H, W, 2] pair codes (edge index k in bits 0–1, :data:`FIRST_IS_FRONT`).
    """
    ids_bhw = np.ascontiguousarray(ids_bhw, dtype=np.int32)
    zw_bhw = np.ascontiguousarray(zw_bhw, dtype=np.float64)
    screen_bv2 = np.ascontiguousarray(screen_bv2, dtype=np.float64)
    front_bv = np.ascontiguousarray(front_bv, dtype=np.bool_)
    tris_f3 = np.ascontiguousarray(tris_f3, dtype=np.int64)
    neighbours_f3 = np.ascontiguousarray(neighbours_f3, dtype=np.int64)
    batch, height, width = ids_bhw.shape
    tasks = num_workers()
    sil = np.zeros((batch, tris_f3.shape[0]), np.uint8)
    run_tasks(_silhouette_masks, tasks, screen_bv2, front_bv, tris_f3, neighbours_f3, sil)
    pair_tri = np.full((batch, height, width, 2), -1, np.int32)
    pair_code = np.zeros((batch, height, width, 2), np.uint8)
    run_tasks(_pairs, tasks, ids_bhw, zw_bhw, screen_bv2, front_bv, sil, tris_f3, neighbours_f3,
              pair_tri, pair_code)
    return pair_tri, pair_code


@njit(cache=True, inline="always")
def _cross(ax, ay, bx, by, px, py):
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


@njit(cache=True, nogil=True)
def _silhouette_masks(task, num_tasks, screen, front, tris, neighbours, masks):
    """Fill uint8 masks [B, F] (this task's share): bit k set when edge k is a silhouette in image b."""
    num_faces = tris.shape[0]
    total = masks.shape[0] * num_faces
    for i in range(total * task // num_tasks, total * (task + 1) // num_tasks):
        b = i // num_faces
        f = i - b * num_faces
        if not (front[b, tris[f, 0]] and front[b, tris[f, 1]] and front[b, tris[f, 2]]):
            continue
        mask = 0
        for k in range(3):
            o = tris[f, k]
            a = tris[f, (k + 1) % 3]
            c = tris[f, (k + 2) % 3]
            n = neighbours[f, k]
            if n < 0:
                mask |= 1 << k
                continue
            o2 = -1
            for j in range(3):
                v = tris[n, j]
                if v != a and v != c:
                    o2 = v
            if o2 < 0 or not front[b, o2]:
                mask |= 1 << k
                continue
            ax, ay = screen[b, a, 0], screen[b, a, 1]
            cx, cy = screen[b, c, 0], screen[b, c, 1]
            side_self = _cross(ax, ay, cx, cy, screen[b, o, 0], screen[b, o, 1])
            side_other = _cross(ax, ay, cx, cy, screen[b, o2, 0], screen[b, o2, 1])
            if side_self * side_other >= 0.0:  # both triangles on one side: a fold
                mask |= 1 << k
        masks[b, f] = mask


@njit(cache=True)
def crossing(ax, ay, cx, cy, centre_along, centre_across, direction, axis):
    """Where edge (a, c) crosses the line through pixel A's centre towards B, in pixels from A.

    ``axis`` 0: horizontal line (y = centre_across), 1: vertical (x = centre_across); ``direction`` ±1
    points towards B, so B's centre is at 1. Returns -inf when the edge does not reach the line.
    """
    if axis == 0:
        a_along, a_across, c_along, c_across = ax, ay, cx, cy
    else:
        a_along, a_across, c_along, c_across = ay, ax, cy, cx
    da = a_across - centre_across
    dc = c_across - centre_across
    if da * dc > 0.0 or da == dc:
        return _NO_CROSSING
    s = da / (da - dc)
    pos = a_along + s * (c_along - a_along)
    return (pos - centre_along) * direction


@njit(cache=True, inline="always")
def _shares_vertex(tris, f, g):
    for i in range(3):
        for j in range(3):
            if tris[f, i] == tris[g, j]:
                return True
    return False


@njit(cache=True)
def _walk(screen, front, sil, tris, neighbours, b, tri, along, across, direction, axis):
    """Follow the segment from A (t = 0) to B (t = 1) across the surface; (triangle, edge) or (-1, -1)."""
    t_prev = _NO_CROSSING
    for _ in range(MAX_WALK):
        best_t = _NO_CROSSING
        best_k = -1
        for k in range(3):
            a = tris[tri, (k + 1) % 3]
            c = tris[tri, (k + 2) % 3]
            t = crossing(screen[b, a, 0], screen[b, a, 1], screen[b, c, 0], screen[b, c, 1],
                         along, across, direction, axis)
            if t > best_t:
                best_t = t
                best_k = k
        if best_k < 0 or best_t <= t_prev or best_t > 1.0:
            return -1, -1  # degenerate, or the surface reaches B's centre without a silhouette
        if (sil[b, tri] >> best_k) & 1:
            return tri, best_k
        nxt = neighbours[tri, best_k]
        if nxt < 0 or not (front[b, tris[nxt, 0]] and front[b, tris[nxt, 1]] and front[b, tris[nxt, 2]]):
            return -1, -1
        tri = nxt
        t_prev = best_t
    return -1, -1


@njit(cache=True, inline="always")
def _pair(ids, zw, screen, front, sil, tris, neighbours, b, yp, xp, yq, xq, axis):
    ip = ids[b, yp, xp]
    iq = ids[b, yq, xq]
    if ip == iq:
        return -1, 0
    if ip == 0:
        first_is_front = False
    elif iq == 0:
        first_is_front = True
    else:
        if _shares_vertex(tris, ip - 1, iq - 1):
            return -1, 0
        first_is_front = zw[b, yp, xp] <= zw[b, yq, xq]
    if first_is_front:
        tri, ya, xa, direction = ip - 1, yp, xp, 1.0
    else:
        tri, ya, xa, direction = iq - 1, yq, xq, -1.0
    if not (front[b, tris[tri, 0]] and front[b, tris[tri, 1]] and front[b, tris[tri, 2]]):
        return -1, 0
    if axis == 0:
        along, across = xa + 0.5, ya + 0.5
    else:
        along, across = ya + 0.5, xa + 0.5
    found, k = _walk(screen, front, sil, tris, neighbours, b, tri, along, across, direction, axis)
    if found < 0:
        return -1, 0
    a = tris[found, (k + 1) % 3]
    c = tris[found, (k + 2) % 3]
    ex = abs(screen[b, c, 0] - screen[b, a, 0])
    ey = abs(screen[b, c, 1] - screen[b, a, 1])
    if (ex > ey) if axis == 0 else (ex <= ey):
        return -1, 0  # the other pair direction, closer to the edge normal, blends this edge
    return found, k | (FIRST_IS_FRONT if first_is_front else 0)


@njit(cache=True, nogil=True)
def _pairs(task, num_tasks, ids, zw, screen, front, sil, tris, neighbours, pair_tri, pair_code):
    """Fill this task's share of image rows of ``pair_tri`` / ``pair_code`` (see :func:`silhouette_pairs`)."""
    batch, height, width = ids.shape
    total = batch * height
    for row in range(total * task // num_tasks, total * (task + 1) // num_tasks):
        b = row // height
        y = row - b * height
        for x in range(width):
            if x + 1 < width and ids[b, y, x] != ids[b, y, x + 1]:
                tri, code = _pair(ids, zw, screen, front, sil, tris, neighbours, b, y, x, y, x + 1, 0)
                pair_tri[b, y, x, 0] = tri
                pair_code[b, y, x, 0] = code
            if y + 1 < height and ids[b, y, x] != ids[b, y + 1, x]:
                tri, code = _pair(ids, zw, screen, front, sil, tris, neighbours, b, y, x, y + 1, x, 1)
                pair_tri[b, y, x, 1] = tri
                pair_code[b, y, x, 1] = code
