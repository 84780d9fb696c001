"""Sequence folders: round trips, atomic replacement, and clear errors on malformed folders."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from dyntet.export.synthetic import ellipsoid_mesh
from dyntet.formats.sequence import (BlendShapeRig, Sequence, SequenceFormatError, read_sequence, wav_bytes,
                                      write_sequence)


def test_round_trip_every_field(tmp_path: Path, seq: Sequence) -> None:
    seq.audio = wav_bytes(np.sin(np.linspace(0, 100, 16000)) * 0.5)
    seq.rig = BlendShapeRig(mean=seq.vertices.mean(0),
                            targets=np.ones((2, seq.num_vertices, 3), np.float32),
                            weights=np.zeros((seq.num_frames, 2), np.float32))
    out = write_sequence(tmp_path / "seq", seq)
    back = read_sequence(out)
    for name in ("faces", "vertices", "head_pose", "uv", "uv_faces", "base_color", "orm"):
        np.testing.assert_array_equal(getattr(back, name), getattr(seq, name), err_msg=name)
        assert getattr(back, name).dtype == getattr(seq, name).dtype
    assert isinstance(back.vertices, np.memmap)
    assert back.fps == seq.fps and back.camera == seq.camera and back.source == seq.source
    # RGBE keeps ~1 % relative precision.
    np.testing.assert_allclose(back.environment, seq.environment, rtol=0.01)
    assert back.audio == out / "audio.wav" and back.audio.read_bytes() == seq.audio
    np.testing.assert_array_equal(back.rig.targets, seq.rig.targets)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_frames"] == seq.num_frames and manifest["has_audio"] is True
    assert manifest["audio"]["sample_rate"] == 16000


def test_minimal_sequence_and_no_mmap(tmp_path: Path) -> None:
    verts, faces, uv, uv_faces = ellipsoid_mesh(4, 4)
    seq = Sequence(faces=faces, vertices=verts[None], head_pose=np.eye(4, dtype=np.float32)[None], fps=30.0,
                   uv=uv, uv_faces=uv_faces)
    back = read_sequence(write_sequence(tmp_path / "s", seq), mmap=False)
    assert not isinstance(back.vertices, np.memmap)
    assert back.base_color is None and back.environment is None and back.audio is None and back.rig is None
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "faces.npy", "head_pose.npy", "manifest.json", "uv.npy", "uv_faces.npy", "vertices.npy"]


def test_ellipsoid_is_closed_and_outward(seq: Sequence) -> None:
    v = seq.vertices[0].astype(np.float64)
    f = seq.faces
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    assert volume > 0  # counter-clockwise from outside
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # watertight: every edge shared by exactly two faces
    # UV seam splits corners, not vertices: more UVs than vertices, same face count.
    assert len(seq.uv) > seq.num_vertices and seq.uv_faces.shape == seq.faces.shape


def test_overwrite_replaces_a_sequence_but_never_other_folders(tmp_path: Path, seq: Sequence, make_seq) -> None:
    out = tmp_path / "seq"
    write_sequence(out, seq)
    shorter = make_seq(num_frames=2)
    write_sequence(out, shorter)
    assert read_sequence(out).num_frames == 2
    assert [p.name for p in tmp_path.iterdir()] == ["seq"]  # no temporary folders left behind
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_sequence(out, seq, overwrite=False)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a sequence folder"):
        write_sequence(precious, seq)
    assert (precious / "thesis.txt").read_text() == "keep me"


def test_failed_write_leaves_nothing(tmp_path: Path, seq: Sequence) -> None:
    seq.audio = b"this is not a wav file"
    with pytest.raises(SequenceFormatError, match="not a readable PCM WAV"):
        write_sequence(tmp_path / "seq", seq)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("field, value, message", [
    ("faces", lambda s: s.faces.astype(np.int64), "faces must have dtype int32"),
    ("vertices", lambda s: s.vertices[..., :2].copy(), r"vertices must have shape \[\?, \?, 3\]"),
    ("head_pose", lambda s: s.head_pose[:-1].copy(), "head_pose must have shape"),
    ("uv_faces", lambda s: s.uv_faces[:-1].copy(), "uv_faces must have shape"),
    ("fps", lambda s: 0.0, "fps must be a positive"),
    ("faces", lambda s: s.faces + s.num_vertices, "faces index out of range"),
    ("vertices", lambda s: np.where(np.arange(s.num_frames)[:, None, None] == 1, np.nan, s.vertices)
     .astype(np.float32), "NaN"),
    ("head_pose", lambda s: s.head_pose * np.float32(2), "last rows must be|not a rotation"),
    ("base_color", lambda s: s.base_color[..., :1].copy(), "base_color must have shape"),
    ("environment", lambda s: s.environment[:, :4].copy(), r"equirectangular \[H, 2H, 3\]"),
    ("source", lambda s: {"x": object()}, "JSON-serialisable"),
])
def test_write_rejects_malformed_fields(tmp_path: Path, seq: Sequence, field: str, value, message: str) -> None:
    setattr(seq, field, value(seq))
    with pytest.raises(SequenceFormatError, match=message):
        write_sequence(tmp_path / "seq", seq)
    assert not (tmp_path / "seq").exists()


def test_read_reports_missing_and_corrupt_files(tmp_path: Path, seq: Sequence) -> None:
    out = write_sequence(tmp_path / "seq", seq)
    with pytest.raises(SequenceFormatError, match="not a folder"):
        read_sequence(tmp_path / "nowhere")

    (out / "uv.npy").rename(out / "uv.bak")
    with pytest.raises(SequenceFormatError, match=r"uv.npy and uv_faces.npy come together"):
        read_sequence(out)
    (out / "uv.bak").rename(out / "uv.npy")

    (out / "faces.npy").write_bytes(b"garbage")
    with pytest.raises(SequenceFormatError, match=r"faces.npy is not a readable .npy"):
        read_sequence(out)
    np.save(out / "faces.npy", seq.faces)

    np.save(out / "head_pose.npy", seq.head_pose.astype(np.int32))
    with pytest.raises(SequenceFormatError, match="head_pose.npy must hold floats"):
        read_sequence(out)
    np.save(out / "head_pose.npy", seq.head_pose)

    np.save(out / "vertices.npy", seq.vertices[:2])
    with pytest.raises(SequenceFormatError, match="manifest.json says num_frames = 6"):
        read_sequence(out)
    np.save(out / "vertices.npy", seq.vertices)

    np.save(out / "faces.npy", np.array([[0, 1, 1 << 30]], np.int32).repeat(seq.num_faces, 0))
    with pytest.raises(SequenceFormatError, match="faces.npy indexes vertices"):
        read_sequence(out)
    np.save(out / "faces.npy", seq.faces)

    np.save(out / "faces.npy", np.array([object()] * 3).reshape(1, 3), allow_pickle=True)
    with pytest.raises(SequenceFormatError, match="faces.npy is not a readable .npy"):
        read_sequence(out)  # pickled arrays are refused, never loaded
    np.save(out / "faces.npy", seq.faces)

    (out / "textures" / "orm.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SequenceFormatError, match="orm.png: not a readable image"):
        read_sequence(out)
    (out / "textures" / "orm.png").unlink()
    with pytest.raises(SequenceFormatError, match="lists texture .orm. but textures/orm.png is missing"):
        read_sequence(out)


def test_read_checks_the_manifest(tmp_path: Path, seq: Sequence) -> None:
    out = write_sequence(tmp_path / "seq", seq)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "format": "dyntet-dataset"}))
    with pytest.raises(SequenceFormatError, match="expected 'dyntet-sequence'"):
        read_sequence(out)
    (out / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(SequenceFormatError, match="sequence format version 99"):
        read_sequence(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(SequenceFormatError, match="not valid JSON"):
        read_sequence(out)
    (out / "manifest.json").unlink()
    with pytest.raises(SequenceFormatError, match="no manifest.json"):
        read_sequence(out)


def test_audio_from_a_path(tmp_path: Path, seq: Sequence) -> None:
    src = tmp_path / "voice.wav"
    src.write_bytes(wav_bytes(np.zeros(8000), sample_rate=16000))
    seq.audio = src
    back = read_sequence(write_sequence(tmp_path / "seq", seq))
    with wave.open(str(back.audio)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (16000, 1, 8000)


def test_read_modify_write_in_place(tmp_path: Path, seq: Sequence) -> None:
    """A memory-mapped sequence can be written back over its own folder (old files are read before removal)."""
    out = write_sequence(tmp_path / "seq", seq)
    loaded = read_sequence(out)
    loaded.fps = 50.0
    write_sequence(out, loaded)
    again = read_sequence(out, mmap=False)
    assert again.fps == 50.0
    np.testing.assert_array_equal(again.vertices, seq.vertices)
    np.testing.assert_allclose(again.environment, seq.environment, rtol=0.01)
