"""``dyntet preprocess`` on the command line: clean errors, a summary on success."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dyntet.cli import main


def test_missing_video_is_a_clean_error(tmp_path, capsys):
    code = main(["preprocess", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err


@pytest.mark.parametrize("args, words", [(["--fps", "fast"], "--fps takes a number"),
                                         (["--fps", "1000"], "1..240")])
def test_bad_fps_is_rejected_by_the_parser(tmp_path, capsys, args, words):
    with pytest.raises(SystemExit) as info:
        main(["preprocess", "v.mp4", "-o", str(tmp_path / "out"), *args])
    assert info.value.code == 2 and words in capsys.readouterr().err


def test_bad_size_is_a_clean_error(tmp_path, capsys):
    assert main(["preprocess", "v.mp4", "-o", str(tmp_path / "out"), "--size", "8"]) == 2
    assert "size must be" in capsys.readouterr().err


def test_preprocess_command_writes_a_dataset(face_clip, tmp_path, capsys):
    out = tmp_path / "ds"
    code = main(["preprocess", str(face_clip), "-o", str(out), "--size", "96", "--fps", "keep",
                 "--max-seconds", "0.8", "--num-expression", "4", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"dataset written to {out}: 20 frames" in printed and "contact_sheet.png" in printed
    assert (out / "manifest.json").exists()


def test_another_video_never_replaces_a_dataset_silently_and_the_terminal_stays_clean(face_clip, tmp_path, capsys):
    import hashlib
    import shutil
    import subprocess
    import sys

    out = tmp_path / "alice"
    args = ["-o", str(out), "--size", "96", "--fps", "keep", "--max-seconds", "0.8", "--num-expression", "4", "--quiet"]
    first = subprocess.run([sys.executable, "-m", "dyntet.cli", "preprocess", str(face_clip), *args],
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    for noise in ("XNNPACK", "W0000", "inference_feedback_manager", "absl::InitializeLog"):
        assert noise not in first.stderr, first.stderr  # MediaPipe's native logging is silenced

    def hashes() -> dict[str, str]:
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*"))
                if p.is_file() and p.name != ".lock"}

    before = hashes()
    other = Path(shutil.copy(face_clip, tmp_path / "bob.mp4"))
    assert main(["preprocess", str(other), *args]) == 2
    err = capsys.readouterr().err
    assert "already holds a dataset of another video" in err and "--force" in err and "Traceback" not in err
    assert hashes() == before
    assert main(["preprocess", str(other), *args, "--force"]) == 0
    assert json.loads((out / "manifest.json").read_text())["source"]["video"] == str(other)
