"""Radiance ``.hdr`` (RGBE) images: the format Blender's World and most engines read for light probes.

Each pixel stores a shared exponent and three 8-bit mantissas, so values keep about 1 % relative
precision over a huge range. We write the "new" run-length scanline layout (what Radiance and Blender
write themselves) with literal chunks only; the reader also decodes runs and flat (unencoded) files.
Format reference: Greg Ward, "Real Pixels", Graphics Gems II (1991), and the Radiance file docs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dyntet_formats.errors import FormatError

_MAGICS = (b"#?RADIANCE", b"#?RGBE")
_MAX_HEADER_LINES = 256


class HdrError(FormatError):
    """A ``.hdr`` file could not be read: the message names the file and what is wrong with it."""


def float_to_rgbe(image: np.ndarray) -> np.ndarray:
    """Encode linear RGB into shared-exponent bytes.

    Args:
        image: float [H, W, 3], linear, finite; negative values are clamped to 0.

    Returns:
        uint8 [H, W, 4] = (r, g, b, e) mantissas and biased exponent (e = 0 means black).
    """
    rgb = np.clip(np.asarray(image, dtype=np.float64), 0.0, None)
    peak = rgb.max(axis=-1)
    mantissa, exponent = np.frexp(peak)  # peak = mantissa * 2**exponent, mantissa in [0.5, 1)
    visible = peak > 1e-32
    scale = np.where(visible, mantissa * 256.0 / np.where(visible, peak, 1.0), 0.0)
    out = np.zeros(rgb.shape[:-1] + (4,), dtype=np.uint8)
    out[..., :3] = np.clip(np.floor(rgb * scale[..., None]), 0, 255).astype(np.uint8)
    out[..., 3] = np.where(visible, np.clip(exponent + 128, 0, 255), 0).astype(np.uint8)
    return out


def rgbe_to_float(rgbe: np.ndarray) -> np.ndarray:
    """Decode shared-exponent bytes (uint8 [H, W, 4]) into float32 [H, W, 3] linear RGB (mid-bucket)."""
    e = rgbe[..., 3].astype(np.int32)
    scale = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0)  # 2**(e-128) / 256
    return ((rgbe[..., :3].astype(np.float64) + 0.5) * scale[..., None]).astype(np.float32)


def write_hdr(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a linear float image as a Radiance ``.hdr`` file.

    Args:
        path: destination file.
        image: float [H, W, 3], linear RGB, finite, H, W ≥ 1 (an environment map is [H, 2H, 3]).

    Returns:
        The path written.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"HDR image must be float [H, W, 3] with H, W >= 1, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"HDR image must be floating point (linear radiance), got dtype {image.dtype}")
    if not np.isfinite(image).all():
        raise ValueError("HDR image contains NaN or infinite values; Radiance RGBE cannot store them")
    height, width = image.shape[:2]
    rgbe = float_to_rgbe(image)
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode("ascii")
    path = Path(path)
    with open(path, "wb") as f:
        f.write(header)
        if 8 <= width <= 0x7FFF:
            f.write(_encode_scanlines(rgbe))
        else:  # run-length scanlines need 8 <= width < 32768; flat pixels otherwise
            f.write(rgbe.tobytes())
    return path


def _encode_scanlines(rgbe: np.ndarray) -> bytes:
    """New-style RLE scanlines made of literal chunks (count byte 1..128, then the bytes)."""
    height, width = rgbe.shape[:2]
    starts = np.arange(0, width, 128)
    counts = np.minimum(128, width - starts).astype(np.uint8)
    # Layout of one channel of one scanline: [count0, bytes0..., count1, bytes1..., ...].
    chunk_len = width + len(starts)
    positions = np.arange(width) + np.arange(width) // 128 + 1  # where each byte lands after its count
    count_positions = starts + np.arange(len(starts))
    line = np.empty((height, 4 + 4 * chunk_len), dtype=np.uint8)
    line[:, 0:4] = (2, 2, width >> 8, width & 0xFF)
    for c in range(4):
        block = line[:, 4 + c * chunk_len: 4 + (c + 1) * chunk_len]
        block[:, count_positions] = counts
        block[:, positions] = rgbe[:, :, c]
    return line.tobytes()


def read_hdr(path: str | os.PathLike) -> np.ndarray:
    """Read a Radiance ``.hdr`` file (flat or run-length scanlines, ``-Y H +X W`` orientation).

    Returns:
        float32 [H, W, 3] linear RGB.
    """
    path = Path(path)
    data = path.read_bytes()
    pos = 0

    def next_line() -> bytes:
        nonlocal pos
        end = data.find(b"\n", pos)
        if end < 0:
            raise HdrError(f"{path}: header ends before the resolution line (truncated file?)")
        line, pos = data[pos:end], end + 1
        return line

    first = next_line()
    if not first.startswith(_MAGICS):
        raise HdrError(f"{path}: not a Radiance HDR file (starts with {first[:16]!r}, expected '#?RADIANCE')")
    for _ in range(_MAX_HEADER_LINES):
        line = next_line().strip()
        if not line:
            break
        if line.startswith(b"FORMAT=") and line != b"FORMAT=32-bit_rle_rgbe":
            raise HdrError(f"{path}: unsupported pixel format {line.decode(errors='replace')!r}; "
                           "only 32-bit_rle_rgbe is read")
    else:
        raise HdrError(f"{path}: header has no blank line within {_MAX_HEADER_LINES} lines")
    resolution = next_line().split()
    if len(resolution) != 4 or resolution[0] != b"-Y" or resolution[2] != b"+X":
        raise HdrError(f"{path}: unsupported resolution line {b' '.join(resolution)!r}; expected '-Y H +X W'")
    try:
        height, width = int(resolution[1]), int(resolution[3])
    except ValueError:
        raise HdrError(f"{path}: resolution line {b' '.join(resolution)!r} does not hold integers") from None
    if height < 1 or width < 1:
        raise HdrError(f"{path}: image size {height}x{width} is empty")
    rgbe = _decode_pixels(data, pos, height, width, path)
    return rgbe_to_float(rgbe)


def _decode_pixels(data: bytes, pos: int, height: int, width: int, path: Path) -> np.ndarray:
    buf = np.frombuffer(data, dtype=np.uint8)
    out = np.empty((height, width, 4), dtype=np.uint8)
    rle = (8 <= width <= 0x7FFF and len(buf) >= pos + 4 and buf[pos] == 2 and buf[pos + 1] == 2
           and not buf[pos + 2] & 0x80)
    if not rle:
        need = height * width * 4
        if len(buf) - pos < need:
            raise HdrError(f"{path}: pixel data holds {len(buf) - pos} bytes, expected {need} (truncated file?)")
        out[:] = buf[pos:pos + need].reshape(height, width, 4)
        return out
    for y in range(height):
        if len(buf) < pos + 4:
            raise HdrError(f"{path}: truncated at scanline {y} of {height}")
        if buf[pos] != 2 or buf[pos + 1] != 2 or (int(buf[pos + 2]) << 8 | int(buf[pos + 3])) != width:
            raise HdrError(f"{path}: scanline {y} has a bad run-length header {bytes(buf[pos:pos + 4])!r}")
        pos += 4
        for c in range(4):
            x = 0
            while x < width:
                if pos >= len(buf):
                    raise HdrError(f"{path}: truncated inside scanline {y}")
                count = int(buf[pos])
                if count > 128:  # a run: one byte repeated count-128 times
                    count -= 128
                    if count == 0 or x + count > width or pos + 1 >= len(buf):
                        raise HdrError(f"{path}: bad run in scanline {y}")
                    out[y, x:x + count, c] = buf[pos + 1]
                    pos += 2
                else:
                    if count == 0 or x + count > width or pos + 1 + count > len(buf):
                        raise HdrError(f"{path}: bad literal chunk in scanline {y}")
                    out[y, x:x + count, c] = buf[pos + 1:pos + 1 + count]
                    pos += 1 + count
                x += count
    return out
