"""Training for a time budget: the run stops when the time is spent and its schedule spans the budget."""

from __future__ import annotations

import json

import pytest

from dyntet.train.api import train
from dyntet.train.checkpoint import load_checkpoint
from dyntet.train.config import TrainConfig
from dyntet.train.trainer import learning_rate, schedule_fraction

from train_tiny import TINY


def test_the_schedule_follows_time_under_a_budget_and_iterations_without():
    timed = TrainConfig(iterations=1000, minutes=10)
    assert schedule_fraction(timed, 10, 300.0) == pytest.approx(0.5)      # half the time, few iterations
    assert schedule_fraction(timed, 10, 900.0) == 1.0                     # over budget: fully decayed
    assert schedule_fraction(timed, 900, 60.0) == pytest.approx(0.9)      # the iteration cap still bounds it
    untimed = TrainConfig(iterations=1000)
    assert schedule_fraction(untimed, 250, 1e6) == pytest.approx(0.25)
    assert learning_rate(timed, 0.0) == pytest.approx(timed.learning_rate)
    assert learning_rate(timed, 1.0) == pytest.approx(timed.final_learning_rate)


def test_a_negative_budget_is_refused():
    with pytest.raises(ValueError, match="minutes"):
        TrainConfig(minutes=-1)


def test_a_budgeted_run_stops_on_time_with_a_decayed_rate_and_resumes_with_more(tiny_dataset, tmp_path):
    budget_s = 6.0
    overrides = {**TINY, "iterations": 100_000, "minutes": budget_s / 60, "log_every": 1}
    run = train(tiny_dataset, tmp_path / "run", preset="preview", overrides=overrides, device="cpu")
    state = load_checkpoint(run)
    assert 1 <= state["iteration"] < 100_000, "the budget, not the iteration count, ended the run"
    assert budget_s <= state["elapsed_s"] < budget_s + 30
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text())["train"])
    assert lines[-1]["lr"] == pytest.approx(config.final_learning_rate, rel=0.5)
    assert lines[0]["lr"] > 10 * lines[-1]["lr"], "the rate decays over the budget"

    longer = train(tiny_dataset, run, overrides={"minutes": 2 * budget_s / 60}, device="cpu", resume=True)
    assert load_checkpoint(longer)["iteration"] > state["iteration"]
