"""A dataset held in memory as tensors at the training resolution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dyntet.data.landmark_regions import region_masks
from dyntet.formats.dataset import MASK_HEAD, Dataset
from dyntet.render.pbr import srgb_to_linear


@dataclass
class FrameBatch:
    """B frames: ``frames`` int64 [B] indices; images float [B, S, S, C] in sRGB [0, 1]; ``head_mask``
    [B, S, S, 1]; ``background`` [B, S, S, 3] (linear RGB, the frame with the head replaced by the plate);
    ``poses`` [B, 4, 4]; ``intrinsics`` [4] at the training resolution; ``features`` [B, S, S, 1] 1 inside
    the eye and mouth boxes and 0 elsewhere, or None (the store was asked for none, or the dataset has no
    MediaPipe landmarks)."""

    frames: torch.Tensor
    images: torch.Tensor
    head_mask: torch.Tensor
    background: torch.Tensor
    poses: torch.Tensor
    intrinsics: torch.Tensor
    features: torch.Tensor | None = None


class FrameStore:
    """Frames, masks and cameras of one split, resized to ``size`` (uint8 in memory)."""

    def __init__(self, dataset: Dataset, split: str, size: int, device: torch.device,
                 feature_boxes: bool = False) -> None:
        self.dataset = dataset
        self.indices = torch.tensor(list(dataset.split(split)), dtype=torch.int64)
        self.size = size
        self.device = device
        scale = size / dataset.size
        plate = _resize(torch.from_numpy(np.array(dataset.background()))[None], size)[0]
        images, masks, backgrounds = [], [], []
        for i in self.indices.tolist():
            image = _resize(torch.from_numpy(np.array(dataset.frame(i)))[None], size)[0]
            head = _resize((torch.from_numpy(np.array(dataset.mask(i))) == MASK_HEAD)[None, ..., None].to(torch.uint8) * 255,
                           size)[0]
            images.append(image)
            masks.append(head)
            keep = head < 128
            backgrounds.append(torch.where(keep, image, plate))
        self.images = torch.stack(images)
        self.masks = torch.stack(masks)
        self.backgrounds = torch.stack(backgrounds)
        self.features = _feature_boxes(dataset, self.indices.tolist(), size) if feature_boxes else None
        tracking = dataset.tracking
        self.poses = torch.from_numpy(tracking.pose)
        self.expression = torch.from_numpy(tracking.expression).to(device)
        fx, fy, cx, cy = tracking.intrinsics.tolist()
        self.intrinsics = torch.tensor([fx * scale, fy * scale, cx * scale, cy * scale], device=device)

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, positions: torch.Tensor) -> FrameBatch:
        """Frames at ``positions`` (indices into this split)."""
        frames = self.indices[positions]
        to_float = lambda x: x.to(self.device, torch.float32) / 255.0  # noqa: E731
        return FrameBatch(
            frames=frames.to(self.device),
            images=to_float(self.images[positions]),
            head_mask=to_float(self.masks[positions]),
            background=srgb_to_linear(to_float(self.backgrounds[positions])),
            poses=self.poses[frames].to(self.device),
            intrinsics=self.intrinsics,
            features=None if self.features is None else self.features[positions].to(self.device, torch.float32),
        )


def _feature_boxes(dataset: Dataset, indices: list[int], size: int) -> torch.Tensor | None:
    """bool [N, size, size, 1]: the eye and mouth boxes of each frame, or None without MediaPipe landmarks."""
    landmarks = dataset.tracking.landmarks
    if landmarks is None:
        return None
    boxes = []
    for i in indices:
        regions = region_masks(landmarks[i], dataset.size, size)
        if regions is None:
            return None
        boxes.append(torch.from_numpy(regions["eyes"] | regions["mouth"]))
    return torch.stack(boxes)[..., None]


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [B, H, W, C] → uint8 [B, size, size, C] (area filter when shrinking)."""
    if images.shape[1] == size:
        return images
    x = images.permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="area" if size < images.shape[1] else "bilinear",
                      align_corners=None if size < images.shape[1] else False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def mean_expression(dataset: Dataset) -> np.ndarray:
    """ᾱ over the training frames: float32 [K]."""
    idx = list(dataset.split("train"))
    return dataset.tracking.expression[idx].mean(0).astype(np.float32)
