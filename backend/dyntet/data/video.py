"""Decoding video frames and audio with the ffmpeg binary that imageio-ffmpeg bundles.

Why ffmpeg through a pipe: it reads whatever a phone, camera or archive wrote (.mp4, .mov, .mkv,
.webm, MPEG program streams such as ``.mpg``), applies rotation metadata (autorotate, so portrait
phone clips come out upright) and resamples variable frame rate to a constant rate with its ``fps``
filter, so frame ``i`` of a decode is the picture shown at time ``i / fps`` — what audio alignment
and the expression window need. Frames stream one at a time: memory does not grow with clip length
or frame size.

Conventions: frames are uint8 ``[H, W, 3]`` RGB, row 0 at the top, in *display* orientation (after
rotation). Crop boxes are ``(x, y, width, height)`` in display pixels. Audio is int16 mono.
"""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from dyntet_formats.wav import SAMPLE_RATE

AUDIO_SAMPLE_RATE = SAMPLE_RATE
"""Sample rate of dataset audio (Hz): what speech models expect."""

_STILL_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "gif")


class VideoError(Exception):
    """The file cannot be used as a video; the message says why and what to do."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learnt about a video file."""

    path: Path
    width: int
    """Display width in pixels (after rotation metadata is applied)."""
    height: int
    """Display height in pixels."""
    rotation: int
    """Rotation metadata in degrees (0, 90, 180 or 270); frames are decoded already rotated."""
    fps: float
    """Average frame rate of the video stream (frames per second)."""
    duration_s: float | None
    """Container duration in seconds, when the file states it."""
    container: str
    """ffmpeg's name of the container format, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"`` or ``"mpeg"``."""
    video_codec: str
    audio_codec: str | None
    """Codec of the first audio stream, or None when there is no audio."""

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    def frame_count_estimate(self, fps: float, max_seconds: float | None = None) -> int:
        """Frames a decode at ``fps`` will yield (from the stated duration; 0 when unknown)."""
        duration = self.duration_s or 0.0
        if max_seconds is not None:
            duration = min(duration, max_seconds) if duration else max_seconds
        return int(round(duration * fps))


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped inside the imageio-ffmpeg wheel."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _check_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VideoError(f"video file {path} does not exist")
    if path.is_dir():
        raise VideoError(f"{path} is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(f"video file {path} is empty (0 bytes)")
    return path.resolve()


def _stream_lines(text: str, section: str) -> list[str]:
    """Lines of one ``Input #0`` / ``Output #0`` section of ffmpeg's banner."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith(section):
            inside = True
            lines.append(line)
        elif inside and line and not line.startswith(" "):
            break
        elif inside:
            lines.append(line)
    return lines


def _parse_fps(stream_line: str) -> float | None:
    for unit in ("fps", "tbr"):
        match = re.search(r"([\d.]+)(k?) " + unit, stream_line)
        if match:
            value = float(match.group(1)) * (1000.0 if match.group(2) else 1.0)
            if value > 0:
                return value
    return None


def probe(path: str | Path) -> VideoInfo:
    """Inspect a video file by decoding its first frame.

    Raises:
        VideoError: the file is missing or empty, is not a video (no video stream, a still image,
            unreadable data), or holds no decodable frame.
    """
    path = _check_file(Path(path))
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0?", "-frames:v", "1",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    result = subprocess.run(cmd, capture_output=True, timeout=120)
    text = result.stderr.decode("utf-8", "replace")
    inputs = _stream_lines(text, "Input #0")
    if not inputs:
        reason = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        raise VideoError(f"cannot read {path} as a video (ffmpeg: {reason})")
    container = re.match(r"Input #0, (.+?), from", inputs[0])
    container_name = container.group(1) if container else "unknown"
    video_lines = [line for line in inputs if re.search(r"Stream #0:\d+.*: Video: ", line)
                   and "attached pic" not in line]
    audio_lines = [line for line in inputs if re.search(r"Stream #0:\d+.*: Audio: ", line)]
    audio_codec = re.search(r"Audio: (\w+)", audio_lines[0]).group(1) if audio_lines else None
    if not video_lines:
        extra = f" (it has audio only: {audio_codec})" if audio_codec else ""
        raise VideoError(f"{path} has no video stream{extra}: give a video of the speaker")
    if container_name in _STILL_IMAGE_FORMATS:
        raise VideoError(f"{path} is a still image ({container_name}), not a video: preprocessing needs "
                         f"footage of the speaker talking")
    video_line = video_lines[0]
    video_codec = re.search(r"Video: (\w+)", video_line).group(1)
    fps = _parse_fps(video_line)
    rotation = 0
    rot = re.search(r"display ?matrix: rotation of (-?[\d.]+) degrees", text, re.IGNORECASE)
    if rot:
        rotation = int(round(float(rot.group(1)))) % 360
    else:
        rot = re.search(r"^\s*rotate\s*:\s*(-?\d+)", text, re.MULTILINE)
        if rot:
            rotation = int(rot.group(1)) % 360
    duration = None
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    if dur:
        duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3))
    outputs = _stream_lines(text, "Output #0")
    size = None
    for line in outputs:
        if "Video: rawvideo" in line:
            match = re.search(r", (\d+)x(\d+)", line)
            if match:
                size = int(match.group(1)), int(match.group(2))
    if size is None:
        match = re.search(r", (\d{2,6})x(\d{2,6})", video_line)
        if match is None:
            raise VideoError(f"cannot tell the frame size of {path} (ffmpeg said: {video_line.strip()})")
        size = int(match.group(1)), int(match.group(2))
        if rotation in (90, 270):
            size = size[1], size[0]
    if result.returncode != 0 or len(result.stdout) < size[0] * size[1] * 3:
        reason = text.strip().splitlines()[-1] if text.strip() else ""
        raise VideoError(f"{path} contains no decodable video frame (zero length or damaged file). {reason}")
    if fps is None:
        raise VideoError(f"cannot tell the frame rate of {path}; re-encode it, e.g. "
                         f"`ffmpeg -i IN -r 25 OUT.mp4`")
    return VideoInfo(path=path, width=size[0], height=size[1], rotation=rotation, fps=fps, duration_s=duration,
                     container=container_name, video_codec=video_codec, audio_codec=audio_codec)


class _StderrDrain(threading.Thread):
    """Collects a subprocess's stderr so a chatty ffmpeg can never block on a full pipe."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.chunks: list[bytes] = []

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read(4096), b""):
            self.chunks.append(chunk)

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace").strip()


