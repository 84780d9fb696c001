"""Test clips and shapes for the preprocessing tests, made on the fly with the bundled ffmpeg.

The face comes from the public-domain astronaut photo: scikit-image ships it (when installed), and
``../shared/data/photos/astronaut.png`` holds the same picture on the team's machines. Without either,
the tests that need a real face skip.
"""

from __future__ import annotations

import pathlib
import subprocess

import cv2
import numpy as np

from dyntet.data.video import ffmpeg_exe

REFERENCE_PHOTO = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "photos" / "astronaut.png"

# The astronaut's face in the 512² photo: landmarks span x 179–271, y 71–177 (106 px tall).
FACE_CENTRE = (225.0, 124.0)
FACE_PX = 106.0


def load_astronaut() -> np.ndarray | None:
    try:
        from skimage import data

        return np.ascontiguousarray(data.astronaut()[..., :3])
    except Exception:  # noqa: BLE001 — optional dependency or its data missing
        pass
    if REFERENCE_PHOTO.exists():
        from PIL import Image

        with Image.open(REFERENCE_PHOTO) as img:
            return np.asarray(img.convert("RGB"))
    return None


def face_patch(photo: np.ndarray, face_px: float, pad: float = 1.3) -> np.ndarray:
    """A square patch around the astronaut's face, scaled so the face is ``face_px`` tall.

    ``pad`` is the patch's half side in face heights (1.3 keeps hair and shoulders)."""
    half = pad * FACE_PX
    x0, y0 = int(FACE_CENTRE[0] - half), int(FACE_CENTRE[1] - half * 0.8)
    side = int(2 * half)
    padded = cv2.copyMakeBorder(photo, side, side, side, side, cv2.BORDER_REFLECT)
    patch = padded[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side]
    out = max(8, int(round(side * face_px / FACE_PX)))
    return cv2.resize(patch, (out, out), interpolation=cv2.INTER_AREA if out < side else cv2.INTER_CUBIC)


def place(canvas_size: tuple[int, int], patches: list[tuple[np.ndarray, tuple[int, int]]],
          colour: tuple[int, int, int] = (70, 90, 110)) -> np.ndarray:
    """A ``(width, height)`` canvas with patches pasted at their top-left ``(x, y)`` corners."""
    width, height = canvas_size
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = colour
    for patch, (x, y) in patches:
        h, w = patch.shape[:2]
        canvas[y:y + h, x:x + w] = patch[: height - y, : width - x]
    return canvas


def sway(frame: np.ndarray, count: int, amplitude_px: float = 4.0, degrees: float = 2.0) -> list[np.ndarray]:
    """``count`` frames of the picture gently swaying (shift and in-plane turn), like a talking head."""
    h, w = frame.shape[:2]
    out = []
    for i in range(count):
        phase = 2 * np.pi * i / max(count, 8)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees * np.sin(phase), 1.0)
        matrix[:, 2] += (amplitude_px * np.sin(phase), 0.5 * amplitude_px * np.cos(phase))
        out.append(cv2.warpAffine(frame, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return out


def write_video(path: pathlib.Path, frames: list[np.ndarray], fps: float = 25.0, audio: bool = False,
                codec: str = "libx264", container: list[str] | None = None,
                output_args: list[str] | None = None) -> pathlib.Path:
    """Encode RGB frames (even sides for H.264) — optionally with a 440 Hz tone as audio — with ffmpeg."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", f"{fps}", "-i", "-"]
    if audio:
        duration = len(frames) / fps
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={duration:.3f}"]
    cmd += ["-map", "0:v"] + (["-map", "1:a"] if audio else [])
    if codec == "libx264":
        cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-crf", "12"]
    else:
        cmd += ["-c:v", codec, "-q:v", "2"]
    if audio:
        cmd += ["-c:a", "aac" if codec == "libx264" else "mp2"]
    cmd += (container or []) + (output_args or []) + [str(path)]
    data = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
    subprocess.run(cmd, input=data, check=True, capture_output=True)
    return path


def rotate_metadata(src: pathlib.Path, dst: pathlib.Path, degrees: int) -> pathlib.Path:
    """Copy a video, adding display-rotation metadata (what a phone writes for portrait clips)."""
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-display_rotation", str(degrees),
                    "-i", str(src), "-c", "copy", str(dst)], check=True, capture_output=True)
    return dst


def synthetic_face() -> np.ndarray:
    """A smooth face-like point set float64 [478, 3] in head space (metres) with MediaPipe's semantics:
    the mesh's planar layout bulged into a dome (≈ 14 cm wide, 18 cm tall, 6 cm deep), iris centres
    468 (subject's right, −X) and 473 (left, +X) at the eye openings, 63 mm apart."""
    from dyntet.face.topology import boundary_loops, face_mesh_layout, face_mesh_triangles

    layout = face_mesh_layout().astype(np.float64)
    r2 = np.clip((layout ** 2).sum(1), 0.0, 1.0)
    points = np.zeros((478, 3))
    points[:468, 0] = 0.07 * layout[:, 0]
    points[:468, 1] = 0.09 * layout[:, 1]
    points[:468, 2] = 0.06 * np.sqrt(1.0 - 0.8 * r2)
    eyes = [loop for loop in boundary_loops(face_mesh_triangles(fill_holes=False))[1:] if len(loop) == 16]
    centres = sorted((points[loop].mean(0) for loop in eyes), key=lambda c: c[0])
    for base, centre, side in ((468, centres[0], -1), (473, centres[1], 1)):
        centre = centre.copy()
        centre[0] = side * 0.0315
        points[base] = centre
        for k, (dx, dy) in enumerate(((0.005, 0), (0, 0.005), (-0.005, 0), (0, -0.005))):
            points[base + 1 + k] = centre + (dx, dy, 0.0)
    return points
