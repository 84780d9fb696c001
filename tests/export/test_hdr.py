"""Radiance HDR files: round trip precision, the layouts other writers use, and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dyntet.formats.hdr import HdrError, float_to_rgbe, read_hdr, rgbe_to_float, write_hdr


@pytest.mark.parametrize("shape", [(8, 16, 3), (3, 5, 3), (2, 300, 3)])  # RLE, flat (narrow), RLE multi-chunk
def test_round_trip_keeps_one_percent(tmp_path: Path, shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    image = (np.exp(rng.normal(0, 3, shape)) * (rng.random(shape) > 0.1)).astype(np.float32)  # wide range, zeros
    back = read_hdr(write_hdr(tmp_path / "env.hdr", image))
    assert back.shape == shape and back.dtype == np.float32
    peak = image.max(axis=-1, keepdims=True)
    # Shared exponent: each channel is within 1/256 of the pixel's brightest channel (mid-bucket decode).
    assert np.all(np.abs(back - image) <= peak / 256 + 1e-30)
    assert np.all(back[peak[..., 0] == 0] == 0)


def test_rgbe_encoding_of_known_values() -> None:
    rgbe = float_to_rgbe(np.array([[[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]]]))
    # 1.0 = 0.5 · 2^1 → mantissa 128, exponent 1 + 128.
    assert rgbe[0, 0].tolist() == [128, 64, 0, 129]
    assert rgbe[0, 1].tolist() == [0, 0, 0, 0]
    np.testing.assert_allclose(rgbe_to_float(rgbe)[0, 0], [1.0 + 0.5 / 128, 0.5 + 0.5 / 128, 0.5 / 128])


def test_reads_runs_written_by_other_tools(tmp_path: Path) -> None:
    """A hand-made run-length scanline (as Radiance and Blender write): runs and literals mixed."""
    width = 10
    line = bytes([2, 2, 0, width])
    line += bytes([128 + 10, 128])                          # R: a run of 10 × 128
    line += bytes([5, 1, 2, 3, 4, 5, 128 + 5, 64])          # G: 5 literals then a run of 5 × 64
    line += bytes([128 + 10, 0])                            # B: zeros
    line += bytes([128 + 10, 129])                          # E: exponent 129 everywhere
    (tmp_path / "x.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\nEXPOSURE=1.0\n\n-Y 1 +X 10\n" + line)
    image = read_hdr(tmp_path / "x.hdr")
    assert image.shape == (1, 10, 3)
    np.testing.assert_allclose(image[0, :, 0], (128 + 0.5) / 128)
    np.testing.assert_allclose(image[0, :5, 1], (np.arange(1, 6) + 0.5) / 128)
    np.testing.assert_allclose(image[0, 5:, 1], 64.5 / 128)


@pytest.mark.parametrize("content, message", [
    (b"P6\n2 2\n255\n", "not a Radiance HDR"),
    (b"#?RADIANCE\nFORMAT=32-bit_rle_xyze\n\n-Y 1 +X 1\n\0\0\0\0", "unsupported pixel format"),
    (b"#?RADIANCE\n\n+Y 1 +X 1\n\0\0\0\0", "unsupported resolution"),
    (b"#?RADIANCE\n\n-Y 4 +X 4\n\0\0\0\0", "truncated"),
    (b"#?RADIANCE\n\n-Y 1 +X 16\n" + bytes([2, 2, 0, 16, 129]), "truncated|bad run"),
    (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n", "header ends"),
])
def test_malformed_files_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.hdr"
    path.write_bytes(content)
    with pytest.raises(HdrError, match=message) as info:
        read_hdr(path)
    assert "bad.hdr" in str(info.value)


def test_writer_rejects_bad_images(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        write_hdr(tmp_path / "a.hdr", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="floating point"):
        write_hdr(tmp_path / "a.hdr", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        write_hdr(tmp_path / "a.hdr", np.full((4, 4, 3), np.inf, np.float32))
