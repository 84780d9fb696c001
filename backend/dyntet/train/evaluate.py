"""Held-out evaluation of a run: PSNR (full frame, head, mouth and eyes), SSIM, mask IoU, LPIPS if
available, the faceting of the canonical mesh, and how far the mesh opens the mouth."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from dyntet.audio.model import inner_lip_gap
from dyntet.formats.dataset import Dataset
from dyntet.formats.run import RunFolder, RunFolderError
from dyntet.nn.grid_convert import adapt_state_dict
from dyntet.data.landmark_regions import INNER_LIPS, region_masks
from dyntet.geometry.mesh import faceting_deg
from dyntet.model.dyntet import DynTet, expression_windows
from dyntet.model.losses import OptionalLPIPS
from dyntet.progress import Progress, ProgressFn
from dyntet.render.pbr import linear_to_srgb
from dyntet.train.checkpoint import load_checkpoint
from dyntet.train.config import TrainConfig
from dyntet.train.frames import FrameStore
from dyntet.train.trainer import build_model, resolve_device

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """A trained model with its dataset, ready for inference."""

    run: Path
    config: TrainConfig
    dataset: Dataset
    model: DynTet


def load_run(run: Path, device: str = "auto") -> LoadedRun:
    run = Path(run)
    folder = RunFolder(run)
    if not folder.config_path.exists():
        raise RunFolderError(f"{run} is not a run folder (no config.json): train one with `dyntet train`")
    saved = folder.read_config()
    config = TrainConfig.from_dict(saved["train"])
    dataset = Dataset.open(saved["dataset"])
    torch_device = resolve_device(device)
    model = build_model(config, dataset).to(torch_device)
    state = load_checkpoint(run, torch_device)
    if state is None:
        raise RunFolderError(f"{run} has no checkpoint yet: training has not saved one")
    model_state, converted = adapt_state_dict(state["model"], model)
    if converted:
        log.warning("converted the hash grids %s of %s to this machine's layout", converted, run)
    model.load_state_dict(model_state)
    model.eval()
    return LoadedRun(run, config, dataset, model)


@dataclass
class FrameResult:
    frame: int
    psnr: float
    psnr_head: float
    ssim: float
    mask_iou: float
    lpips: float | None = None
    psnr_mouth: float | None = None
    """PSNR in the box around the lips (None without MediaPipe landmarks, e.g. a synthetic dataset)."""
    psnr_eyes: float | None = None
    """PSNR in the two boxes around the eyes (None without MediaPipe landmarks)."""


OPTIONAL_KEYS = ("psnr_mouth", "psnr_eyes", "lpips")


@dataclass
class EvalReport:
    split: str
    frames: list[FrameResult] = field(default_factory=list)
    faceting_deg: float | None = None
    """Mean angle between neighbouring face normals of the canonical mesh (lower is smoother)."""
    lip_motion_ratio: float | None = None
    """See :func:`lip_motion_ratio` (None without a MediaPipe face model)."""

    def mean(self) -> dict[str, float]:
        keys = ["psnr", "psnr_head", "ssim", "mask_iou"]
        keys += [k for k in OPTIONAL_KEYS if self.frames and all(getattr(f, k) is not None for f in self.frames)]
        out = {k: float(np.mean([getattr(f, k) for f in self.frames])) for k in keys}
        for key in ("faceting_deg", "lip_motion_ratio"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def to_dict(self) -> dict:
        return {"split": self.split, "mean": self.mean(), "frames": [vars(f) for f in self.frames]}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(torch.mean((a - b) ** 2))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Structural similarity of two images float [H, W, C] in [0, 1] (Gaussian window σ = 1.5, 11 taps)."""
    x, y = a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None]
    coords = torch.arange(11, dtype=x.dtype) - 5
    g = torch.exp(-coords ** 2 / (2 * 1.5 ** 2))
    g = (g / g.sum())
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, 11, 11)
    blur = lambda t: F.conv2d(t, kernel, groups=x.shape[1])  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x ** 2
    syy = blur(y * y) - mu_y ** 2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    value = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return float(value.mean())


