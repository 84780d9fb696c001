"""Sequence → glTF 2.0 binary: one textured mesh whose morph-target weights and node transform animate.

Two rigs, the same file structure:

* ``per-frame``: one morph target per frame (the frame minus the mean shape) and one-hot weights with
  STEP interpolation — exact, and what Blender's per-frame shape keys look like; large.
* ``pca``: K blend shapes from :mod:`dyntet.export.pca` and their weights per frame (LINEAR) — an
  engine-friendly rig, typically ≥ 10× smaller, with its error reported.

Head pose animates the node's translation and rotation (same interpolation as the weights). glTF is
+Y up in metres, as our head space, so no axis change is needed. Texture v runs downwards in glTF, so
UVs are written as (u, 1 − v). The ORM texture is used twice as glTF intends: metallicRoughness reads
G (roughness) and B (metalness), occlusion reads R.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from dyntet import __version__
from dyntet.export.glb import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, GlbBuilder, LazyArray
from dyntet.export.mesh import SeamSplit, split_uv_seams, vertex_normals
from dyntet.export.pca import PcaConfig, PcaReport, fit_pca_rig, measure_rig
from dyntet.formats.sequence import BlendShapeRig, Sequence
from dyntet_formats.camera import read_camera
from dyntet.progress import Progress, ProgressFn

LINEAR = 9729
LINEAR_MIPMAP_LINEAR = 9987
CLAMP_TO_EDGE = 33071


@dataclass
class GltfConfig:
    """What goes into the ``.glb``."""

    rig: Literal["per-frame", "pca"] = "per-frame"
    """``per-frame`` (one morph target per frame, exact) or ``pca`` (K blend shapes, compact)."""
    pca: PcaConfig = field(default_factory=PcaConfig)
    """K or error tolerance of the ``pca`` rig. A rig stored in the sequence is reused when its K
    matches ``pca.num_targets`` (or when that is None)."""
    morph_normals: bool = False
    """Also store a NORMAL delta per morph target (≈ doubles the size; engines otherwise keep the
    rest normals, which is fine for small deformations)."""
    animate_head_pose: bool = True
    """Animate the node transform with the head pose (False: the head stays at the origin)."""
    textures: bool = True
    """Embed the base-colour and ORM textures when the sequence has them."""
    camera: bool = True
    """Add the sequence's viewing camera (when it has one) as a glTF camera node."""
    png_compress_level: int = 6
    """zlib level 0–9 of embedded PNGs."""
    name: str = "DynTetHead"
    """Name of the node and mesh."""

    def __post_init__(self) -> None:
        if self.rig not in ("per-frame", "pca"):
            raise ValueError(f"rig must be 'per-frame' or 'pca', got {self.rig!r}")
        if not 0 <= self.png_compress_level <= 9:
            raise ValueError(f"png_compress_level must be in 0..9, got {self.png_compress_level}")


@dataclass
class GltfReport:
    """What :func:`write_glb` wrote."""

    path: Path
    size_bytes: int
    num_targets: int
    num_vertices: int
    """Vertices after splitting UV seams."""
    pca: PcaReport | None = None
    """Accuracy of the ``pca`` rig (None for ``per-frame``, which is exact)."""

    @property
    def megabytes(self) -> float:
        return self.size_bytes / 1e6


