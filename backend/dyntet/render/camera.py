"""Pinhole cameras: intrinsics in crop pixels → clip-space projection matrices.

Camera space is OpenGL's (looking down −Z, +Y up). Pixel coordinates have their origin at the top-left
corner of the image with pixel centres at +0.5. The rasterizer (like nvdiffrast) puts image row 0 at
NDC y = −1, so :func:`projection` maps the *top* of the image to NDC y = −1: rendered arrays are upright.
"""

from __future__ import annotations

import torch


def projection(intrinsics: torch.Tensor, width: int, height: int,
               near: float = 0.05, far: float = 10.0) -> torch.Tensor:
    """Projection matrix from pinhole intrinsics.

    Args:
        intrinsics: float [..., 4] = (fx, fy, cx, cy) in pixels.
        width, height: image size in pixels the intrinsics refer to.
        near, far: clip distances in metres (positive).

    Returns:
        float [..., 4, 4] matrix P with ``clip = P @ [x, y, z, 1]`` for camera-space points; a point at
        pixel (px, py) and depth d lands at NDC ``(2 px / W − 1, 2 py / H − 1)`` with ``w = d = −z``.
    """
    if intrinsics.shape[-1] != 4:
        raise ValueError(f"intrinsics must end in 4 values (fx, fy, cx, cy), got shape {tuple(intrinsics.shape)}")
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    fx, fy, cx, cy = intrinsics.unbind(-1)
    zeros = torch.zeros_like(fx)
    ones = torch.ones_like(fx)
    a = -(far + near) / (far - near)
    b = -2.0 * far * near / (far - near)
    rows = [
        torch.stack([2 * fx / width, zeros, 1 - 2 * cx / width, zeros], -1),
        torch.stack([zeros, -2 * fy / height, 1 - 2 * cy / height, zeros], -1),
        torch.stack([zeros, zeros, a * ones, b * ones], -1),
        torch.stack([zeros, zeros, -ones, zeros], -1),
    ]
    return torch.stack(rows, -2)


def to_clip(points: torch.Tensor, view: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
    """Head-space points to clip space.

    Args:
        points: float [B, V, 3] (or [V, 3]) in head space.
        view: float [B, 4, 4] (or [4, 4]) head-to-camera transforms.
        proj: float [B, 4, 4] (or [4, 4]) projection matrices from :func:`projection`.

    Returns:
        float [B, V, 4] clip positions.
    """
    homo = torch.cat([points, torch.ones_like(points[..., :1])], -1)
    mvp = proj @ view
    return homo @ mvp.transpose(-1, -2)


def project_to_pixels(points: torch.Tensor, view: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Head-space points [..., V, 3] to pixel coordinates [..., V, 2] (x right, y down, top-left origin)."""
    cam = points @ view[..., :3, :3].transpose(-1, -2) + view[..., None, :3, 3]
    depth = (-cam[..., 2]).clamp_min(1e-8)
    fx, fy, cx, cy = intrinsics.unbind(-1)
    px = fx[..., None] * cam[..., 0] / depth + cx[..., None]
    py = cy[..., None] - fy[..., None] * cam[..., 1] / depth
    return torch.stack([px, py], -1)


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor | None = None) -> torch.Tensor:
    """World-to-camera 4×4 matrix for a camera at ``eye`` looking at ``target`` (OpenGL axes)."""
    up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype) if up is None else up
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, up), dim=-1)
    true_up = torch.linalg.cross(right, forward)
    rot = torch.stack([right, true_up, -forward])
    view = torch.eye(4, dtype=eye.dtype)
    view[:3, :3] = rot
    view[:3, 3] = -rot @ eye
    return view