def rendered_frames(loaded: LoadedRun, split: str, size: int | None = None
                    ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (frame, prediction sRGB [S,S,3], ground truth [S,S,3], alpha [S,S,1], head mask [S,S,1])."""
    size = size or loaded.config.render_size
    store = FrameStore(loaded.dataset, split, size, loaded.model.grid_vertices.device)
    model = loaded.model
    window = loaded.config.model.geometry.expression_window
    with torch.no_grad():
        topo = None
        for pos in range(len(store)):
            batch = store.batch(torch.tensor([pos]))
            windows = expression_windows(store.expression, batch.frames, window)
            meshes = model.meshes(windows, topo)
            topo = meshes.topology
            model.light.build()
            out = model.render(meshes, windows, batch.poses, batch.intrinsics, size, batch.background)
            yield (int(batch.frames[0]), linear_to_srgb(out.rgb)[0].clamp(0, 1), batch.images[0],
                   out.alpha[0], batch.head_mask[0])


def canonical_faceting(model: DynTet) -> float:
    """:func:`~dyntet.geometry.mesh.faceting_deg` of the mesh at the mean expression (what is imported)."""
    with torch.no_grad():
        meshes = model.meshes(model.mean_window())
    return faceting_deg(meshes.canonical, meshes.faces)


def lip_motion_ratio(loaded: LoadedRun, split: str) -> float | None:
    """How far the learnt deformation opens the mouth, against the tracking: the least-squares slope,
    over the split's frames, of the inner-lip gap the deformation field gives the face model's lip points
    (e·f2 at their rest positions, Eq. 15, plus any face motion) on the gap the tracked α gives them. 1 is the tracked motion;
    a smeared mouth in the renders with a low ratio is geometry that does not open, not texture.

    None when the dataset was not tracked by MediaPipe (a synthetic one, whose face model has no such
    points) or the mouth never moves."""
    model, dataset = loaded.model, loaded.dataset
    face_model = dataset.face_model
    if dataset.tracking.landmarks is None or face_model.mean_shape.shape[0] <= max(INNER_LIPS):
        return None
    frames = torch.tensor(list(dataset.split(split)))
    expression = torch.from_numpy(dataset.tracking.expression.astype(np.float32))
    rest_m = face_model.shape(model.mean_expression.cpu().numpy())[list(INNER_LIPS)].astype(np.float32)  # [2, 3]
    with torch.no_grad():
        points = model.head_to_grid(torch.from_numpy(rest_m).to(model.grid_vertices.device))
        _, elastic = model.geometry.sdf_elastic(points)
        code = model.geometry.position_code(points)
        offsets = []
        for chunk in frames.split(64):
            windows = expression_windows(expression.to(points.device), chunk.to(points.device),
                                         loaded.config.model.geometry.expression_window)
            features = model.geometry.expression_encoder(windows)
            offset = elastic[None, :, None] * model.geometry.offsets(code, features)
            motion = model.face_motion_at(points, model.expression_delta(windows))
            offsets.append(offset if motion is None else offset + motion)
    learnt = rest_m + torch.cat(offsets).cpu().numpy() / float(model.head_to_grid.scale)          # [T, 2, 3] m
    gap_learnt = np.linalg.norm(learnt[:, 1] - learnt[:, 0], axis=-1)
    gap_tracked = inner_lip_gap(face_model, expression[frames].numpy())
    spread = gap_tracked - gap_tracked.mean()
    if len(frames) < 2 or float(spread @ spread) < 1e-12:
        return None
    return float(spread @ (gap_learnt - gap_learnt.mean()) / (spread @ spread))


def _region_psnr(pred: torch.Tensor, gt: torch.Tensor, mask: np.ndarray | None) -> float | None:
    if mask is None or not mask.any():
        return None
    region = torch.from_numpy(mask).to(pred.device)
    return _psnr(pred[region], gt[region])


def evaluate(loaded: LoadedRun, split: str = "test", progress: ProgressFn | None = None) -> EvalReport:
    lpips = OptionalLPIPS(True)
    report = EvalReport(split, faceting_deg=canonical_faceting(loaded.model),
                        lip_motion_ratio=lip_motion_ratio(loaded, split))
    total = len(loaded.dataset.split(split))
    landmarks = loaded.dataset.tracking.landmarks
    for i, (frame, pred, gt, alpha, head) in enumerate(rendered_frames(loaded, split)):
        region = ((head > 0.5) | (alpha > 0.5))[..., 0]
        head_psnr = _psnr(pred[region], gt[region]) if region.any() else float("nan")
        pm, gm = alpha[..., 0] > 0.5, head[..., 0] > 0.5
        union = int((pm | gm).sum())
        iou = float((pm & gm).sum()) / union if union else 1.0
        lp = float(lpips(pred[None], gt[None])) if lpips.available else None
        regions = region_masks(landmarks[frame], loaded.dataset.size, pred.shape[0]) \
            if landmarks is not None else None
        report.frames.append(FrameResult(
            frame, _psnr(pred, gt), head_psnr, ssim(pred, gt), iou, lp,
            _region_psnr(pred, gt, regions and regions["mouth"]), _region_psnr(pred, gt, regions and regions["eyes"])))
        if progress is not None:
            progress(Progress("eval", i + 1, total, f"frame {frame}"))
    return report
