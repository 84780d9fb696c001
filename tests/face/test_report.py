"""Report numbers, warnings and the contact sheet."""

from __future__ import annotations

import numpy as np
import pytest

from dyntet.face.report import SheetFrame, contact_sheet, summary, warnings_for


def base_report(**changes):
    report = {
        "frames": {"kept_frac": 1.0, "dropped_no_face": 0},
        "faces": {"identities": 1, "max_per_frame": 1},
        "reprojection_px": {"smoothed": {"median": 0.8}},
        "jitter": {"smoothed_deg": {"median": 0.2}},
        "crop": {"upsampled": False, "side": 600, "size": 512},
        "camera": {"focal_at_prior": False},
        "audio": {"seconds": 10.0},
    }
    for key, value in changes.items():
        if key == "audio":
            report["audio"] = value
            continue
        section, field = key.split("__")
        report[section][field] = value
    return report


def test_summary_ignores_nan_and_handles_empty():
    assert summary(np.array([1.0, 2.0, np.nan, 3.0]))["median"] == 2.0
    assert summary(np.array([])) == {"median": None, "p95": None, "max": None}


def test_a_clean_run_has_no_warnings():
    assert warnings_for(base_report()) == []


@pytest.mark.parametrize("change, words", [
    ({"frames__kept_frac": 0.5, "frames__dropped_no_face": 40}, "tracked in only 50%"),
    ({"faces__identities": 2}, "2 faces"),
    ({"reprojection_px__smoothed": {"median": 5.0}}, "reprojection"),
    ({"jitter__smoothed_deg": {"median": 1.2}}, "shaky"),
    ({"crop__upsampled": True}, "upsampled"),
    ({"camera__focal_at_prior": True}, "focal length"),
    ({"audio": None}, "cannot be driven by a voice"),
])
def test_each_problem_gets_a_warning(change, words):
    warnings = warnings_for(base_report(**change))
    assert len(warnings) == 1 and words in warnings[0]


def test_contact_sheet_layout_and_marks():
    rgb = np.full((64, 64, 3), 128, np.uint8)
    labels = np.zeros((64, 64), np.uint8)
    labels[:32] = 2
    points = np.array([[10.0, 50.0]])
    frames = [SheetFrame(rgb, labels, points, points + 20, f"#{i}") for i in range(5)]
    sheet = contact_sheet(frames, columns=4, tile=64)
    assert sheet.shape == (128, 256, 3)
    tile = sheet[:64, :64].astype(int)
    assert tile[25, 40, 1] > tile[25, 40, 0]                   # head rows tinted green
    assert tile[40, 40, 1] == tile[40, 40, 0]                  # background rows untouched
    assert tile[50, 10, 0] > 200 and tile[50, 10, 2] < 100     # a yellow tracked landmark
    assert (sheet[64:, 64:] == 32).all()                       # empty slots stay dark
    with pytest.raises(ValueError):
        contact_sheet([])
