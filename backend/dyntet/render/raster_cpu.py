"""CPU rasterizer backend: numba decides visibility, torch computes everything differentiable.

The split keeps autograd honest and cheap. Which triangle a pixel sees is piecewise constant in the
vertex positions (no gradient), so numba finds it (:mod:`.raster_visibility`). What the pixel sees of
that triangle — perspective-correct barycentrics and z/w — is a smooth function of the triangle's clip
positions, recomputed here in torch for the covered pixels only, so autograd supplies
d(u, v, z/w)/d(clip_pos) without a hand-written backward. Antialiasing follows the same pattern: numba
picks the pixel pairs split by a silhouette edge (:mod:`.raster_silhouette`), torch computes where the
edge crosses each pair and blends, so gradients reach both colours and clip positions.

Inputs here are already validated and batched by :mod:`dyntet.render.raster`; tensors may live on any
device (visibility is computed on the CPU and moved back).
"""

from __future__ import annotations

import numpy as np
import torch

from .raster_silhouette import FIRST_IS_FRONT, screen_positions, silhouette_pairs
from .raster_topology import MeshTopology
from .raster_visibility import triangle_ids


def rasterize(clip_bv4: torch.Tensor, tris_f3: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
    """float [B, V, 4] clip positions, int64 [F, 3] → float [B, H, W, 4] (u, v, z/w, triangle_id + 1)."""
    height, width = resolution
    batch, num_verts, _ = clip_bv4.shape
    ids_bhw = triangle_ids(clip_bv4.detach().to("cpu", torch.float64).numpy(),
                           tris_f3.detach().cpu().numpy(), height, width)
    ids = torch.from_numpy(ids_bhw).to(clip_bv4.device)
    image, row, col = ids.nonzero().unbind(1)  # [N] each, covered pixels in memory order
    pixel = (image * height + row) * width + col
    tri = ids[image, row, col].long() - 1
    dtype = clip_bv4.dtype
    ndc_x = (col.to(dtype) + 0.5) * (2.0 / width) - 1.0
    ndc_y = (row.to(dtype) + 0.5) * (2.0 / height) - 1.0
    vert = tris_f3.index_select(0, tri) + (image * num_verts)[:, None]  # [N, 3] rows of [B·V, 4]
    corners = clip_bv4.reshape(-1, 4).index_select(0, vert.reshape(-1)).view(-1, 3, 4)
    weights, zw = _barycentrics(corners, ndc_x, ndc_y)
    values = torch.cat([weights[:, :2], zw[:, None], (tri + 1).to(dtype)[:, None]], dim=1)
    rast = clip_bv4.new_zeros(batch * height * width, 4).index_copy(0, pixel, values)
    return rast.view(batch, height, width, 4)


def _barycentrics(corners_n34: torch.Tensor, ndc_x: torch.Tensor, ndc_y: torch.Tensor):
    """Perspective-correct barycentrics of pixel rays through triangles, in homogeneous 2-D.

    With ``v_i = (x_i, y_i, w_i)`` and the pixel ray ``p = (ndc_x, ndc_y, 1)``, the weights are
    ``b_i ∝ det[p, v_{i+1}, v_{i+2}]``; subtracting ``w_j p`` from each ``v_j`` leaves the determinants
    unchanged and turns them into 2-D cross products of small pixel-relative vectors, which is both
    accurate in float32 and valid for triangles that cross the camera plane (no division by w_i).

    Args:
        corners_n34: float [N, 3, 4] clip positions of each pixel's triangle.
        ndc_x, ndc_y: float [N] pixel centres in NDC.

    Returns:
        float [N, 3] weights summing to 1, and float [N] z/w of the surface point.
    """
    x, y, z, w = corners_n34.unbind(-1)
    dx = x - w * ndc_x[:, None]
    dy = y - w * ndc_y[:, None]
    b = torch.linalg.cross(dx, dy, dim=1)  # b_i = dx_{i+1} dy_{i+2} - dy_{i+1} dx_{i+2}, unnormalised
    weights = b / _nonzero(b.sum(1))[:, None]
    zw = (b * z).sum(1) / _nonzero((b * w).sum(1))
    return weights, zw


def _nonzero(t: torch.Tensor) -> torch.Tensor:
    """Replace exact zeros (edge-on triangles) by 1 so divisions stay finite."""
    return torch.where(t == 0, torch.ones_like(t), t)


def interpolate(attr_bvc: torch.Tensor, rast_bhw4: torch.Tensor, tris_f3: torch.Tensor) -> torch.Tensor:
    """float [B or 1, V, C] attributes → float [B, H, W, C]; zero on background pixels."""
    batch, height, width, _ = rast_bhw4.shape
    attr_batch, num_verts, channels = attr_bvc.shape
    image, row, col = (rast_bhw4[..., 3].detach() > 0).nonzero().unbind(1)
    pixel = (image * height + row) * width + col
    hit = rast_bhw4.reshape(-1, 4).index_select(0, pixel)  # [N, 4]
    vert = tris_f3.index_select(0, hit[:, 3].detach().long() - 1)
    if attr_batch > 1:
        vert = vert + (image * num_verts)[:, None]
    corner = attr_bvc.reshape(-1, channels).index_select(0, vert.reshape(-1)).view(-1, 3, channels)
    u, v = hit[:, 0:1].to(attr_bvc.dtype), hit[:, 1:2].to(attr_bvc.dtype)
    values = corner[:, 2] + u * (corner[:, 0] - corner[:, 2]) + v * (corner[:, 1] - corner[:, 2])
    out = attr_bvc.new_zeros(batch * height * width, channels).index_copy(0, pixel, values)
    return out.view(batch, height, width, channels)


def antialias(color_bhwc: torch.Tensor, rast_bhw4: torch.Tensor, clip_bv4: torch.Tensor,
              tris_f3: torch.Tensor, topology: MeshTopology) -> torch.Tensor:
    """Blend colours across silhouette edges by analytic edge coverage (see :func:`raster.antialias`)."""
    batch, height, width, channels = color_bhwc.shape
    rast_cpu = rast_bhw4.detach().cpu()
    screen, front = screen_positions(clip_bv4.detach().to("cpu", torch.float64).numpy(), height, width)
    pair_tri, pair_code = silhouette_pairs(rast_cpu[..., 3].to(torch.int32).numpy(),
                                           rast_cpu[..., 2].to(torch.float64).numpy(), screen, front,
                                           tris_f3.detach().cpu().numpy(), topology.neighbours)
    pairs = [_pair_shares(axis, pair_tri[..., axis], pair_code[..., axis], clip_bv4, tris_f3)
             for axis in (0, 1) if (pair_tri[..., axis] >= 0).any()]
    if not pairs:
        return color_bhwc.clone()
    front_px, back_px, share = (torch.cat(parts) for parts in zip(*pairs))
    color_flat = color_bhwc.reshape(-1, channels)
    both = color_flat[torch.cat([front_px, back_px])]
    num_pairs = front_px.shape[0]
    delta = share[:, None].to(color_flat.dtype) * (both[:num_pairs] - both[num_pairs:])
    out = color_flat.index_add(0, torch.where(share >= 0, back_px, front_px), delta)
    return out.view(batch, height, width, channels)


def _pair_shares(axis: int, pair_tri_bhw: np.ndarray, pair_code_bhw: np.ndarray, clip_bv4: torch.Tensor,
                 tris_f3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode one direction's silhouette pairs and measure, differentiably, where their edges cross.

    Args:
        axis: 0 for pairs (pixel, right neighbour), 1 for (pixel, lower neighbour).
        pair_tri_bhw, pair_code_bhw: int32 / uint8 [B, H, W] from :func:`silhouette_pairs` for this axis.

    Returns:
        int64 [N] flat indices of the front pixels A and of the other pixels B, and float [N]
        ``t - 1/2`` where t in [0, 1] is the crossing's position from A's centre to B's.
    """
    batch, height, width = pair_tri_bhw.shape
    num_verts = clip_bv4.shape[1]
    device = clip_bv4.device
    first = np.flatnonzero(pair_tri_bhw >= 0)
    code = torch.from_numpy(pair_code_bhw.reshape(-1)[first].astype(np.int64)).to(device)
    tri = torch.from_numpy(pair_tri_bhw.reshape(-1)[first].astype(np.int64)).to(device)
    first = torch.from_numpy(first).to(device)
    second = first + (1 if axis == 0 else width)
    first_is_front = (code & FIRST_IS_FRONT) != 0
    front_px = torch.where(first_is_front, first, second)
    back_px = torch.where(first_is_front, second, first)
    image = front_px // (height * width)
    within = front_px - image * (height * width)
    row = within // width
    col = within - row * width
    edge = code & 3
    ends = torch.stack([tris_f3[tri, (edge + 1) % 3], tris_f3[tri, (edge + 2) % 3]], 1)
    ends_clip = clip_bv4.reshape(-1, 4)[ends + (image * num_verts)[:, None]]  # [N, 2, 4]
    scale = ends_clip.new_tensor([0.5 * width, 0.5 * height])
    ends_px = (ends_clip[..., :2] / ends_clip[..., 3:] + 1.0) * scale  # [N, 2, 2] pixel (x, y)
    if axis == 0:
        along, across = col, row
    else:
        ends_px = ends_px.flip(-1)  # work in (along, across) = (y, x)
        along, across = row, col
    dtype = ends_px.dtype
    direction = torch.where(first_is_front, 1.0, -1.0).to(dtype)
    t = _crossing(ends_px, along.to(dtype) + 0.5, across.to(dtype) + 0.5, direction)
    return front_px, back_px, t - 0.5


def _crossing(ends_n22: torch.Tensor, centre_along: torch.Tensor, centre_across: torch.Tensor,
              direction: torch.Tensor) -> torch.Tensor:
    """Fraction along the segment from pixel A's centre to B's where the edge crosses it, in [0, 1].

    Args:
        ends_n22: float [N, 2 ends, (along, across)] edge end points in pixels.
        centre_along, centre_across: float [N] A's centre; direction: float [N] ±1 (towards B).
    """
    (a_along, a_across), (c_along, c_across) = ends_n22[:, 0].unbind(-1), ends_n22[:, 1].unbind(-1)
    s = (centre_across - a_across) / _nonzero(c_across - a_across)
    t = (a_along + s * (c_along - a_along) - centre_along) * direction
    return t.clamp(0.0, 1.0)