def read_frames(info: VideoInfo, fps: float, *, crop: tuple[int, int, int, int] | None = None,
                size: tuple[int, int] | None = None, max_seconds: float | None = None,
                start: int = 0) -> Iterator[np.ndarray]:
    """Decode frames at a constant rate, optionally cropped and resized, one at a time.

    Args:
        info: from :func:`probe`.
        fps: output frame rate; frame ``i`` shows the picture at time ``i / fps`` (variable frame rate
            input is resampled by nearest timestamps).
        crop: ``(x, y, width, height)`` in display pixels, inside the frame.
        size: ``(width, height)`` to scale to after cropping (area filter: for analysis passes).
        max_seconds: decode only the first seconds of the clip.
        start: skip the first ``start`` output frames inside ffmpeg (resuming an interrupted pass).

    Yields:
        uint8 [H, W, 3] RGB frames (a fresh writable array each).

    Raises:
        VideoError: ffmpeg failed while decoding.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    width, height = info.width, info.height
    # Convert to RGB before cropping: cropping YUV 4:2:0 rounds odd offsets and sizes to even ones.
    filters = [f"fps={fps!r}", "format=rgb24"]
    if start > 0:
        filters.append(f"select=gte(n\\,{int(start)})")
    if crop is not None:
        x, y, w, h = (int(v) for v in crop)
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > info.width or y + h > info.height:
            raise ValueError(f"crop {crop} is not inside the {info.width}x{info.height} frame")
        filters.append(f"crop={w}:{h}:{x}:{y}")
        width, height = w, h
    if size is not None and (size[0], size[1]) != (width, height):
        filters.append(f"scale={int(size[0])}:{int(size[1])}:flags=area")
        width, height = int(size[0]), int(size[1])
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]
    if max_seconds is not None:
        cmd += ["-t", f"{float(max_seconds):.6f}"]
    cmd += ["-i", str(info.path), "-map", "0:v:0", "-vf", ",".join(filters), "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    frame_bytes = width * height * 3
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=frame_bytes)
    drain = _StderrDrain(process.stderr)
    drain.start()
    try:
        while True:
            data = process.stdout.read(frame_bytes)
            if not data:
                break
            if len(data) < frame_bytes:
                break  # a truncated last frame: the file ends mid-frame
            yield np.frombuffer(data, np.uint8).reshape(height, width, 3).copy()
        code = process.wait()
        drain.join(timeout=5)
        if code != 0:
            raise VideoError(f"ffmpeg failed while decoding {info.path}: {drain.text() or f'exit code {code}'}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def read_frame_at(info: VideoInfo, time_s: float, max_side: int | None = None) -> np.ndarray | None:
    """The frame shown at ``time_s`` seconds (fast input seeking); None past the end.

    Args:
        max_side: scale the frame down (area filter) so its longer side is at most this.

    Returns:
        uint8 [H, W, 3] RGB, display orientation; ``H, W`` are the display size unless scaled down.
    """
    width, height = info.width, info.height
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-ss", f"{max(0.0, time_s):.6f}",
           "-i", str(info.path), "-map", "0:v:0", "-frames:v", "1"]
    if max_side is not None and max(width, height) > max_side:
        factor = max_side / max(width, height)
        width, height = max(1, round(width * factor)), max(1, round(height * factor))
        cmd += ["-vf", f"scale={width}:{height}:flags=area"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    result = subprocess.run(cmd, capture_output=True, timeout=120)
    frame_bytes = width * height * 3
    if result.returncode != 0 or len(result.stdout) < frame_bytes:
        return None
    return np.frombuffer(result.stdout[:frame_bytes], np.uint8).reshape(height, width, 3).copy()


def read_audio(info: VideoInfo, *, sample_rate: int = AUDIO_SAMPLE_RATE,
               max_seconds: float | None = None) -> np.ndarray | None:
    """The first audio stream as int16 [S] mono samples at ``sample_rate``; None when there is none."""
    if not info.has_audio:
        return None
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]
    if max_seconds is not None:
        cmd += ["-t", f"{float(max_seconds):.6f}"]
    cmd += ["-i", str(info.path), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(int(sample_rate)),
            "-f", "s16le", "-acodec", "pcm_s16le", "-"]
    result = subprocess.run(cmd, capture_output=True, timeout=600)
    if result.returncode != 0:
        raise VideoError(f"ffmpeg could not decode the audio of {info.path}: "
                         f"{result.stderr.decode('utf-8', 'replace').strip()}")
    return np.frombuffer(result.stdout[: len(result.stdout) // 2 * 2], "<i2").copy()
