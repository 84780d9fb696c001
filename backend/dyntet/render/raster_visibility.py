"""Which triangle each pixel sees: numba z-buffer rasterisation in exact fixed point.

This is the discrete half of the CPU rasterizer. It answers one question per pixel — which triangle is
nearest at the pixel centre — and nothing else; the continuous half (barycentrics, depth, gradients) is
recomputed in torch from the clip positions by :mod:`dyntet.render.raster_cpu`.

Rules (the same as OpenGL / nvdiffrast unless said otherwise):

* Pixel ``(row r, column c)`` samples NDC ``((c + 0.5) / W * 2 - 1, (r + 0.5) / H * 2 - 1)``; image row 0
  is NDC y = -1. Both windings are drawn (no culling).
* Vertices are snapped to 1/256 pixel and edge functions are evaluated in int64, so they are exactly
  antisymmetric between the two triangles sharing an edge. A *top-left* style fill rule — a sample on
  an edge belongs to the triangle lying on a fixed side of it (the side the sample reaches when nudged
  by an infinitesimal ``(+ε, +ε²)``) — gives every sample on a shared edge or vertex to exactly one
  triangle: no holes, no double coverage.
* Triangles are clipped in clip space against ``w >= W_EPS`` (the camera plane) and against a guard band
  reaching about two million pixels from the image centre (which keeps fixed-point coordinates in range;
  only triangles with a vertex beyond it pay for clipping). Triangles
  wholly behind the camera vanish; triangles crossing the camera plane keep their visible part. The
  near and far planes are applied per pixel: a sample is drawn only if ``-1 <= z/w <= 1``.
* Depth test: the smallest z/w wins; exact ties go to the smaller triangle index, so the result does not
  depend on thread scheduling.
* Triangles containing a NaN or infinite coordinate are not drawn (the public API rejects them first).

Work split (:mod:`.raster_parallel` tasks): parallel setup passes (snap each vertex once; bound each
triangle and flag the few that need clipping), a short serial clipping pass, then a parallel z-buffer
pass in which each task owns bands of rows dealt round-robin and scans every triangle that reaches one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .raster_parallel import num_workers, run_tasks

SUBPIXEL_BITS = 8
"""Vertices snap to ``1 / 2**SUBPIXEL_BITS`` pixel (like GPU rasterizers)."""
SUBPIXEL = 1 << SUBPIXEL_BITS
HALF_SUBPIXEL = SUBPIXEL >> 1
FIXED_LIMIT = 1 << 29
"""Largest fixed-point coordinate; keeps every int64 edge-function product below 2**62."""
W_EPS = 1e-6
"""Clip-space ``w`` below this is behind (or at) the camera and is clipped away."""
MAX_RESOLUTION = 16384
"""Largest image side supported by the fixed-point range."""
BAND_ROWS = 8
"""Rows per band; bands are dealt round-robin to the parallel tasks."""

_SIMPLE = np.int8(1)
_NEEDS_CLIP = np.int8(2)
_MAX_POLY = 9  # a triangle clipped by 5 planes has at most 3 + 5 vertices


def guard_band(height: int, width: int) -> float:
    """Largest |x/w|, |y/w| kept before clipping so snapped coordinates stay within ``FIXED_LIMIT``."""
    return FIXED_LIMIT / (0.5 * max(height, width) * SUBPIXEL) - 1.0


def triangle_ids(clip_bv4: np.ndarray, tris_f3: np.ndarray, height: int, width: int,
                 num_tasks: int | None = None) -> np.ndarray:
    """Nearest triangle per pixel.

    Args:
        clip_bv4: float64 [B, V, 4] clip-space positions (x, y, z, w).
        tris_f3: int64 [F, 3] vertex indices, each in [0, V).
        height, width: image size H, W in pixels.
        num_tasks: parallel tasks (default: :func:`raster_parallel.num_workers`); any value gives the
            same result.

    Returns:
        int32 [B, H, W]: ``triangle index + 1`` of the visible triangle, 0 where nothing is drawn.
    """
    clip_bv4 = np.ascontiguousarray(clip_bv4, dtype=np.float64)
    tris_f3 = np.ascontiguousarray(tris_f3, dtype=np.int64)
    batch, num_verts = clip_bv4.shape[:2]
    num_faces = tris_f3.shape[0]
    ids = np.zeros((batch, height, width), np.int32)
    if num_faces == 0 or num_verts == 0:
        return ids
    tasks = max(1, int(num_tasks if num_tasks is not None else num_workers()))
    guard = guard_band(height, width)

    outcode = np.empty((batch, num_verts), np.int8)
    vfixed = np.empty((batch, num_verts, 2), np.int64)
    vdepth = np.empty((batch, num_verts), np.float64)
    run_tasks(_vertex_setup, tasks, clip_bv4, height, width, guard, outcode, vfixed, vdepth)

    fixed = np.empty((batch * num_faces, 6), np.int64)  # rows are read only where flag == _SIMPLE
    depth = np.empty((batch * num_faces, 3), np.float64)
    box = np.empty((batch * num_faces, 4), np.int32)
    flag = np.zeros(batch * num_faces, np.int8)
    run_tasks(_triangle_setup, tasks, tris_f3, outcode, vfixed, vdepth, height, width, fixed, depth, box, flag)

    sub_fixed, sub_depth, sub_box, sub_owner = _clip_flagged(clip_bv4, tris_f3, flag, height, width, guard)
    zbuf = np.full((batch, height, width), np.inf)
    run_tasks(_raster_rows, tasks, fixed, depth, box, flag, sub_fixed, sub_depth, sub_box, sub_owner,
              num_faces, zbuf, ids)
    return ids


@njit(cache=True, inline="always")
def _to_fixed(ndc: float, size: int) -> np.int64:
    return np.int64(np.floor((ndc + 1.0) * 0.5 * size * SUBPIXEL + 0.5))


@njit(cache=True, inline="always")
def _snap_triangle(x0, y0, x1, y1, x2, y2, z0, z1, z2, height, width, out_fixed, out_depth, out_box) -> bool:
    """Store a snapped triangle counter-clockwise in pixel axes, with its candidate pixel box.

    Writes ``out_fixed`` int64 [6] = (x0, y0, x1, y1, x2, y2), ``out_depth`` float64 [3] z/w and
    ``out_box`` int32 [4] = (col0, col1, row0, row1) of candidate pixel centres. Returns False when the
    triangle has zero snapped area or misses the image.
    """
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    if area == 0:
        return False
    if area < 0:  # make the winding positive so "inside" means every edge function >= 0
        x1, x2 = x2, x1
        y1, y2 = y2, y1
        z1, z2 = z2, z1
    col0 = max(-((HALF_SUBPIXEL - min(x0, x1, x2)) // SUBPIXEL), 0)
    col1 = min((max(x0, x1, x2) - HALF_SUBPIXEL) // SUBPIXEL, width - 1)
    row0 = max(-((HALF_SUBPIXEL - min(y0, y1, y2)) // SUBPIXEL), 0)
    row1 = min((max(y0, y1, y2) - HALF_SUBPIXEL) // SUBPIXEL, height - 1)
    if col0 > col1 or row0 > row1:
        return False
    out_fixed[0] = x0
    out_fixed[1] = y0
    out_fixed[2] = x1
    out_fixed[3] = y1
    out_fixed[4] = x2
    out_fixed[5] = y2
    out_depth[0] = z0
    out_depth[1] = z1
    out_depth[2] = z2
    out_box[0] = col0
    out_box[1] = col1
    out_box[2] = row0
    out_box[3] = row1
    return True


@njit(cache=True, inline="always")
def _plane_distance(x, y, w, plane, guard):
    """Signed distance-like value of a clip-space point to clip plane ``plane`` (>= 0 is inside)."""
    if plane == 0:
        return w - W_EPS
    if plane == 1:
        return guard * w - x
    if plane == 2:
        return guard * w + x
    if plane == 3:
        return guard * w - y
    return guard * w + y


_NOT_FINITE = 1 << 5  # outcode bit of a vertex with a NaN or infinite coordinate


@njit(cache=True, inline="always")
def _task_range(task, num_tasks, count):
    """Contiguous share [start, stop) of ``count`` items for one task."""
    return count * task // num_tasks, count * (task + 1) // num_tasks


@njit(cache=True, nogil=True)
def _vertex_setup(task, num_tasks, clip, height, width, guard, outcode, fixed, depth):
    """Per vertex: outcode (bit p = outside clip plane p) and, when inside all, the snapped position."""
    num_verts = clip.shape[1]
    start, stop = _task_range(task, num_tasks, clip.shape[0] * num_verts)
    for i in range(start, stop):
        b = i // num_verts
        v = i - b * num_verts
        x, y, z, w = clip[b, v, 0], clip[b, v, 1], clip[b, v, 2], clip[b, v, 3]
        if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(z) and np.isfinite(w)):
            outcode[b, v] = _NOT_FINITE
            continue
        code = 0
        for plane in range(5):
            if _plane_distance(x, y, w, plane, guard) < 0.0:
                code |= 1 << plane
        outcode[b, v] = code
        if code == 0:
            fixed[b, v, 0] = _to_fixed(x / w, width)
            fixed[b, v, 1] = _to_fixed(y / w, height)
            depth[b, v] = z / w


@njit(cache=True, nogil=True)
def _triangle_setup(task, num_tasks, tris, outcode, vfixed, vdepth, height, width, fixed, depth, box, flag):
    """Per triangle: cull, flag for clipping, or snap and bound (rows of the [B·F] outputs)."""
    num_faces = tris.shape[0]
    start, stop = _task_range(task, num_tasks, flag.shape[0])
    for i in range(start, stop):
        b = i // num_faces
        f = i - b * num_faces
        a, c, d = tris[f, 0], tris[f, 1], tris[f, 2]
        any_out = outcode[b, a] | outcode[b, c] | outcode[b, d]
        if any_out & _NOT_FINITE or outcode[b, a] & outcode[b, c] & outcode[b, d]:
            continue  # unusable, or wholly outside one plane (e.g. behind the camera)
        if any_out:
            flag[i] = _NEEDS_CLIP
            continue
        if _snap_triangle(vfixed[b, a, 0], vfixed[b, a, 1], vfixed[b, c, 0], vfixed[b, c, 1],
                          vfixed[b, d, 0], vfixed[b, d, 1], vdepth[b, a], vdepth[b, c], vdepth[b, d],
                          height, width, fixed[i], depth[i], box[i]):
            flag[i] = _SIMPLE


@njit(cache=True)
def _lex_less(a, b) -> bool:
    for j in range(4):
        if a[j] != b[j]:
            return a[j] < b[j]
    return False


@njit(cache=True)
def _clip_polygon(poly, count, plane, guard, out):
    """Sutherland–Hodgman against one plane; returns the new vertex count written to ``out``.

    Crossing points are computed from the lexicographically smaller endpoint so the two triangles
    sharing an edge get bit-identical points (watertight clipping).
    """
    n_out = 0
    for i in range(count):
        cur = poly[i]
        nxt = poly[(i + 1) % count]
        d_cur = _plane_distance(cur[0], cur[1], cur[3], plane, guard)
        d_nxt = _plane_distance(nxt[0], nxt[1], nxt[3], plane, guard)
        if d_cur >= 0.0:
            out[n_out, :] = cur
            n_out += 1
        if (d_cur >= 0.0) != (d_nxt >= 0.0):
            if _lex_less(cur, nxt):
                a, b, da, db = cur, nxt, d_cur, d_nxt
            else:
                a, b, da, db = nxt, cur, d_nxt, d_cur
            t = da / (da - db)
            for j in range(4):
                out[n_out, j] = a[j] + t * (b[j] - a[j])
            if plane == 0 and out[n_out, 3] < W_EPS:
                out[n_out, 3] = W_EPS
            n_out += 1
    return n_out


@njit(cache=True)
def _clip_flagged(clip, tris, flag, height, width, guard):
    """Clip every flagged triangle and fan-triangulate the result into snapped sub-triangles."""
    num_faces = tris.shape[0]
    n_flagged = 0
    for i in range(flag.shape[0]):
        if flag[i] == _NEEDS_CLIP:
            n_flagged += 1
    cap = n_flagged * (_MAX_POLY - 2)
    sub_fixed = np.zeros((cap, 6), np.int64)
    sub_depth = np.zeros((cap, 3), np.float64)
    sub_box = np.zeros((cap, 4), np.int32)
    sub_owner = np.zeros(cap, np.int64)  # b * F + f of the clipped triangle
    poly = np.empty((_MAX_POLY, 4))
    work = np.empty((_MAX_POLY, 4))
    snapped = np.empty((_MAX_POLY, 2), np.int64)
    zw = np.empty(_MAX_POLY)
    n_sub = 0
    for i in range(flag.shape[0]):
        if flag[i] != _NEEDS_CLIP:
            continue
        b = i // num_faces
        f = i - b * num_faces
        for k in range(3):
            poly[k, :] = clip[b, tris[f, k]]
        count = 3
        for plane in range(5):
            count = _clip_polygon(poly, count, plane, guard, work)
            poly[:count] = work[:count]
            if count < 3:
                break
        for j in range(count):
            w = poly[j, 3]
            snapped[j, 0] = _to_fixed(poly[j, 0] / w, width)
            snapped[j, 1] = _to_fixed(poly[j, 1] / w, height)
            zw[j] = poly[j, 2] / w
        for j in range(1, count - 1):
            if _snap_triangle(snapped[0, 0], snapped[0, 1], snapped[j, 0], snapped[j, 1],
                              snapped[j + 1, 0], snapped[j + 1, 1], zw[0], zw[j], zw[j + 1],
                              height, width, sub_fixed[n_sub], sub_depth[n_sub], sub_box[n_sub]):
                sub_owner[n_sub] = i
                n_sub += 1
    return sub_fixed[:n_sub], sub_depth[:n_sub], sub_box[:n_sub], sub_owner[:n_sub]


@njit(cache=True, inline="always")
def _edge_bias(dx, dy) -> np.int64:
    """0 if samples exactly on this (oriented) edge count as inside, else -1 (the fill rule)."""
    if dy < 0 or (dy == 0 and dx > 0):
        return np.int64(0)
    return np.int64(-1)


@njit(cache=True, inline="always")
def _draw(fx, fz, bx, tid, task, num_tasks, zbuf, ids, b):
    """Scan one snapped triangle over the rows of its box that belong to ``task`` in image b."""
    row0 = np.int64(bx[2])
    row1 = np.int64(bx[3])
    col0 = np.int64(bx[0])
    col1 = np.int64(bx[1])
    x0, y0, x1, y1, x2, y2 = fx[0], fx[1], fx[2], fx[3], fx[4], fx[5]
    # edge k runs between the two vertices other than k; its function is vertex k's weight * area
    d0x, d0y = x2 - x1, y2 - y1
    d1x, d1y = x0 - x2, y0 - y2
    d2x, d2y = x1 - x0, y1 - y0
    bias0 = _edge_bias(d0x, d0y)
    bias1 = _edge_bias(d1x, d1y)
    bias2 = _edge_bias(d2x, d2y)
    sx = col0 * SUBPIXEL + HALF_SUBPIXEL
    sy = row0 * SUBPIXEL + HALF_SUBPIXEL
    e0_row = d0x * (sy - y1) - d0y * (sx - x1)
    e1_row = d1x * (sy - y2) - d1y * (sx - x2)
    e2_row = d2x * (sy - y0) - d2y * (sx - x0)
    step0_c, step1_c, step2_c = -d0y * SUBPIXEL, -d1y * SUBPIXEL, -d2y * SUBPIXEL
    step0_r, step1_r, step2_r = d0x * SUBPIXEL, d1x * SUBPIXEL, d2x * SUBPIXEL
    inv_area = 1.0 / np.float64(d2x * (y2 - y0) - d2y * (x2 - x0))
    z0, z1, z2 = fz[0], fz[1], fz[2]
    code = np.int32(tid + 1)
    for r in range(row0, row1 + 1):
        if (r // BAND_ROWS) % num_tasks == task:
            e0, e1, e2 = e0_row, e1_row, e2_row
            for c in range(col0, col1 + 1):
                if ((e0 + bias0) | (e1 + bias1) | (e2 + bias2)) >= 0:
                    z = (np.float64(e0) * z0 + np.float64(e1) * z1 + np.float64(e2) * z2) * inv_area
                    if -1.0 <= z <= 1.0:
                        cur = zbuf[b, r, c]
                        if z < cur or (z == cur and code < ids[b, r, c]):
                            zbuf[b, r, c] = z
                            ids[b, r, c] = code
                e0 += step0_c
                e1 += step1_c
                e2 += step2_c
        e0_row += step0_r
        e1_row += step1_r
        e2_row += step2_r


@njit(cache=True, nogil=True)
def _raster_rows(task, num_tasks, fixed, depth, box, flag, sub_fixed, sub_depth, sub_box, sub_owner,
                 num_faces, zbuf, ids):
    """Z-buffer every triangle into the rows owned by ``task``.

    Rows come in bands of BAND_ROWS dealt round-robin, so the tasks share a (usually central) object
    evenly; each task scans the triangle list once and skips triangles that miss all of its bands.
    """
    for b in range(ids.shape[0]):
        base = b * num_faces
        for f in range(num_faces):
            i = base + f
            if flag[i] == _SIMPLE and _owns_a_row(box[i, 2], box[i, 3], task, num_tasks):
                _draw(fixed[i], depth[i], box[i], f, task, num_tasks, zbuf, ids, b)
        for s in range(sub_owner.shape[0]):
            owner = sub_owner[s]
            if owner // num_faces == b and _owns_a_row(sub_box[s, 2], sub_box[s, 3], task, num_tasks):
                _draw(sub_fixed[s], sub_depth[s], sub_box[s], owner - base, task, num_tasks, zbuf, ids, b)


@njit(cache=True, inline="always")
def _owns_a_row(row0, row1, task, num_tasks) -> bool:
    """Whether a band dealt to ``task`` meets rows [row0, row1]."""
    first_band = row0 // BAND_ROWS
    spread = row1 // BAND_ROWS - first_band
    return spread + 1 >= num_tasks or ((task - first_band) % num_tasks + num_tasks) % num_tasks <= spread
