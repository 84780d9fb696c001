"""Synthetic-subject benchmark: time to generate the default talking-head dataset and its MP4.

Data: ``SyntheticConfig()`` — seed 0, astronaut face, 220 frames at 256², head mesh of 20,480 triangles
plus a 1,728-triangle neck and shoulders. Target on 2 CPU cores: ``wall_s`` ≲ 30.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from dyntet.formats.dataset import Dataset
from dyntet.data.synthetic import SyntheticConfig, build_subject, make_subject, render_video


def run() -> dict:
    config = SyntheticConfig()
    # Warm up the rasterizer's JIT so the figure is the generator's cost, not numba's compile time.
    with tempfile.TemporaryDirectory() as tmp:
        make_subject(Path(tmp) / "warm", SyntheticConfig(size=64, num_frames=2))
    subject = build_subject(config)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        root = make_subject(Path(tmp) / "subject", config)
        wall = time.perf_counter() - t0
        data = Dataset.open(root)
        model = data.face_model
        print(f"synthetic subject: {data.num_frames} frames at {data.size}², head {len(subject.faces)} triangles, "
              f"face model {model.mean_shape.shape[0]} points / {len(model.triangles)} triangles, "
              f"K={model.num_expression}: {wall:.1f} s ({1000 * wall / data.num_frames:.0f} ms/frame)")
        t0 = time.perf_counter()
        render_video(root, Path(tmp) / "subject.mp4")
        video = time.perf_counter() - t0
        print(f"H.264 video of the frames: {video:.2f} s")
        return {
            "wall_s": round(wall, 2),
            "ms_per_frame": round(1000 * wall / data.num_frames, 1),
            "video_s": round(video, 2),
            "frames": data.num_frames,
            "size": data.size,
            "head_triangles": int(len(subject.faces)),
            "face_model_points": int(data.face_model.mean_shape.shape[0]),
        }
