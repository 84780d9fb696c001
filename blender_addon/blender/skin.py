"""A one-bone skin for the export: the head's motion on a bone, its shape keys on a skinned mesh.

Why: Unreal keeps morph targets only on Skeletal Meshes; a glTF mesh without a skin becomes a Static
Mesh there and loses its morph targets and animation. For the Unreal glTF preset the head is bound, for
the duration of the export, to an armature with one bone ``head`` (rest = identity, every vertex
weight 1) whose pose carries the head motion that the object's transform carried, so the file has a
skin, a joint animated by the head pose and the morph-target weights in one animation. Unity (glTFast)
imports morph targets on any mesh, so its preset leaves the head as it is.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import bpy
import numpy as np

from .animation import Performance, curves_of, set_keyframes

BONE = "head"
_TRANSFORMS = ("location", "rotation_quaternion", "scale")


@contextmanager
def one_bone_skin(context: bpy.types.Context, obj: bpy.types.Object) -> Iterator[bpy.types.Object]:
    """Inside the block ``obj`` is skinned to a new one-bone armature (yielded) carrying its motion."""
    scene = context.scene
    anim = obj.animation_data
    saved_action = anim.action if anim is not None else None
    saved_slot = anim.action_slot if anim is not None and hasattr(anim, "action_slot") else None
    saved_matrix = obj.matrix_world.copy()
    moving = [c for c in curves_of(obj) if c.data_path in _TRANSFORMS]

    armature = bpy.data.armatures.new(f"{obj.name}_skeleton")
    rig = bpy.data.objects.new(f"{obj.name}_rig", armature)
    scene.collection.objects.link(rig)
    group = obj.vertex_groups.new(name=BONE)
    modifier = None
    take = None
    try:
        active = context.view_layer.objects.active
        context.view_layer.objects.active = rig  # edit bones exist only in edit mode of the active armature
        try:
            bpy.ops.object.mode_set(mode="EDIT")
            bone = armature.edit_bones.new(BONE)
            bone.head, bone.tail, bone.roll = (0.0, 0.0, 0.0), (0.0, 0.1, 0.0), 0.0  # along +Y: rest = identity
            bpy.ops.object.mode_set(mode="OBJECT")
        finally:
            context.view_layer.objects.active = active
        group.add(range(len(obj.data.vertices)), 1.0, "REPLACE")
        modifier = obj.modifiers.new("DynTet skin", "ARMATURE")
        modifier.object = rig
        pose = rig.pose.bones[BONE]
        pose.rotation_mode = "QUATERNION"
        if moving:
            take = Performance(f"{obj.name}_bone")
            take.actions = [saved_action] if saved_action is not None else []
            channels = take.channels_for(rig)
            for curve in moving:
                coords = np.empty(2 * len(curve.keyframe_points), np.float32)
                curve.keyframe_points.foreach_get("co", coords)
                target = channels.new_curve(f'pose.bones["{BONE}"].{curve.data_path}', curve.array_index, BONE)
                set_keyframes(target, coords, curve.keyframe_points[0].interpolation)
            anim.action = None
        else:
            pose.matrix_basis = saved_matrix
        obj.parent = rig
        obj.matrix_parent_inverse.identity()
        obj.matrix_world.identity()
        yield rig
    finally:
        obj.parent = None
        if modifier is not None:
            obj.modifiers.remove(modifier)
        obj.vertex_groups.remove(group)
        if anim is not None and saved_action is not None:
            anim.action = saved_action
            if saved_slot is not None:
                anim.action_slot = saved_slot
        obj.matrix_world = saved_matrix
        if take is not None and saved_action is not None and hasattr(saved_action, "slots"):
            for slot in [s for s in saved_action.slots if s.identifier.endswith(rig.name)]:
                saved_action.slots.remove(slot)
        for action in take.actions if take is not None else ():
            if action != saved_action:  # 4.2/4.3: the rig had an action of its own
                bpy.data.actions.remove(action)
        bpy.data.objects.remove(rig)
        bpy.data.armatures.remove(armature)
