"""Every sidebar panel draws in every backend state, checked with a recording stand-in for ``layout``.

A real ``UILayout`` cannot exist headless, so :class:`Recorder` plays it: it knows the methods a panel
may call, refuses others (a typo fails like it would in Blender), checks that every ``prop`` names a
real RNA property and every ``operator`` a registered operator whose properties exist, and records
everything so tests can look for what a user must see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.control import state as st  # noqa: E402

LAYOUT_ATTRIBUTES = {"alert", "enabled", "active", "scale_x", "scale_y", "use_property_split",
                     "use_property_decorate", "alignment", "operator_context"}


@dataclass
class Item:
    kind: str
    args: tuple
    kwargs: dict
    container: "Recorder"


@dataclass
class OperatorStandIn:
    """What ``layout.operator`` returns: accepts only the operator's own properties."""

    idname: str
    allowed: set[str]
    values: dict[str, Any] = field(default_factory=dict)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("idname", "allowed", "values"):
            object.__setattr__(self, name, value)
        elif name not in self.allowed:
            raise AttributeError(f"operator {self.idname} has no property {name!r}")
        else:
            self.values[name] = value


class Recorder:
    def __init__(self, log: list[Item], parent: "Recorder | None" = None, kind: str = "layout") -> None:
        object.__setattr__(self, "log", log)
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "flags", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in LAYOUT_ATTRIBUTES:
            raise AttributeError(f"UILayout has no attribute {name!r}")
        self.flags[name] = value

    def __getattr__(self, name: str) -> Any:
        if name in LAYOUT_ATTRIBUTES:
            return self.flags.get(name, False)
        raise AttributeError(f"UILayout has no method {name!r}")

    @property
    def is_alert(self) -> bool:
        node = self
        while node is not None:
            if node.flags.get("alert"):
                return True
            node = node.parent
        return False

    def _child(self, kind: str, args: tuple, kwargs: dict) -> "Recorder":
        child = Recorder(self.log, self, kind)
        self.log.append(Item(kind, args, kwargs, child))
        return child

    def row(self, *args, **kwargs):
        return self._child("row", args, kwargs)

    def column(self, *args, **kwargs):
        return self._child("column", args, kwargs)

    def box(self, *args, **kwargs):
        return self._child("box", args, kwargs)

    def split(self, *args, **kwargs):
        return self._child("split", args, kwargs)

    def separator(self, *args, **kwargs) -> None:
        self.log.append(Item("separator", args, kwargs, self))

    def label(self, *, text: str = "", icon: str = "NONE", **kwargs) -> None:
        assert isinstance(text, str)
        _check_icon(icon)
        self.log.append(Item("label", (), {"text": text, "icon": icon, **kwargs}, self))

    def prop(self, data: Any, name: str, **kwargs) -> None:
        assert name in data.bl_rna.properties, f"{data!r} has no property {name!r}"
        _check_icon(kwargs.get("icon", "NONE"))
        self.log.append(Item("prop", (data, name), kwargs, self))

    def operator(self, idname: str, **kwargs) -> OperatorStandIn:
        category, name = idname.split(".")
        rna = getattr(getattr(bpy.ops, category), name).get_rna_type()  # raises when not registered
        _check_icon(kwargs.get("icon", "NONE"))
        stand_in = OperatorStandIn(idname, {p.identifier for p in rna.properties if p.identifier != "rna_type"})
        self.log.append(Item("operator", (idname,), {**kwargs, "props": stand_in}, self))
        return stand_in

    def progress(self, *, factor: float = 0.0, type: str = "BAR", text: str = "") -> None:
        assert 0.0 <= factor <= 1.0 and type in ("BAR", "RING")
        self.log.append(Item("progress", (), {"factor": factor, "text": text}, self))

    def template_icon(self, *, icon_value: int, scale: float = 1.0) -> None:
        assert isinstance(icon_value, int) and icon_value > 0
        self.log.append(Item("template_icon", (), {"icon_value": icon_value}, self))

    # -- queries for the tests ----------------------------------------------------------------------------

    def items(self, kind: str) -> list[Item]:
        return [item for item in self.log if item.kind == kind]

    def texts(self) -> list[str]:
        return [i.kwargs["text"] for i in self.log if i.kind in ("label", "progress") and i.kwargs.get("text")]

    def operators(self) -> dict[str, Item]:
        return {item.args[0]: item for item in self.items("operator")}


def _check_icon(icon: str) -> None:
    icons = bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys()
    assert icon in icons, f"unknown icon {icon!r}"


