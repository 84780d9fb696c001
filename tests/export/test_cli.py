"""``dyntet export``: exit codes, outputs and messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from dyntet.cli import main
from dyntet.export.glb import read_glb
from dyntet.formats.sequence import Sequence, write_sequence


@pytest.fixture
def seq_dir(tmp_path: Path, seq: Sequence) -> Path:
    return write_sequence(tmp_path / "take1", seq)


def test_glb_pca_with_k(seq_dir: Path, capsys) -> None:
    assert main(["export", str(seq_dir), "--rig", "pca", "--targets", "3", "--quiet"]) == 0
    out = seq_dir.with_name("take1_pca.glb")
    doc, _ = read_glb(out.read_bytes())
    assert len(doc["meshes"][0]["primitives"][0]["targets"]) == 3
    printed = capsys.readouterr().out
    assert "K=3, RMS error" in printed and "max error" in printed


def test_glb_and_obj_default_paths(seq_dir: Path, seq: Sequence) -> None:
    assert main(["export", str(seq_dir), "--quiet"]) == 0
    assert seq_dir.with_name("take1.glb").is_file()
    assert main(["export", str(seq_dir), "--format", "obj", "-o", str(seq_dir.parent / "objs"), "--quiet"]) == 0
    assert len(list((seq_dir.parent / "objs").glob("frame_*.obj"))) == seq.num_frames


@pytest.mark.parametrize("argv, message", [
    (["--format", "obj", "--rig", "pca"], "apply to --format glb only"),
    (["--targets", "3"], "--targets needs --rig pca"),
    (["--rig", "pca", "--targets", "0"], "num_targets must be >= 1"),
])
def test_bad_options_exit_2(seq_dir: Path, capsys, argv: list[str], message: str) -> None:
    assert main(["export", str(seq_dir), "--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_sequence_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
