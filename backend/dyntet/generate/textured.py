"""Render a mesh with baked textures under the avatar's learned light — how the exported asset looks.

The same image formation as ``DynTet.render`` (rasterise, interpolate, split-sum shading with the
learned cube map, composite, antialias), except that kd and ORM are read from the baked textures at
interpolated UVs instead of querying G. Comparing the two measures what baking loses (texture
resolution, 8-bit quantisation, seams), which is what the tests and ``dyntet generate --check`` report.

The mesh is rasterised *unsplit* (``faces``), so UV seams are invisible to visibility and antialiasing;
UVs are interpolated per corner with ``uv_faces`` and the same barycentrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dyntet.geometry.mesh import vertex_normals
from dyntet.render import raster
from dyntet.render.camera import projection, to_clip
from dyntet.render.light import CubeMapLight, PrefilteredLight
from dyntet.render.pbr import shade, srgb_to_linear
from dyntet.render.texture import sample_texture


@dataclass
class TexturedMesh:
    """A mesh with per-corner UVs and PBR textures (torch tensors on one device).

    Attributes:
        faces: int64 [F, 3]; uv: float [U, 2] (origin bottom-left); uv_faces: int64 [F, 3];
        kd: float [H, W, 3] linear albedo; orm: float [H, W, 3] occlusion, roughness, metalness.
    """

    faces: torch.Tensor
    uv: torch.Tensor
    uv_faces: torch.Tensor
    kd: torch.Tensor
    orm: torch.Tensor

    @classmethod
    def from_arrays(cls, faces, uv, uv_faces, base_color, orm, device: torch.device | str = "cpu") -> TexturedMesh:
        """From sequence-folder arrays: int [F, 3], float32 [U, 2], int [F, 3], uint8 sRGB [H, W, 3],
        uint8 linear [H, W, 3]."""
        as_tensor = lambda a, dtype: torch.as_tensor(a).to(device=device, dtype=dtype)  # noqa: E731
        return cls(faces=as_tensor(faces, torch.int64), uv=as_tensor(uv, torch.float32),
                   uv_faces=as_tensor(uv_faces, torch.int64),
                   kd=srgb_to_linear(as_tensor(base_color, torch.float32) / 255.0),
                   orm=as_tensor(orm, torch.float32) / 255.0)


@torch.inference_mode()
def render_textured(mesh: TexturedMesh, vertices: torch.Tensor, light: CubeMapLight | PrefilteredLight,
                    poses: torch.Tensor, intrinsics: torch.Tensor, size: int,
                    background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Render B frames of a textured mesh.

    Args:
        mesh: faces, UVs and textures.
        vertices: float [B, V, 3] head-space vertices per frame.
        light: the learned light (built) or its prefiltered form.
        poses: float [B, 4, 4] head-to-camera.
        intrinsics: float [4] (fx, fy, cx, cy) in pixels of a ``size``² image.
        size: image side in pixels.
        background: float [B, H, W, 3] linear RGB behind the head.

    Returns:
        ``(rgb float [B, H, W, 3] linear, alpha float [B, H, W, 1])``, antialiased as ``DynTet.render``.
    """
    batch = poses.shape[0]
    faces = mesh.faces
    clip = to_clip(vertices, poses, projection(intrinsics.expand(batch, 4), size, size))
    rast = raster.rasterize(clip, faces, (size, size))
    covered = rast[..., 3] > 0
    normals = vertex_normals(vertices, faces)
    attrs = raster.interpolate(torch.cat([normals, vertices], -1), rast, faces)
    uv = raster.interpolate(mesh.uv, rast, mesh.uv_faces)
    pix = covered.nonzero(as_tuple=True)
    normal = nn.functional.normalize(attrs[..., 0:3][pix], dim=-1)
    position = attrs[..., 3:6][pix]
    camera_centre = -(poses[:, :3, :3].transpose(1, 2) @ poses[:, :3, 3:4])[..., 0]
    view = nn.functional.normalize(camera_centre[pix[0]] - position, dim=-1)
    texel = uv[pix]
    kd = sample_texture(mesh.kd, texel)
    orm = sample_texture(mesh.orm, texel)
    color = shade(normal, view, kd, orm, light)
    image = torch.zeros(*covered.shape, 3, dtype=color.dtype, device=color.device).index_put(pix, color)
    rgb = torch.where(covered[..., None], image, background)
    alpha = covered[..., None].to(rgb.dtype)
    both = raster.antialias(torch.cat([rgb, alpha], -1), rast, clip, faces)
    return both[..., :3], both[..., 3:4]
