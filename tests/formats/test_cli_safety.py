"""The command line never destroys work silently and turns every user-fixable failure into a sentence.

Every case: exit code 2, one ``error:`` paragraph naming the file and what to do, no traceback, and the
files that were there before are byte for byte unchanged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import folder_hashes, tiny_sets
from dyntet.cli import main


def _fails_cleanly(capsys, argv: list[str], *words: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def test_train_over_a_run_with_checkpoints_is_refused(capsys, dataset_copy, run_copy):
    before = folder_hashes(run_copy)
    _fails_cleanly(capsys, ["train", str(dataset_copy), "-o", str(run_copy), *tiny_sets()],
                   "already holds a trained run", "--resume", "--force")
    assert folder_hashes(run_copy) == before


def test_force_starts_the_run_again(capsys, dataset_copy, run_copy):
    assert main(["train", str(dataset_copy), "-o", str(run_copy), "--force", *tiny_sets(), "--set", "seed=9"]) == 0
    assert json.loads((run_copy / "config.json").read_text())["train"]["seed"] == 9


def test_resume_of_a_run_that_does_not_exist(capsys, tmp_path):
    _fails_cleanly(capsys, ["train", "-o", str(tmp_path / "nowhere"), "--resume"], "no run to resume")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("setting, words", [("iterations=abc", "must be an integer"),
                                            ("model.geometry=3", "group of settings"),
                                            ("learning_rate=true", "must be a number"),
                                            ("no_such_thing=1", "unknown setting")])
def test_typed_overrides(capsys, dataset_copy, tmp_path, setting, words):
    _fails_cleanly(capsys, ["train", str(dataset_copy), "-o", str(tmp_path / "run"), "--set", setting], words)


def test_resume_refuses_changed_settings_but_accepts_the_same_ones(capsys, run_copy):
    before = folder_hashes(run_copy)
    _fails_cleanly(capsys, ["train", "-o", str(run_copy), "--resume", "--set", "model.geometry.grid_resolution=32"],
                   "keeps its settings", "grid_resolution")
    assert folder_hashes(run_copy) == before
    assert main(["train", "-o", str(run_copy), "--resume", "--set", "model.geometry.grid_resolution=16",
                 "--iters", "7"]) == 0


def test_a_torn_metrics_line_does_not_block_resuming(capsys, run_copy):
    with open(run_copy / "metrics.jsonl", "a") as handle:
        handle.write('{"iteration": 99, "lo')
    assert main(["train", "-o", str(run_copy), "--resume", "--iters", "8"]) == 0
    records = [json.loads(line) for line in (run_copy / "metrics.jsonl").read_text().splitlines()]
    iterations = [r["iteration"] for r in records]
    assert iterations == sorted(set(iterations)) and iterations[-1] == 8


@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_corrupt_checkpoint_is_a_sentence(capsys, run_copy, command):
    checkpoint = run_copy / "checkpoints" / "last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # cut short
    before = folder_hashes(run_copy)
    argv = ["eval", str(run_copy)] if command == "eval" else ["train", "-o", str(run_copy), "--resume"]
    _fails_cleanly(capsys, argv, str(checkpoint), "cut short or corrupt")
    assert folder_hashes(run_copy) == before


@pytest.mark.parametrize("damage, words", [
    ("manifest-null", ["manifest.json", "must hold a JSON object"]),
    ("manifest-json", ["manifest.json", "not valid JSON"]),
    ("tracking", ["tracking.npz", "not a readable .npz"]),
    ("frame", ["000003.png", "not a readable PNG"]),
    ("face-model-missing", ["face_model.npz", "is missing"]),
])
def test_a_damaged_dataset_is_a_sentence(capsys, dataset_copy, tmp_path, damage, words):
    if damage == "manifest-null":
        (dataset_copy / "manifest.json").write_text("null")
    elif damage == "manifest-json":
        (dataset_copy / "manifest.json").write_text('{"format": "dyntet-dataset", ')
    elif damage == "tracking":
        data = (dataset_copy / "tracking.npz").read_bytes()
        (dataset_copy / "tracking.npz").write_bytes(data[: len(data) // 2])
    elif damage == "frame":
        data = (dataset_copy / "frames" / "000003.png").read_bytes()
        (dataset_copy / "frames" / "000003.png").write_bytes(data[: len(data) // 2])
    else:
        (dataset_copy / "face_model.npz").unlink()
    _fails_cleanly(capsys, ["train", str(dataset_copy), "-o", str(tmp_path / "run"), *tiny_sets()],
                   *words, "dyntet preprocess")


def test_a_second_train_on_the_same_run_is_refused(capsys, dataset_copy, run_copy):
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time, pathlib\n"
                               "from dyntet.formats.lock import FolderLock\n"
                               "with FolderLock(pathlib.Path(sys.argv[1]), 'training'):\n"
                               "    print('held', flush=True); time.sleep(60)\n", str(run_copy)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = folder_hashes(run_copy)
        _fails_cleanly(capsys, ["train", "-o", str(run_copy), "--resume"], f"PID {holder.pid}")
        assert folder_hashes(run_copy) == before
    finally:
        holder.kill()
        holder.wait()


def _tmpfs(where: Path, options: str) -> Path:
    where.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()})")
    return where


@pytest.fixture
def small_disk(tmp_path):
    disk = _tmpfs(tmp_path / "disk", "size=600k")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


@pytest.fixture
def read_only_disk(tmp_path):
    disk = _tmpfs(tmp_path / "ro", "ro,size=1m")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_a_full_disk_during_training_is_a_sentence(capsys, dataset_copy, small_disk):
    err = _fails_cleanly(capsys, ["train", str(dataset_copy), "-o", str(small_disk / "run"), *tiny_sets()],
                         "disk is full", str(small_disk / "run"))
    assert "unexpected pos" not in err


def test_a_read_only_output_is_a_sentence(capsys, dataset_copy, read_only_disk):
    _fails_cleanly(capsys, ["train", str(dataset_copy), "-o", str(read_only_disk / "run"), *tiny_sets()],
                   "read-only", str(read_only_disk / "run"))


def test_debug_shows_the_traceback(capsys, tmp_path):
    with pytest.raises(Exception):
        main(["--debug", "train", "-o", str(tmp_path / "nowhere"), "--resume"])


def test_a_generated_sequence_stays_readable_through_the_one_reader(tmp_path):
    """The backend's reader is the shared numpy reader plus textures: no second implementation."""
    import dyntet_formats.sequence as shared
    from dyntet.formats import sequence as backend

    assert backend.SequenceFormatError is shared.SequenceFormatError
    assert backend.BlendShapeRig is shared.BlendShapeRig