def draw(panel_name: str, context=None) -> Recorder:
    panel = getattr(bpy.types, panel_name)
    layout = Recorder([])
    panel.draw(SimpleNamespace(layout=layout), context or bpy.context)
    return layout


PANELS = ("DYNTET_PT_backend", "DYNTET_PT_footage", "DYNTET_PT_train", "DYNTET_PT_generate", "DYNTET_PT_rig",
          "DYNTET_PT_import", "DYNTET_PT_export", "DYNTET_PT_log")
TRAIN_JOB = "20250101-120000-abcdef"


def _png(path: Path) -> str:
    from PIL import Image

    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(path)
    return str(path)


def build_state(name: str, tmp_path: Path) -> st.BackendState:
    """The session state of each scenario, built from the same messages the worker sends."""
    state = st.BackendState()
    if name == "disconnected":
        return state
    if name == "connecting":
        state.apply(st.Connecting("tcp://127.0.0.1:5555"))
        return state
    if name == "lost":
        state.apply(st.Connected("tcp://127.0.0.1:5555", "0.1.0", 1, "cpu"))
        state.apply(st.JobUpdate(TRAIN_JOB, kind="train", state="running", step=5, total=100))
        state.apply(st.ConnectionLost("the backend stopped answering", "Press Start"))
        return state
    state.apply(st.Connected("tcp://127.0.0.1:5555", "0.1.0", 1, "cpu", ("rasterizer: cpu",), ("train", "generate")))
    state.apply(st.LocalProcess(4242, str(tmp_path / "backend.log")))
    state.apply(st.Listing(("anna",), ("anna",), ("anna_test", "anna_train")))
    if name == "idle":
        state.apply(st.JobUpdate("20250101-110000-000001", kind="preprocess", state="done",
                                 result={"report": {"frames": {"decoded": 92, "kept": 90},
                                                    "reprojection_px": {"smoothed": {"median": 1.234}},
                                                    "warnings": ["2 frames had no face"]}},
                                 preview_path=_png(tmp_path / "sheet.png")))
    elif name == "training":
        state.apply(st.JobUpdate(TRAIN_JOB, kind="train", state="running", stage="train", step=12, total=100,
                                 eta_s=95.0, metrics={"loss": 0.0123, "psnr": 24.5},
                                 preview_path=_png(tmp_path / "preview.png")))
        state.apply(st.JobLog(TRAIN_JOB, "iteration 12"))
    elif name == "uploading":
        state.apply(st.Transfer("preprocess", "take 1.mp4", "uploading", 3 * 2**20, 12 * 2**20))
    elif name == "failed":
        state.apply(st.JobUpdate(TRAIN_JOB, kind="train", state="failed", error_code="out_of_memory",
                                 error_message="CUDA out of memory"))
    return state


STATES = ("disconnected", "connecting", "idle", "training", "uploading", "failed", "lost")


@pytest.fixture
def with_state(addon, scene, tmp_path: Path):
    from blender_addon import runtime

    def install(name: str) -> st.BackendState:
        runtime.reset_for_tests()
        runtime.STATE.__dict__.update(build_state(name, tmp_path).__dict__)
        return runtime.STATE

    return install


@pytest.mark.parametrize("state_name", STATES)
@pytest.mark.parametrize("with_head", [False, True])
def test_every_panel_draws_in_every_state(with_state, sequence_dir: Path, state_name: str, with_head: bool) -> None:
    with_state(state_name)
    if with_head:
        bpy.ops.dyntet.import_sequence(directory=str(sequence_dir), audio=False)
    for panel in PANELS:
        layout = draw(panel)
        assert layout.log, f"{panel} drew nothing in state {state_name}"


def test_disconnected_offers_start(with_state) -> None:
    with_state("disconnected")
    layout = draw("DYNTET_PT_backend")
    assert "dyntet.connect" in layout.operators()
    assert "Not connected" in layout.texts()


def test_training_shows_progress_losses_preview_and_cancel(with_state) -> None:
    with_state("training")
    layout = draw("DYNTET_PT_train")
    cancel = layout.operators()["dyntet.cancel"]
    assert cancel.kwargs["props"].values["job_id"] == TRAIN_JOB
    (bar,) = layout.items("progress")
    assert bar.kwargs["factor"] == pytest.approx(0.12) and "12/100" in bar.kwargs["text"]
    assert "1m 35s left" in bar.kwargs["text"]
    assert {"loss: 0.0123", "psnr: 24.5"} <= set(layout.texts())
    assert _shows_picture(layout, "preview.png"), "the latest preview image is shown"
    backend = draw("DYNTET_PT_backend")
    assert any("Current job: train" in text for text in backend.texts())


