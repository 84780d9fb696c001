"""The synthetic talking-head subject: a procedural person written as an ordinary dataset folder.

No external assets are needed (the astronaut face photo ships inside scikit-image; a procedural face
is the alternative). One seed gives one person — head proportions, skin, hair, shirt, backdrop — and one
clip: an expression rig driven by smooth talking-like curves, small head motion, a fixed camera and
fixed lighting. The folder has exactly the layout ``dyntet preprocess`` writes
(``docs/dataset-format.md``), with exact ground truth:

* ``tracking.npz``: the true intrinsics, head-to-camera poses and α (the rig weights, K = 8 —
  :data:`~dyntet.data.face_rig.RIG_CONTROLS`); no landmarks.
* ``face_model.npz``: an exact linear face model: ≈ 650–950 of the head's own vertices over the face
  (forehead to chin, cheek to cheek) at α = 0, the blend shapes at those points, triangles over them.
* masks: 2 where the head mesh is the visible surface, 1 neck/shoulders, 0 backdrop.
* ``synthetic_truth.npz`` (extra file): the full head mesh per frame, see :func:`make_subject`.

API::

    from dyntet.data.synthetic import SyntheticConfig, make_subject, render_video
    root = make_subject(Path("subject"), SyntheticConfig(seed=0))   # 220 frames at 256², ≲ 30 s on 2 cores
    render_video(root, Path("subject.mp4"))                          # H.264 of the frames

Parts: :mod:`.head_mesh` (geometry), :mod:`.face_rig` (blend shapes, face model),
:mod:`.talking_motion` (curves), :mod:`.face_texture` (colours), :mod:`.synthetic_render` (images).
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from dyntet.formats.atomic import write_bytes_atomic
from dyntet.formats.dataset import Dataset, DatasetError, DatasetWriter, Tracking
from dyntet.data.face_rig import RIG_CONTROLS, blend_shapes, build_face_model
from dyntet.data.face_texture import FaceImage, background_plate, linear_to_srgb
from dyntet.data.head_mesh import FaceLayout, HeadIdentity, build_head, build_torso
from dyntet.data.synthetic_render import SubjectRenderer
from dyntet.data.talking_motion import HeadMotion, expression_curves, head_motion
from dyntet.progress import Progress, ProgressFn

TRUTH_FILE = "synthetic_truth.npz"

# Independent random streams, so changing how one part draws numbers leaves the others alone.
_IDENTITY, _EXPRESSION, _MOTION, _BACKDROP = range(4)


@dataclass
class SyntheticConfig:
    """Everything that defines a synthetic subject; the same config always gives the same folder."""

    size: int = 256
    """Side of the square frames in pixels."""
    num_frames: int = 220
    fps: float = 25.0
    seed: int = 0
    """Picks the person (proportions, colours, backdrop) and the clip (expressions, motion)."""
    texture: FaceImage = "astronaut"
    """Face image projected onto the head: scikit-image's astronaut photo or a procedural painting."""
    focal: float = 1.6
    """fx = fy = focal · size pixels (a ≈ 35° field of view); the principal point is the centre."""
    distance: float = 0.6
    """Camera to head origin in metres at the rest pose."""
    motion: HeadMotion = field(default_factory=HeadMotion)
    light_space: Literal["head", "camera"] = "head"
    """Frame the fixed lights live in. "head": shading rides with the head, so a frame's colours depend
    only on the canonical surface and the expression (what DynTet's appearance and light can represent
    with a head-space environment); "camera": lights fixed in the room, as in real footage."""
    head_level: int = 5
    """Icosphere level of the head mesh (5: 10 242 vertices, 20 480 triangles)."""
    face_model_level: int = 4
    """Coarser level whose vertices the face model uses (4: ≈ 800 points)."""

    def __post_init__(self) -> None:
        if not 32 <= self.size <= 2048 or self.size % 2:
            raise ValueError(f"size must be an even number of pixels in 32..2048 (H.264 needs even sides), "
                             f"got {self.size}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be at least 2 (one train and one test frame), got {self.num_frames}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.texture not in ("astronaut", "procedural"):
            raise ValueError(f"texture must be 'astronaut' or 'procedural', got {self.texture!r}")
        if self.light_space not in ("head", "camera"):
            raise ValueError(f"light_space must be 'head' or 'camera', got {self.light_space!r}")
        if not 0.3 <= self.focal <= 10.0:
            raise ValueError(f"focal must be in 0.3..10 (times the image size), got {self.focal}")
        if not 0.3 <= self.distance <= 5.0:
            raise ValueError(f"distance must be in 0.3..5 metres, got {self.distance}")
        if not 1 <= self.face_model_level < self.head_level <= 6:
            raise ValueError(f"need 1 <= face_model_level < head_level <= 6, got {self.face_model_level}, "
                             f"{self.head_level}")

    @property
    def intrinsics(self) -> np.ndarray:
        """float32 [4] fx, fy, cx, cy in pixels."""
        f = self.focal * self.size
        return np.array([f, f, self.size / 2, self.size / 2], np.float32)

    def rest_pose(self) -> np.ndarray:
        """float64 [4, 4] head-to-camera at rest: facing the camera, head a little above the centre."""
        pose = np.eye(4)
        pose[:3, 3] = [0.0, 0.04 * self.distance, -self.distance]
        return pose


@dataclass(frozen=True)
class Subject:
    """A synthetic person and clip, before rendering (all arrays float64 unless said otherwise)."""

    identity: HeadIdentity
    layout: FaceLayout
    neutral: np.ndarray        # [V, 3] head at α = 0, head space
    faces: np.ndarray          # int64 [F, 3]
    shapes: np.ndarray         # [K, V, 3] blend shapes
    torso_verts: np.ndarray    # [Vt, 3] rest-head frame
    torso_faces: np.ndarray    # int64 [Ft, 3]
    expression: np.ndarray     # [T, K] α
    pose: np.ndarray           # [T, 4, 4] head-to-camera
    torso_pose: np.ndarray     # [4, 4] torso-to-camera (fixed)

    def head_vertices(self, frames: slice | np.ndarray | int = slice(None)) -> np.ndarray:
        """Posed-expression head vertices in head space: [T', V, 3] (float32)."""
        alpha = np.atleast_2d(self.expression[frames])
        verts = self.neutral[None] + np.tensordot(alpha, self.shapes, axes=([1], [0]))
        return verts.astype(np.float32)


def build_subject(config: SyntheticConfig) -> Subject:
    """Draw the person and the clip for ``config`` (no rendering)."""
    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng([config.seed, stream])
    identity = HeadIdentity.sample(rng(_IDENTITY))
    layout = FaceLayout.from_identity(identity)
    head = build_head(identity, layout, level=config.head_level)
    torso_verts, torso_faces = build_torso(identity)
    rest = config.rest_pose()
    motion = head_motion(rng(_MOTION), config.num_frames, config.fps, config.motion)
    expression = expression_curves(rng(_EXPRESSION), config.num_frames, config.fps)
    return Subject(identity=identity, layout=layout, neutral=head.vertices, faces=head.faces,
                   shapes=blend_shapes(head.vertices, identity, layout), torso_verts=torso_verts,
                   torso_faces=torso_faces, expression=expression, pose=rest[None] @ motion, torso_pose=rest)


def make_subject(out: Path, config: SyntheticConfig | None = None, progress: ProgressFn | None = None,
                 batch: int = 8) -> Path:
    """Generate the subject and write it as a dataset folder at ``out``; returns ``out``.

    Besides the standard files, writes ``synthetic_truth.npz`` (numpy, no pickles):
    ``head_vertices`` float32 [N, V, 3] (head space, per frame), ``head_faces`` int32 [F, 3] (CCW
    outward), ``neutral_vertices`` float32 [V, 3] (α = 0), ``blend_shapes`` float32 [K, V, 3],
    ``face_model_vertex_index`` int32 [P] (head vertex of each face-model point), ``torso_vertices``
    float32 [Vt, 3] and ``torso_faces`` int32 [Ft, 3] (torso frame), ``torso_pose`` float32 [4, 4]
    (torso-to-camera, fixed), ``controls`` str [K] (rig control names).
    """
    config = config or SyntheticConfig()
    out = Path(out)
    started = time.monotonic()
    subject = build_subject(config)
    face_model, face_index = build_face_model(subject.neutral, subject.identity, subject.layout,
                                              config.face_model_level)
    plate = background_plate(config.size, np.random.default_rng([config.seed, _BACKDROP]))
    renderer = SubjectRenderer(subject, config.texture, config.intrinsics, config.size, plate, config.light_space)
    writer = DatasetWriter(out, config.size, config.fps)
    writer.write_background(_to_srgb8(plate))
    n = config.num_frames
    for start in range(0, n, batch):
        frames = np.arange(start, min(start + batch, n))
        rgb, labels = renderer.render(subject.head_vertices(frames), subject.pose[frames])
        for i, frame in enumerate(frames):
            writer.write_frame(int(frame), _to_srgb8(rgb[i]), labels[i])
        if progress is not None:
            done = int(frames[-1]) + 1
            elapsed = time.monotonic() - started
            progress(Progress(stage="synthetic", step=done, total=n, message=f"rendered frame {done}/{n}",
                              eta_s=elapsed / done * (n - done)))
    _write_truth(out / TRUTH_FILE, subject, face_index)
    tracking = Tracking(intrinsics=config.intrinsics, pose=subject.pose, expression=subject.expression,
                        frame_index=np.arange(n))
    source = {"kind": "synthetic", "seed": config.seed, "texture": config.texture, "controls": list(RIG_CONTROLS),
              "light_space": config.light_space, "config": _jsonable(asdict(config))}
    return writer.finish(tracking, face_model, source)


def _to_srgb8(linear: np.ndarray) -> np.ndarray:
    return np.round(linear_to_srgb(linear) * 255.0).astype(np.uint8)


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _write_truth(path: Path, subject: Subject, face_index: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, head_vertices=subject.head_vertices(), head_faces=subject.faces.astype(np.int32),
             neutral_vertices=subject.neutral.astype(np.float32), blend_shapes=subject.shapes.astype(np.float32),
             face_model_vertex_index=face_index.astype(np.int32),
             torso_vertices=subject.torso_verts.astype(np.float32), torso_faces=subject.torso_faces.astype(np.int32),
             torso_pose=subject.torso_pose.astype(np.float32), controls=np.array(RIG_CONTROLS))
    write_bytes_atomic(path, buffer.getvalue())


def render_video(dataset: Path, out_mp4: Path, quality: float = 8.0) -> Path:
    """Encode a dataset's frames as an H.264 MP4 (yuv420p, the dataset's fps); returns ``out_mp4``.

    ``quality`` is imageio-ffmpeg's 0–10 scale (10 best). Used to feed the synthetic subject through
    ``dyntet preprocess`` like real footage.
    """
    import imageio_ffmpeg

    data = Dataset.open(dataset)
    if data.size % 2:
        raise DatasetError(f"H.264 (yuv420p) needs even frame sides, the dataset's frames are {data.size}²")
    out_mp4 = Path(out_mp4)
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_mp4.with_name(f".{out_mp4.stem}.tmp{out_mp4.suffix}")
    writer = imageio_ffmpeg.write_frames(str(tmp), (data.size, data.size), fps=data.fps, codec="libx264",
                                         pix_fmt_out="yuv420p", quality=quality, macro_block_size=1,
                                         ffmpeg_log_level="error")
    try:
        writer.send(None)
        for i in data.split("all"):
            writer.send(np.ascontiguousarray(data.frame(i)))
        writer.close()
        tmp.replace(out_mp4)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
    return out_mp4