def write_glb(path: str | Path, seq: Sequence, config: GltfConfig | None = None,
              progress: ProgressFn | None = None) -> GltfReport:
    """Export ``seq`` as a glTF 2.0 binary at ``path`` (written atomically).

    Args:
        path: destination ``.glb``.
        seq: the sequence (a memory-mapped one is read frame by frame).
        config: rig and content options.
        progress: receives ``Progress`` reports of the stages ``pca`` or ``targets``, then ``glb``.

    Raises:
        ValueError: the file would exceed GLB's 4 GiB limit (use the ``pca`` rig or fewer frames).
    """
    cfg = config or GltfConfig()
    seq.validate(check_values=False)
    split = split_uv_seams(seq.faces, seq.uv_faces)
    rig: BlendShapeRig | None = None
    pca_report = None
    if cfg.rig == "pca":
        rig, pca_report = _pca_rig(seq, cfg.pca, progress)
        base = rig.mean
        targets = _pca_targets(rig, split)
        weights = rig.weights
        names = [f"pca_{k:03d}" for k in range(rig.num_targets)]
    else:
        base = _mean_frame(seq.vertices)
        targets = _per_frame_targets(seq.vertices, base, split, progress)
        weights = np.eye(seq.num_frames, dtype=np.float32)
        names = [f"frame_{t:06d}" for t in range(seq.num_frames)]
    base_split = base[split.vertex]
    base_normals = vertex_normals(base, seq.faces)
    normal_targets = _normal_targets(seq, split, base, base_normals, rig) if cfg.morph_normals else None

    doc = GlbBuilder(generator=f"dyntet {__version__}")
    doc.gltf["scene"] = 0
    uv_gltf = seq.uv[split.uv] * np.array([1, -1], np.float32) + np.array([0, 1], np.float32)
    attributes = {
        "POSITION": doc.add_accessor(base_split, "VEC3", ARRAY_BUFFER, min_max=True),
        "NORMAL": doc.add_accessor(base_normals[split.vertex], "VEC3", ARRAY_BUFFER),
        "TEXCOORD_0": doc.add_accessor(uv_gltf.astype(np.float32), "VEC2", ARRAY_BUFFER),
    }
    index_dtype = np.uint16 if split.num_vertices <= 0xFFFF else np.uint32  # 0xFFFF is reserved (restart)
    indices = doc.add_accessor(split.faces.reshape(-1).astype(index_dtype), "SCALAR", ELEMENT_ARRAY_BUFFER)
    target_refs = []
    for k, target in enumerate(targets):
        ref = {"POSITION": doc.add_accessor(target, "VEC3", ARRAY_BUFFER, min_max=True)}
        if normal_targets is not None:
            ref["NORMAL"] = doc.add_accessor(normal_targets[k], "VEC3", ARRAY_BUFFER)
        target_refs.append(ref)
    primitive = {"attributes": attributes, "indices": indices, "mode": 4,
                 "material": _add_material(doc, seq, cfg), "targets": target_refs}
    mesh = doc.add("meshes", {"name": cfg.name, "primitives": [primitive],
                              "weights": [float(w) for w in weights[0]], "extras": {"targetNames": names}})
    translations, rotations = _pose_trs(seq.head_pose)
    node: dict[str, Any] = {"name": cfg.name, "mesh": mesh}
    if cfg.animate_head_pose:
        node["translation"] = [float(x) for x in translations[0]]
        node["rotation"] = [float(x) for x in rotations[0]]
    nodes = [doc.add("nodes", node)]
    if cfg.camera and seq.camera is not None:
        nodes.append(_add_camera(doc, seq.camera))
    doc.add("scenes", {"name": "Scene", "nodes": nodes,
                       "extras": {"fps": float(seq.fps), "dyntet_fps": float(seq.fps), "frames": seq.num_frames,
                                  "source": seq.source}})
    _add_animation(doc, seq, cfg, weights, translations, rotations, nodes[0])

    def on_part(done: int, total: int) -> None:
        if progress is not None:
            progress(Progress(stage="glb", step=done, total=total, message="writing buffer views"))

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    size = doc.write(path, on_part)
    return GltfReport(path=Path(path), size_bytes=size, num_targets=len(names), num_vertices=split.num_vertices,
                      pca=pca_report)


def _mean_frame(vertices: np.ndarray) -> np.ndarray:
    """float32 [V, 3] mean over frames (accumulated in float64, frame chunks for memory maps)."""
    total = np.zeros(vertices.shape[1:], dtype=np.float64)
    for start in range(0, len(vertices), 64):
        total += np.asarray(vertices[start:start + 64], dtype=np.float64).sum(0)
    return (total / len(vertices)).astype(np.float32)


def _per_frame_targets(vertices: np.ndarray, base: np.ndarray, split: SeamSplit,
                       progress: ProgressFn | None) -> list[LazyArray]:
    """One lazy POSITION delta per frame; min/max found in a first pass (the JSON precedes the data)."""
    base_split = base[split.vertex]
    targets = []
    for t in range(len(vertices)):
        delta = np.asarray(vertices[t])[split.vertex] - base_split
        if not np.isfinite(delta).all():
            raise ValueError(f"frame {t} of the sequence has NaN or infinite vertex positions")
        targets.append(LazyArray(
            shape=delta.shape, dtype=np.dtype(np.float32),
            produce=lambda t=t: np.asarray(vertices[t])[split.vertex] - base_split,
            min=[float(x) for x in delta.min(0)], max=[float(x) for x in delta.max(0)]))
        if progress is not None and (t % 16 == 0 or t == len(vertices) - 1):
            progress(Progress(stage="targets", step=t + 1, total=len(vertices), message="measuring morph targets"))
    return targets


def _pca_rig(seq: Sequence, cfg: PcaConfig, progress: ProgressFn | None) -> tuple[BlendShapeRig, PcaReport]:
    stored = seq.rig
    if stored is not None and cfg.num_targets in (None, stored.num_targets):
        return stored, measure_rig(seq.vertices, stored)
    return fit_pca_rig(seq.vertices, cfg, progress)


def _pca_targets(rig: BlendShapeRig, split: SeamSplit) -> list[np.ndarray]:
    return [np.ascontiguousarray(rig.targets[k][split.vertex], dtype=np.float32) for k in range(rig.num_targets)]