def test_a_cluster_job_shows_its_node(with_state) -> None:
    state = with_state("training")
    assert "on" not in " ".join(draw("DYNTET_PT_train").texts()).split(), "no node known: nothing shown"
    state.apply(st.JobUpdate(TRAIN_JOB, node="gpu-node-2 (127.0.0.2)"))
    assert "on gpu-node-2 (127.0.0.2)" in draw("DYNTET_PT_train").texts()


def test_an_upload_shows_progress_and_cancel(with_state) -> None:
    state = with_state("uploading")
    assert state.busy and state.phase == "busy", "Preprocess greys out while its footage travels"
    footage = draw("DYNTET_PT_footage")
    assert "Uploading take 1.mp4" in footage.texts()
    (bar,) = footage.items("progress")
    assert bar.kwargs["factor"] == 0.25 and bar.kwargs["text"] == "3.0 / 12.0 MiB"
    assert "dyntet.cancel_upload" in footage.operators()
    assert "dyntet.cancel_upload" not in draw("DYNTET_PT_generate").operators()
    state.apply(st.Transfer("preprocess", "take 1.mp4", "done", 12 * 2**20, 12 * 2**20))
    assert not state.busy and "dyntet.cancel_upload" not in draw("DYNTET_PT_footage").operators()


def test_failure_says_what_to_do(with_state) -> None:
    with_state("failed")
    backend = draw("DYNTET_PT_backend")
    alerts = [item.kwargs["text"] for item in backend.items("label") if item.container.is_alert]
    assert any("CUDA out of memory" in text for text in alerts)
    assert any("preview" in text and "preset" in text for text in alerts)  # the hint from HINTS["out_of_memory"]
    train = draw("DYNTET_PT_train")
    resume = train.operators()["dyntet.resume"]
    assert resume.kwargs["props"].values["job_id"] == TRAIN_JOB


def test_lost_connection_is_shown_and_reconnect_offered(with_state) -> None:
    with_state("lost")
    layout = draw("DYNTET_PT_backend")
    assert "dyntet.connect" in layout.operators()
    assert any(item.container.is_alert and item.kwargs["text"] == "Connection lost" for item in layout.items("label"))


def test_idle_lists_backend_sequences_and_the_tracking_report(with_state) -> None:
    with_state("idle")
    generate = draw("DYNTET_PT_generate")
    buttons = [i for i in generate.items("operator") if i.args[0] == "dyntet.import_backend_sequence"]
    assert [b.kwargs["props"].values["name"] for b in buttons] == ["anna_test", "anna_train"]
    footage = draw("DYNTET_PT_footage")
    assert {"Tracked 90 of 92 frames", "Landmark fit: 1.23 px median", "2 frames had no face"} <= set(footage.texts())
    warnings = [i.kwargs["text"] for i in footage.items("label") if i.container.is_alert]
    assert warnings == ["Tracked 90 of 92 frames", "2 frames had no face"]
    assert _shows_picture(footage, "sheet.png"), "the contact sheet is shown"


def _shows_picture(layout: Recorder, name: str) -> bool:
    """An icon of the image, or — where Blender has no icon system (module mode: ``icon_id`` stays 0) —
    the label naming it."""
    return bool(layout.items("template_icon")) or f"Preview: {name}" in layout.texts()


def test_export_panel_follows_the_selection(with_state, sequence_dir: Path) -> None:
    with_state("idle")
    assert "Select the imported head" in draw("DYNTET_PT_export").texts()
    bpy.ops.dyntet.import_sequence(directory=str(sequence_dir), audio=False)
    layout = draw("DYNTET_PT_export")
    assert any("12 shape keys" in text for text in layout.texts())
    assert layout.operators()["dyntet.export"].kwargs["props"].values["preset"] == "WEB_GLB"


def test_recorder_catches_mistakes(addon, scene) -> None:
    """The stand-in must fail where Blender would misbehave, or the tests above prove nothing."""
    layout = Recorder([])
    with pytest.raises(AssertionError):
        layout.prop(scene.dyntet, "no_such_setting")
    with pytest.raises((AttributeError, KeyError)):
        layout.operator("dyntet.no_such_operator")
    with pytest.raises(AttributeError):
        layout.operator("dyntet.cancel").no_such_property = 1
    with pytest.raises(AttributeError):
        layout.no_such_method()
    with pytest.raises(AssertionError):
        layout.label(text="x", icon="NO_SUCH_ICON")
