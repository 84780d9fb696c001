"""Stage 4: focal length, landmark face model, head poses, smoothing and the clip's crop (cached)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dyntet.formats.dataset import FaceModel, split_ranges
from dyntet.data.video import VideoInfo
from dyntet.face.camera_fit import estimate_focal, fit_camera, lift_landmarks, project
from dyntet.face.crop import CropBox, clip_crop
from dyntet.face.face_model import LandmarkFaceModelBuilder, image_to_shape, normalize_shapes
from dyntet.face.options import PreprocessOptions
from dyntet.face.report import summary
from dyntet.face.runtime import Cache, Reporter, save_npz
from dyntet.face.smoothing import pose_jitter, smooth_poses
from dyntet.face.tracking import TrackState


@dataclass
class FitResult:
    """Everything the later stages need from the fit (cached in ``fit.npz``)."""

    frame_index: np.ndarray        # int32 [N] kept source frames
    crop: CropBox
    intrinsics: np.ndarray         # float32 [4] crop pixels
    pose: np.ndarray               # float32 [N, 4, 4] smoothed
    face_model: FaceModel
    expression: np.ndarray         # float32 [N, K]
    tracked_crop: np.ndarray       # float32 [N, 478, 2] tracked landmarks in crop pixels
    fitted_crop: np.ndarray        # float32 [N, 478, 2] face model through smoothed camera, crop pixels
    metrics: dict[str, Any]

    def save(self, path: Path) -> None:
        save_npz(path, frame_index=self.frame_index,
                 crop=np.array([self.crop.x, self.crop.y, self.crop.side, self.crop.size]),
                 intrinsics=self.intrinsics, pose=self.pose, mean_shape=self.face_model.mean_shape,
                 expression_basis=self.face_model.expression_basis, triangles=self.face_model.triangles,
                 expression=self.expression, tracked_crop=self.tracked_crop, fitted_crop=self.fitted_crop,
                 metrics=np.array(json.dumps(self.metrics)))

    @classmethod
    def load(cls, path: Path) -> "FitResult":
        with np.load(path, allow_pickle=False) as d:
            crop = CropBox(*(int(v) for v in d["crop"]))
            model = FaceModel(d["mean_shape"], d["expression_basis"], d["triangles"])
            return cls(d["frame_index"], crop, d["intrinsics"], d["pose"], model, d["expression"],
                       d["tracked_crop"], d["fitted_crop"], json.loads(str(d["metrics"])))


def fit_clip(state: TrackState, info: VideoInfo, fps: float, options: PreprocessOptions, cache: Cache,
             report: Reporter) -> FitResult:
    """Stage 4 (cached in ``fit.npz``) on the tracked frames: focal length from face rigidity, the face
    model from perspective-corrected shapes (PCA on the training frames only), per-frame pose by robust
    reprojection, zero-lag smoothing, the crop, and the figures the report needs."""
    path = cache.path("fit.npz")
    if path.exists():
        return FitResult.load(path)
    report("fit", 0, 5, "face model", force=True)
    frame_index = np.flatnonzero(state.found).astype(np.int32)
    landmarks = state.landmarks[state.found].astype(np.float64)            # [N, 478, 3] source pixels
    n = len(frame_index)
    (train_lo, train_hi), _ = split_ranges(n)
    train = np.zeros(n, bool)
    train[train_lo:train_hi] = True
    size = (info.width, info.height)
    principal = (info.width / 2.0, info.height / 2.0)

    weak = normalize_shapes(image_to_shape(landmarks), train)
    report.check("fitting")
    if options.camera.focal is not None:
        focal, constrained = float(options.camera.focal), True
    else:
        estimate = estimate_focal(landmarks[train], size, weak.weights, options.camera)
        focal, constrained = estimate.focal, estimate.constrained
    report("fit", 1, 5, "face model")
    report.check("fitting")
    shapes = normalize_shapes(image_to_shape(lift_landmarks(landmarks, focal, principal)), train)
    model_fit = LandmarkFaceModelBuilder(options.face_model).build(shapes.head, train)
    points = model_fit.landmark_points(model_fit.expression).astype(np.float64)
    report("fit", 2, 5, "head pose")
    report.check("fitting")
    camera = fit_camera(points, landmarks[..., :2], size, shapes.input_from_head,
                        replace(options.camera, focal=focal))
    report("fit", 3, 5, "smoothing")
    rotation, translation = smooth_poses(camera.rotation, camera.translation, frame_index, fps, options.smoothing)
    crop = clip_crop(landmarks, size, options.size, options.crop)
    intrinsics = crop.intrinsics(focal, principal)
    pose = np.tile(np.eye(4), (n, 1, 1))
    pose[:, :3, :3], pose[:, :3, 3] = rotation, translation
    tracked_crop = crop.to_crop(landmarks[..., :2])
    fitted_raw = crop.to_crop(project(points, camera.rotation, camera.translation, focal, principal))
    fitted = crop.to_crop(project(points, rotation, translation, focal, principal))
    err_raw = np.linalg.norm(fitted_raw - tracked_crop, axis=-1)
    err = np.linalg.norm(fitted - tracked_crop, axis=-1)
    jit_raw = pose_jitter(camera.rotation, camera.translation, frame_index)
    jit = pose_jitter(rotation, translation, frame_index)
    report("fit", 4, 5, "report")
    side = float(max(size))
    metrics = {
        "focal_px_source": focal, "focal_constrained": constrained,
        "fov_deg": float(np.degrees(2 * np.arctan(side / 2 / focal))),
        "num_expression": int(model_fit.expression.shape[1]),
        "explained_variance": model_fit.explained_variance,
        "variance_ratio_head": [float(v) for v in model_fit.variance_ratio[:8]],
        "reproj_raw": summary(np.median(err_raw, 1)), "reproj_smoothed": summary(np.median(err, 1)),
        "reproj_smoothed_all_points": summary(err),
        "reproj_px_per_source_px": crop.scale,
        "jitter_raw_deg": summary(jit_raw[0]), "jitter_raw_mm": summary(jit_raw[1]),
        "jitter_deg": summary(jit[0]), "jitter_mm": summary(jit[1]),
        "distance_m": float(np.median(-translation[:, 2])),
    }
    result = FitResult(frame_index, crop, intrinsics, pose.astype(np.float32), model_fit.face_model,
                       model_fit.expression, tracked_crop.astype(np.float32), fitted.astype(np.float32), metrics)
    result.save(path)
    report("fit", 5, 5, "fit done", force=True)
    return result
