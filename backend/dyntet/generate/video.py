"""``render``: a trained run + a driving source → an MP4 of the neural rendering, with the driver's audio.

Frames are rendered by the avatar itself (``DynTet.render``: rasteriser, G, learned light) from the
avatar's own camera, by default over the avatar's own torso re-timed to the driven head motion
(:mod:`.torso`), or over the bare background plate, with the head placed by :mod:`dyntet.generate.pose` (``scene_to_camera · head_to_scene[t]``:
the footage's exact poses when the motion is the avatar's own). The geometry comes from the cached path
of :mod:`.geometry`. Encoded as H.264 (yuv420p) with imageio-ffmpeg's ffmpeg; the driver's audio is muxed
in as AAC.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from dyntet.formats.dataset import MASK_HEAD, Dataset
from dyntet.generate.api import GenerateError, clip_windows, open_run, resolve_clip
from dyntet.generate.drive import DriveOptions
from dyntet.generate.geometry import FrozenGeometry
from dyntet.generate.torso import TorsoConfig, anchor_points, chin_row, retime, soft_cutout
from dyntet.model.dyntet import DynTet
from dyntet.progress import Cancelled, Progress, ProgressFn, StopFn
from dyntet.render.pbr import linear_to_srgb, srgb_to_linear


@dataclass
class RenderConfig:
    """Settings of :func:`render_video`."""

    drive: str = "test"
    """``train``, ``test``, ``all``, a dataset folder or a video file (see :mod:`dyntet.generate.drive`)."""
    drive_options: DriveOptions = field(default_factory=DriveOptions)
    size: int | None = None
    """Side of the square video in pixels (even; default: the avatar's dataset frame size)."""
    background: Literal["torso", "plate", "footage"] = "torso"
    """``torso``: the avatar's footage frame whose head sits where the driven head sits, re-timed smoothly,
    head cut out (any driver). ``plate``: the background plate alone (a floating head). ``footage``: the
    driving frames themselves with the head cut out — only when the avatar replays its own clip."""
    torso: TorsoConfig = field(default_factory=TorsoConfig)
    batch_frames: int = 2
    """Frames rendered at once."""
    quality: float = 8.0
    """imageio-ffmpeg's H.264 quality, 0–10 (10 best)."""
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.size is not None and (not isinstance(self.size, int) or not 16 <= self.size <= 4096 or self.size % 2):
            raise ValueError(f"video size must be an even number of pixels in 16..4096 (H.264 needs even sides), "
                             f"got {self.size!r}")
        if not isinstance(self.batch_frames, int) or self.batch_frames < 1:
            raise ValueError(f"batch_frames must be a positive int, got {self.batch_frames!r}")
        if self.background not in ("torso", "plate", "footage"):
            raise ValueError(f"background must be 'torso', 'plate' or 'footage', got {self.background!r}")
        if not 0 <= self.quality <= 10:
            raise ValueError(f"quality must be in 0..10, got {self.quality!r}")


def render_video(run: Path, out: Path, config: RenderConfig | None = None, progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> Path:
    """Render the driven avatar to ``out`` (an .mp4 file, replaced atomically).

    Raises:
        GenerateError: missing or broken run, bad drive source or frames, an output that is a folder.
        Cancelled: ``should_stop`` asked to stop (no file is left behind).
    """
    import imageio_ffmpeg

    config = config or RenderConfig()
    out = Path(out)
    if out.is_dir():
        raise GenerateError(f"{out} is a folder; give the video file to write, e.g. {out / 'avatar.mp4'}")
    loaded = open_run(run, config.device)
    model = loaded.model
    clip = resolve_clip(loaded, config.drive, config.drive_options, out, progress, should_stop)
    size = config.size or clip.size
    if size % 2:
        raise GenerateError(f"the dataset's frames are {size}² and H.264 needs even sides: pass --size")
    if config.background == "footage" and clip.source.get("retarget") is not None:
        raise GenerateError("--background footage needs the avatar's own clip as the driver (train, test, all); "
                            "another person's frames do not line up with this avatar")
    geometry = FrozenGeometry.from_model(model)
    windows = clip_windows(loaded, clip)
    device = model.grid_vertices.device
    dataset = loaded.dataset
    plate = to_linear(dataset.background(), size, device)
    intrinsics = torch.from_numpy(clip.intrinsics * (size / clip.size)).to(device)
    poses = torch.from_numpy((clip.scene_to_camera[None] @ clip.head_to_scene.astype(np.float64))
                             .astype(np.float32)).to(device)
    backdrop = backdrop_frames(dataset, clip, poses.cpu().numpy(), config)
    with torch.inference_mode():
        model.light.build()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".render-", dir=out.parent) as tmp:
        audio = None
        if clip.audio is not None:
            audio = Path(tmp) / "audio.wav"
            audio.write_bytes(clip.audio)
        partial = Path(tmp) / f"video{out.suffix or '.mp4'}"
        writer = imageio_ffmpeg.write_frames(
            str(partial), (size, size), fps=clip.fps, codec="libx264", pix_fmt_out="yuv420p",
            quality=config.quality, macro_block_size=1, ffmpeg_log_level="error",
            audio_path=None if audio is None else str(audio), audio_codec=None if audio is None else "aac",
            output_params=["-movflags", "+faststart", "-shortest"])
        writer.send(None)
        try:
            for start in range(0, clip.num_frames, config.batch_frames):
                if should_stop is not None and should_stop():
                    raise Cancelled("rendering stopped")
                stop = min(start + config.batch_frames, clip.num_frames)
                if backdrop is None:
                    background = plate.expand(stop - start, -1, -1, -1)
                else:
                    feather = config.torso.feather_px * size / dataset.size
                    background = torch.stack([footage_backdrop(dataset, int(i), plate, size, feather)
                                              for i in backdrop[start:stop]])
                images = render_frames(model, geometry, windows[start:stop], poses[start:stop], intrinsics, size,
                                       background)
                for image in images:
                    writer.send(np.ascontiguousarray(image))
                if progress is not None:
                    progress(Progress("render", stop, clip.num_frames, f"{size}² at {clip.fps:g} fps"))
        finally:
            writer.close()
        partial.replace(out)
    return out


@torch.inference_mode()
def render_frames(model: DynTet, geometry: FrozenGeometry, windows: torch.Tensor, poses: torch.Tensor,
                  intrinsics: torch.Tensor, size: int, background: torch.Tensor) -> np.ndarray:
    """Neural renderings of B frames over a background (build the model's light first: ``model.light.build()``).

    Args:
        windows: float [B, W, K]; poses: float [B, 4, 4] head-to-camera; intrinsics: float [4] pixels of a
        ``size``² image; background: float [B, H, W, 3] linear RGB.

    Returns:
        uint8 [B, H, W, 3] sRGB.
    """
    meshes = geometry.meshes(windows)
    out = model.render(meshes, windows, poses, intrinsics, size, background)
    return (linear_to_srgb(out.rgb) * 255 + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy()


def backdrop_frames(dataset: Dataset, clip, poses: np.ndarray, config: RenderConfig) -> np.ndarray | None:
    """The footage frame behind each rendered frame (int64 [T]), or None over the bare plate.

    ``poses`` float [T, 4, 4] are the driven head-to-camera poses of the avatar's camera."""
    if config.background == "plate":
        return None
    if config.background == "footage":
        return np.asarray(clip.frames, np.int64)
    intrinsics = clip.intrinsics * (dataset.size / clip.size)
    return retime(dataset.tracking.pose, poses, anchor_points(dataset.face_model.mean_shape), intrinsics,
                  config.torso)


def footage_backdrop(dataset: Dataset, index: int, plate: torch.Tensor, size: int, feather_px: float) -> torch.Tensor:
    """Frame ``index`` with its head above the chin replaced by the plate behind a soft edge:
    float [size, size, 3] linear."""
    frame = to_linear(dataset.frame(index), size, plate.device)
    head = _resize((dataset.mask(index) == MASK_HEAD).astype(np.uint8)[..., None] * 255, size, plate.device)
    scale = size / dataset.size
    chin = chin_row(dataset.tracking.pose[index], dataset.face_model.mean_shape, dataset.tracking.intrinsics * scale)
    weight = soft_cutout((head > 0.5).to(plate.dtype), feather_px, keep_below_row=chin)
    return torch.lerp(frame, plate, weight)


def to_linear(image: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    """uint8 [S, S, 3] sRGB → float [size, size, 3] linear on ``device``."""
    return srgb_to_linear(_resize(image, size, device))


def _resize(image: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    """uint8 [S, S, C] → float [size, size, C] in [0, 1] on ``device`` (area filter when shrinking)."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
    if x.shape[-1] != size:
        shrink = size < x.shape[-1]
        x = F.interpolate(x, size=(size, size), mode="area" if shrink else "bilinear",
                          align_corners=None if shrink else False)
    return x[0].permute(1, 2, 0).to(device)
