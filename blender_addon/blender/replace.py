"""Replace an earlier import of the same sequence folder instead of adding a second copy.

An imported head records where it came from (``dyntet_sequence``, the folder's resolved path) and the
names of what came with it (``dyntet_world``, ``dyntet_camera``, ``dyntet_sound``); everything else is
reached from the object (mesh, materials, their images, actions). The importer builds the new head first
and only then removes the old datablocks that the new one does not share (an image loaded from the same
file is reused, not reloaded), and finally gives the new datablocks the old names, so a re-import leaves
one ``alice``, one ``alice_material``, one ``alice_light`` and one action, with no ``.001``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import bpy

from .scene import _strips

Block = tuple[object, bpy.types.ID]
"""A datablock and the ``bpy.data`` collection that removes it."""


@dataclass
class Previous:
    """What earlier imports of one folder made, and the names the new import should take over."""

    heads: list[bpy.types.Object]
    blocks: list[Block] = field(default_factory=list)
    strips: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    """Role (``object``, ``mesh``, ``material``, ``world``, ``camera``, ``camera_data``, ``action``) → name."""


def previous_import(root: str | Path) -> Previous | None:
    """The heads imported earlier from ``root`` and their datablocks, or None when there are none."""
    wanted = str(Path(root).resolve())
    heads = [o for o in bpy.data.objects if o.type == "MESH" and o.get("dyntet_sequence") == wanted]
    if not heads:
        return None
    previous = Previous(heads)
    seen: set[int] = set()
    for head in heads:
        for role, block in _blocks(head):
            if block[1].as_pointer() not in seen:
                seen.add(block[1].as_pointer())
                previous.blocks.append(block)
                previous.names.setdefault(role, block[1].name)
        if head.get("dyntet_sound"):
            previous.strips.append(str(head["dyntet_sound"]))
    return previous


def blocks_of(obj: bpy.types.Object) -> set[int]:
    """Pointers of every datablock that belongs to the head ``obj`` (what a replacement must keep)."""
    return {block.as_pointer() for _, (_, block) in _blocks(obj)}


def remove(scene: bpy.types.Scene, previous: Previous, keep: set[int]) -> int:
    """Remove the earlier import's datablocks and sound strips, except those in ``keep``; returns how many."""
    removed = 0
    editor = scene.sequence_editor
    if editor is not None:
        strips = _strips(editor)
        for name in previous.strips:
            strip = strips.get(name)
            if strip is not None:
                sound = strip.sound
                strips.remove(strip)
                removed += 1
                if sound is not None and sound.users == 0 and sound.as_pointer() not in keep:
                    bpy.data.sounds.remove(sound)
    for collection, block in previous.blocks:
        if block.as_pointer() in keep:
            continue
        try:
            collection.remove(block)
        except ReferenceError:  # freed with its owner already
            continue
        removed += 1
    return removed


NAMED_ROLES = ("object", "mesh", "material", "world", "camera", "camera_data", "action")
"""Roles with one datablock per head, whose names pass to the replacement (images are named by subject)."""


def take_names(scene: bpy.types.Scene, previous: Previous, obj: bpy.types.Object) -> None:
    """Give the new head's datablocks (and its sound strip) the names the replaced ones had (now free)."""
    for role, (collection, block) in _blocks(obj):
        name = previous.names.get(role) if role in NAMED_ROLES else _unsuffixed(block.name)
        if name and block.name != name and collection.get(name) is None:
            block.name = name
    for key, role in (("dyntet_world", "world"), ("dyntet_camera", "camera")):
        if key in obj and role in previous.names:
            obj[key] = previous.names[role]
    editor = scene.sequence_editor
    strip = _strips(editor).get(str(obj.get("dyntet_sound", ""))) if editor is not None else None
    if strip is not None and previous.strips and strip.name != previous.strips[0]:
        strip.name = previous.strips[0]
        obj["dyntet_sound"] = strip.name
    sound = strip.sound if strip is not None else None
    if sound is not None and bpy.data.sounds.get(_unsuffixed(sound.name)) is None:
        sound.name = _unsuffixed(sound.name)


def _unsuffixed(name: str) -> str:
    """``alice_orm.png.001`` → ``alice_orm.png``: the name Blender would have given without a clash."""
    return re.sub(r"\.\d{3}$", "", name)


def _blocks(obj: bpy.types.Object) -> Iterator[tuple[str, Block]]:
    """``(role, (collection, datablock))`` of a head: object, mesh, materials, images, World, camera, actions."""
    yield "object", (bpy.data.objects, obj)
    mesh = obj.data
    yield "mesh", (bpy.data.meshes, mesh)
    for material in mesh.materials:
        if material is None:
            continue
        yield "material", (bpy.data.materials, material)
        yield from (("image", (bpy.data.images, image)) for image in _images(material.node_tree))
    world = bpy.data.worlds.get(str(obj.get("dyntet_world", "")))
    if world is not None:
        yield "world", (bpy.data.worlds, world)
        yield from (("image", (bpy.data.images, image)) for image in _images(world.node_tree))
    camera = bpy.data.objects.get(str(obj.get("dyntet_camera", "")))
    if camera is not None and camera.type == "CAMERA":
        yield "camera", (bpy.data.objects, camera)
        yield "camera_data", (bpy.data.cameras, camera.data)
    for owner in (obj, mesh.shape_keys):
        anim = getattr(owner, "animation_data", None) if owner is not None else None
        if anim is not None and anim.action is not None:
            yield "action", (bpy.data.actions, anim.action)


def _images(tree: bpy.types.NodeTree | None) -> Iterator[bpy.types.Image]:
    for node in tree.nodes if tree is not None else ():
        image = getattr(node, "image", None)
        if image is not None:
            yield image
