"""A tiny dataset and a tiny trained run, shared by the safety tests (they never modify the originals)."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from train_tiny import TINY  # noqa: E402


def tiny_sets() -> list[str]:
    """``--set`` arguments of the tiny training configuration."""
    out = []
    for key, value in TINY.items():
        out += ["--set", f"{key}={value}"]
    return out


def folder_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (the lock file excepted: it is ours to rewrite)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="session")
def safety_dataset(tmp_path_factory) -> Path:
    from dyntet.data.synthetic import SyntheticConfig, make_subject

    out = tmp_path_factory.mktemp("safety") / "dataset"
    make_subject(out, SyntheticConfig(size=64, num_frames=24, seed=5))
    return out


@pytest.fixture(scope="session")
def safety_run(safety_dataset, tmp_path_factory) -> Path:
    from dyntet.cli import main

    run = tmp_path_factory.mktemp("safety_runs") / "run"
    assert main(["train", str(safety_dataset), "-o", str(run), *tiny_sets()]) == 0
    return run


@pytest.fixture
def dataset_copy(safety_dataset, tmp_path) -> Path:
    return Path(shutil.copytree(safety_dataset, tmp_path / "dataset"))


@pytest.fixture
def run_copy(safety_run, tmp_path) -> Path:
    return Path(shutil.copytree(safety_run, tmp_path / "run"))
