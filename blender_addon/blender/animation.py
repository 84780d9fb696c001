"""Actions and F-curves across Blender versions, written in bulk.

Why: Blender 4.4 introduced slotted (layered) actions and 5.0 removed ``Action.fcurves``; F-curves now
live in a channelbag of a keyframe strip for one slot. 4.2/4.3 have only the legacy ``Action.fcurves``.
:func:`new_action` hides the difference; :func:`set_keyframes` fills a curve with one ``foreach_set``
per property instead of one ``keyframe_insert`` per key (which costs a depsgraph update each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np


def interpolation_value(name: str) -> int:
    """Integer of a keyframe interpolation enum item (``"CONSTANT"``, ``"LINEAR"``) for ``foreach_set``."""
    return bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items[name].value


@dataclass
class Channels:
    """Where the F-curves animating one ID go."""

    action: bpy.types.Action
    fcurves: Any
    """``ActionChannelbagFCurves`` (4.4+) or ``ActionFCurves`` (4.2/4.3); both have ``new()``."""
    slotted: bool
    """Whether the slotted-action API is in use."""

    def new_curve(self, data_path: str, index: int = 0, group: str = "") -> bpy.types.FCurve:
        if self.slotted:
            return self.fcurves.new(data_path, index=index, group_name=group)
        return self.fcurves.new(data_path, index=index, action_group=group)


def uses_slotted_actions() -> bool:
    """True on Blender 4.4+ (``Action.slots`` exists)."""
    return "slots" in bpy.types.Action.bl_rna.properties


class Performance:
    """One action animating several IDs (the head object and its shape keys) as one take.

    On 4.4+ it is a single action with one slot per ID, so exporters see one clip (Blender's glTF
    exporter merges an action's slots into one glTF animation). 4.2/4.3 cannot share an action between
    an Object and a Key, so there each ID gets its own action, named after the take.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.actions: list[bpy.types.Action] = []

    def channels_for(self, target: bpy.types.ID) -> Channels:
        """Assign this take to ``target`` and return where its F-curves go."""
        anim = target.animation_data or target.animation_data_create()
        if uses_slotted_actions():
            if not self.actions:
                self.actions.append(bpy.data.actions.new(self.name))
            action = self.actions[0]
            slot = action.slots.new(id_type=target.id_type, name=target.name)
            anim.action = action
            anim.action_slot = slot
            return Channels(action, _channelbag(action, slot).fcurves, slotted=True)
        action = bpy.data.actions.new(f"{self.name}_{target.id_type.lower()}")
        self.actions.append(action)
        anim.action = action
        return Channels(action, action.fcurves, slotted=False)


def _channelbag(action: bpy.types.Action, slot: Any) -> Any:
    try:
        from bpy_extras.anim_utils import action_ensure_channelbag_for_slot
    except ImportError:  # 4.4 before the helper existed: build the layer and strip by hand
        layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
        strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
        return strip.channelbag(slot, ensure=True)
    return action_ensure_channelbag_for_slot(action, slot)


def curves_of(target: bpy.types.ID) -> list[bpy.types.FCurve]:
    """The F-curves animating ``target`` through its assigned action (and slot), on any version."""
    anim = target.animation_data
    if anim is None or anim.action is None:
        return []
    if uses_slotted_actions():
        from bpy_extras.anim_utils import action_get_channelbag_for_slot

        bag = action_get_channelbag_for_slot(anim.action, anim.action_slot)
        return list(bag.fcurves) if bag is not None else []
    return list(anim.action.fcurves)


def channels_of(target: bpy.types.ID) -> Channels | None:
    """Where new F-curves of ``target``'s assigned action (and slot) go; None when it has no action."""
    anim = target.animation_data
    if anim is None or anim.action is None:
        return None
    if uses_slotted_actions():
        if anim.action_slot is None:
            return None
        return Channels(anim.action, _channelbag(anim.action, anim.action_slot).fcurves, slotted=True)
    return Channels(anim.action, anim.action.fcurves, slotted=False)


def set_keyframes(curve: bpy.types.FCurve, coords: np.ndarray, interpolation: str) -> None:
    """Add keyframes to an empty F-curve in bulk.

    Args:
        curve: an F-curve with no keyframes yet.
        coords: float32 [2·N] interleaved ``(frame, value)`` pairs, frames strictly increasing.
        interpolation: ``"CONSTANT"``, ``"LINEAR"`` or ``"BEZIER"`` for every key.
    """
    coords = np.ascontiguousarray(coords, dtype=np.float32)
    count = coords.size // 2
    points = curve.keyframe_points
    points.add(count)
    points.foreach_set("co", coords)
    points.foreach_set("interpolation", np.full(count, interpolation_value(interpolation), dtype=np.int32))
    curve.update()
