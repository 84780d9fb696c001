"""Run folders: metrics that survive a torn write, configs that say which file is wrong, one writer at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from dyntet.formats.lock import FolderBusy, FolderLock
from dyntet.formats.run import RunFolder, RunFolderError


def test_a_torn_last_metrics_line_is_dropped_and_truncation_keeps_the_rest(tmp_path):
    run = RunFolder(tmp_path)
    for i in (1, 2, 3):
        run.append_metrics({"iteration": i, "loss": 0.1 * i})
    with open(run.metrics_path, "a") as handle:
        handle.write('{"iteration": 4, "lo')  # the process died mid-write
    assert [r["iteration"] for r in run.read_metrics()] == [1, 2, 3]
    run.truncate_metrics(2)
    assert [r["iteration"] for r in run.read_metrics()] == [1, 2]
    assert run.metrics_path.read_text().endswith("}\n")


def test_a_corrupt_line_in_the_middle_names_its_line(tmp_path):
    run = RunFolder(tmp_path)
    run.metrics_path.write_text('{"iteration": 1}\nnot json\n{"iteration": 3}\n')
    with pytest.raises(RunFolderError, match=r"metrics.jsonl line 2"):
        run.read_metrics()


@pytest.mark.parametrize("text, words", [("null", "must hold a JSON object"), ("{\"train\": 3", "not valid JSON"),
                                         ("{}", "no 'train' settings")])
def test_bad_configs_name_the_file(tmp_path, text, words):
    run = RunFolder(tmp_path)
    run.config_path.write_text(text)
    with pytest.raises(RunFolderError, match=words) as info:
        run.read_config()
    assert str(run.config_path) in str(info.value)


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from dyntet.formats.lock import FolderLock
        with FolderLock(__import__('pathlib').Path({str(tmp_path)!r}), "training"):
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=rf"PID {holder.pid}, training"):
            with FolderLock(tmp_path, "training"):
                pass
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    while True:  # the OS releases the lock of a killed holder
        try:
            with FolderLock(tmp_path, "training"):
                break
        except FolderBusy:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert json.loads((tmp_path / ".lock").read_text())["activity"] == "training"
