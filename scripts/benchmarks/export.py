"""Export benchmark: glb size of the per-frame and PCA rigs and the PCA rig's error.

Data: the synthetic talking head of ``dyntet.export.synthetic`` — a 126×200 latitude–longitude ellipsoid
(24,802 vertices, 49,600 faces, UV seam at the back), 300 frames at 25 fps of speech-like deformation
(rotating jaw, lips, brows, blinks, cheeks, 16 random local pulls, 0.05 mm per-frame jitter) and head
motion, with 1024² procedural base-colour and ORM textures. PCA K is picked by the exporter's defaults
(RMS ≤ 0.5 mm and max ≤ 1 mm).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from dyntet.export.gltf import GltfConfig, write_glb
from dyntet.export.synthetic import SyntheticHeadConfig, synthetic_sequence


def run() -> dict:
    t0 = time.perf_counter()
    seq = synthetic_sequence(SyntheticHeadConfig(num_frames=300, rings=126, segments=200, texture_size=1024))
    print(f"synthetic sequence: T={seq.num_frames}, V={seq.num_vertices}, F={seq.num_faces} "
          f"({time.perf_counter() - t0:.1f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        per_frame = write_glb(Path(tmp) / "per_frame.glb", seq, GltfConfig(rig="per-frame"))
        per_frame_s = time.perf_counter() - t0
        print(f"per-frame rig: {per_frame.megabytes:.2f} MB, {per_frame.num_targets} targets, "
              f"{per_frame.num_vertices} split vertices, {per_frame_s:.2f} s")
        t0 = time.perf_counter()
        pca = write_glb(Path(tmp) / "pca.glb", seq, GltfConfig(rig="pca"))
        pca_s = time.perf_counter() - t0
        assert pca.pca is not None
        print(f"pca rig: {pca.megabytes:.2f} MB, K={pca.num_targets}, RMS {pca.pca.rms_mm:.3f} mm, "
              f"max {pca.pca.max_mm:.3f} mm, {pca_s:.2f} s (fit + write)")
    ratio = per_frame.size_bytes / pca.size_bytes
    print(f"size ratio per-frame / pca: {ratio:.1f}x (target >= 10x at <= 0.5 mm RMS)")
    return {
        "glb_mb_per_frame_rig": round(per_frame.megabytes, 2),
        "glb_mb_pca_rig": round(pca.megabytes, 2),
        "pca_rms_mm": round(pca.pca.rms_mm, 4),
        "pca_max_mm": round(pca.pca.max_mm, 4),
        "pca_targets": pca.num_targets,
        "glb_size_ratio": round(ratio, 1),
        "glb_per_frame_s": round(per_frame_s, 2),
        "glb_pca_s": round(pca_s, 2),
    }
