"""``dyntet preprocess`` on the command line: clean errors, a summary on success."""

from __future__ import annotations

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