def _normal_targets(seq: Sequence, split: SeamSplit, base: np.ndarray, base_normals: np.ndarray,
                    rig: BlendShapeRig | None) -> list[LazyArray]:
    """NORMAL deltas: exact per frame; for PCA the normals of mean + target (linearised, as engines blend)."""
    count = rig.num_targets if rig is not None else seq.num_frames

    def shape_of(k: int) -> np.ndarray:
        return base + rig.targets[k] if rig is not None else np.asarray(seq.vertices[k])

    return [LazyArray(shape=(split.num_vertices, 3), dtype=np.dtype(np.float32),
                      produce=lambda k=k: (vertex_normals(shape_of(k), seq.faces) - base_normals)[split.vertex])
            for k in range(count)]


def _add_material(doc: GlbBuilder, seq: Sequence, cfg: GltfConfig) -> int:
    material: dict[str, Any] = {"name": f"{cfg.name}Material", "doubleSided": False}
    pbr: dict[str, Any] = {}
    use_textures = cfg.textures and (seq.base_color is not None or seq.orm is not None)
    if use_textures:
        sampler = doc.add("samplers", {"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR,
                                       "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE})
    if use_textures and seq.base_color is not None:
        image = doc.add_image(_png(seq.base_color, cfg.png_compress_level), "base_color")
        pbr["baseColorTexture"] = {"index": doc.add("textures", {"sampler": sampler, "source": image})}
    else:
        pbr["baseColorFactor"] = [0.8, 0.62, 0.55, 1.0]
    if use_textures and seq.orm is not None:
        image = doc.add_image(_png(seq.orm, cfg.png_compress_level), "orm")
        texture = doc.add("textures", {"sampler": sampler, "source": image})
        pbr["metallicRoughnessTexture"] = {"index": texture}   # G roughness, B metalness
        material["occlusionTexture"] = {"index": texture}      # R occlusion
    else:
        pbr["metallicFactor"] = 0.0
        pbr["roughnessFactor"] = 0.6
    material["pbrMetallicRoughness"] = pbr
    return doc.add("materials", material)


def _png(image: np.ndarray, level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def _add_camera(doc: GlbBuilder, camera: dict[str, Any]) -> int:
    """A perspective camera from the sequence's ``intrinsics``/``size``/``camera_to_scene`` (OpenGL axes)."""
    cam = read_camera(camera)
    fx, fy, size, matrix = cam.fx, cam.fy, float(cam.size), cam.camera_to_scene
    # glTF cameras have a centred principal point: an off-centre (cx, cy) is dropped here.
    # aspectRatio = tan(xfov / 2) / tan(yfov / 2) = (size / fx) / (size / fy) for the square crop.
    index = doc.add("cameras", {"type": "perspective", "name": "DynTetCamera", "perspective": {
        "yfov": 2.0 * math.atan(size / (2.0 * fy)), "aspectRatio": fy / fx, "znear": 0.01, "zfar": 100.0}})
    translations, rotations = _pose_trs(matrix[None].astype(np.float32))
    return doc.add("nodes", {"name": "DynTetCamera", "camera": index,
                             "translation": [float(x) for x in translations[0]],
                             "rotation": [float(x) for x in rotations[0]]})


def _add_animation(doc: GlbBuilder, seq: Sequence, cfg: GltfConfig, weights: np.ndarray,
                   translations: np.ndarray, rotations: np.ndarray, node: int) -> None:
    interpolation = "STEP" if cfg.rig == "per-frame" else "LINEAR"
    times = (np.arange(seq.num_frames, dtype=np.float64) / seq.fps).astype(np.float32)
    time_acc = doc.add_accessor(times, "SCALAR", min_max=True)
    outputs = [("weights", doc.add_accessor(np.ascontiguousarray(weights, dtype=np.float32).reshape(-1),
                                            "SCALAR"))]
    if cfg.animate_head_pose:
        outputs.append(("translation", doc.add_accessor(translations, "VEC3")))
        outputs.append(("rotation", doc.add_accessor(rotations, "VEC4")))
    samplers = [{"input": time_acc, "output": acc, "interpolation": interpolation} for _, acc in outputs]
    channels = [{"sampler": i, "target": {"node": node, "path": p}} for i, (p, _) in enumerate(outputs)]
    doc.add("animations", {"name": "DynTetPerformance", "samplers": samplers, "channels": channels})


def _pose_trs(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigid 4×4 transforms [T, 4, 4] → translations float32 [T, 3] and unit quaternions float32 [T, 4]
    (x, y, z, w), signs chosen so consecutive keys interpolate the short way."""
    pose = np.asarray(pose, dtype=np.float64)
    quats = np.stack([_matrix_to_quaternion(m) for m in pose[:, :3, :3]])
    for i in range(1, len(quats)):
        if np.dot(quats[i], quats[i - 1]) < 0:
            quats[i] = -quats[i]
    return pose[:, :3, 3].astype(np.float32), quats.astype(np.float32)


def _matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix [3, 3] (orthonormalised first by SVD)."""
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    trace = np.trace(r)
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + r[i, i] - r[j, j] - r[k, k], 1e-300))
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
    q = np.asarray(q)
    return q / np.linalg.norm(q)
