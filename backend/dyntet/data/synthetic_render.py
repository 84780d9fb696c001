"""Images of the synthetic subject: rasterise head and torso together, shade, antialias, label.

One pass of the project's rasterizer (:mod:`dyntet.render.raster`) over head + torso gives visibility;
per pixel the albedo is the face image (projected onto the canonical head) blended with per-vertex
skin/hair/shirt colours; shading is Lambert from two fixed lights plus ambient (no specular, so nothing
depends on the view direction); silhouettes are antialiased over the backdrop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from dyntet.formats.dataset import MASK_BACKGROUND, MASK_HEAD, MASK_TORSO
from dyntet.data.face_texture import (REFERENCE_SIZE, FaceImage, face_oval_weight, head_base_colour,
                                      reference_face_image, skin_colour, srgb_to_linear, torso_base_colour)
from dyntet.data.head_mesh import front_weight
from dyntet.geometry.mesh import vertex_normals
from dyntet.render.camera import projection, to_clip
from dyntet.render.raster import antialias, build_topology, interpolate, rasterize

if TYPE_CHECKING:
    from dyntet.data.synthetic import Subject

LIGHTS = ((np.array([0.35, 0.45, 1.0]), 0.60), (np.array([-0.7, 0.05, 0.5]), 0.15))
"""(direction towards the light, intensity) pairs; the directions live in ``light_space``."""
AMBIENT = 0.40


class SubjectRenderer:
    """Renders frames of one subject; static data (texture, colours, topology) is prepared once."""

    def __init__(self, subject: "Subject", texture: FaceImage, intrinsics: np.ndarray, size: int,
                 background: np.ndarray, light_space: Literal["head", "camera"] = "head") -> None:
        """
        Args:
            subject: the person and clip (:func:`dyntet.data.synthetic.build_subject`).
            texture: which face image to project.
            intrinsics: float [4] fx, fy, cx, cy in pixels.
            size: image side in pixels.
            background: float [size, size, 3] linear backdrop.
            light_space: "head" (lights ride with the head) or "camera" (lights fixed in the room).
        """
        self.size = size
        self.light_space = light_space
        self.num_head_verts = len(subject.neutral)
        self.num_head_faces = len(subject.faces)
        self.proj = projection(torch.as_tensor(intrinsics, dtype=torch.float32), size, size)
        self.background = torch.as_tensor(background, dtype=torch.float32)
        self.head_faces = torch.as_tensor(subject.faces)
        self.tris = torch.cat([self.head_faces, torch.as_tensor(subject.torso_faces) + self.num_head_verts]).int()
        self.topology = build_topology(self.tris, self.num_head_verts + len(subject.torso_verts))
        self.torso_pose = torch.as_tensor(subject.torso_pose, dtype=torch.float32)
        self.torso_clip = to_clip(torch.as_tensor(subject.torso_verts, dtype=torch.float32), self.torso_pose, self.proj)
        torso_normals = vertex_normals(torch.as_tensor(subject.torso_verts), torch.as_tensor(subject.torso_faces))
        self.torso_normals = torso_normals.float()

        face_linear = srgb_to_linear(reference_face_image(texture) / 255.0)
        skin = skin_colour(face_linear)
        tint = np.array(subject.identity.skin_tint)
        # RGBA texture [1, 4, 512, 512] for grid_sample: tinted linear colour, and in alpha how much of
        # the face image to use there (1 inside the face oval, fading out at its rim).
        yy, xx = np.mgrid[0:REFERENCE_SIZE, 0:REFERENCE_SIZE] + 0.5
        oval = face_oval_weight(np.stack([xx, yy], -1))
        rgba = np.concatenate([face_linear * tint, oval[..., None]], -1)
        self.face_texture = torch.as_tensor(rgba, dtype=torch.float32).permute(2, 0, 1)[None].contiguous()
        # Per-vertex attributes: face-image pixel (x, y), how much of the face image applies (front of the
        # head only: the projection runs through the head), and the base colour elsewhere.
        pixels = subject.layout.to_image(subject.neutral[:, :2])
        use_image = front_weight(subject.neutral[:, 2], subject.identity.head_depth)
        head_colour = head_base_colour(subject.neutral, subject.identity, subject.layout, skin * tint)
        head_attr = np.concatenate([pixels, use_image[:, None], head_colour], 1)
        torso_attr = np.concatenate([np.zeros((len(subject.torso_verts), 3)),
                                     torso_base_colour(subject.torso_verts, subject.identity, skin * tint)], 1)
        self.attr = torch.as_tensor(np.concatenate([head_attr, torso_attr]), dtype=torch.float32)

    def render(self, head_verts: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Render a batch of frames.

        Args:
            head_verts: float [B, V, 3] head vertices in head space (expression applied).
            pose: float [B, 4, 4] head-to-camera transforms.

        Returns:
            ``(rgb float32 [B, H, W, 3] linear, labels uint8 [B, H, W])`` with labels 0 backdrop,
            1 torso, 2 head (the visible surface at each pixel centre).
        """
        with torch.no_grad():
            return self._render(torch.as_tensor(head_verts, dtype=torch.float32),
                                torch.as_tensor(pose, dtype=torch.float32))

    def _render(self, head_bv3: torch.Tensor, pose_b44: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        batch = head_bv3.shape[0]
        clip = torch.cat([to_clip(head_bv3, pose_b44, self.proj), self.torso_clip[None].expand(batch, -1, -1)], 1)
        rast = rasterize(clip, self.tris, (self.size, self.size))

        head_n = vertex_normals(head_bv3, self.head_faces)
        torso_n = self.torso_normals[None].expand(batch, -1, -1)
        if self.light_space == "camera":
            head_n = head_n @ pose_b44[:, :3, :3].transpose(-1, -2)
            torso_n = torso_n @ self.torso_pose[:3, :3].T
        normals = torch.cat([head_n, torso_n], 1)
        attr = torch.cat([self.attr[None].expand(batch, -1, -1), normals], -1)
        pix = interpolate(attr, rast, self.tris)

        # Face-image pixel → grid_sample's [-1, 1] (align_corners=False: pixel centres at +0.5, as ours).
        grid = pix[..., 0:2].reshape(1, -1, 1, 2) * (2.0 / REFERENCE_SIZE) - 1.0
        photo = torch.nn.functional.grid_sample(self.face_texture, grid, mode="bilinear", padding_mode="zeros",
                                                align_corners=False)
        photo = photo[0, :, :, 0].T.reshape(*pix.shape[:3], 4)
        weight = photo[..., 3:4] * pix[..., 2:3]
        albedo = photo[..., :3] * weight + pix[..., 3:6] * (1.0 - weight)

        normal = torch.nn.functional.normalize(pix[..., 6:9], dim=-1)
        light = torch.full_like(normal[..., :1], AMBIENT)
        for direction, intensity in LIGHTS:
            d = torch.as_tensor(direction / np.linalg.norm(direction), dtype=torch.float32)
            light = light + intensity * (normal @ d).clamp_min(0.0).unsqueeze(-1)
        shaded = albedo * light

        covered = (rast[..., 3:4] > 0)
        color = torch.where(covered, shaded, self.background.expand(batch, -1, -1, -1))
        color = antialias(color, rast, clip, self.tris, topology=self.topology)

        tri = rast[..., 3].round().long()
        labels = torch.full(tri.shape, MASK_BACKGROUND, dtype=torch.uint8)
        labels[tri > 0] = MASK_TORSO
        labels[(tri > 0) & (tri <= self.num_head_faces)] = MASK_HEAD
        return color.clamp(0.0, 1.0).numpy(), labels.numpy()
