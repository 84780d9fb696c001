"""A World lit by the learned environment map (equirectangular Radiance HDR, linear)."""

from __future__ import annotations

from pathlib import Path

import bpy

from .material import load_image, texture_name

HDR_COLOR_SPACE = "Linear Rec.709"
"""Radiance HDR holds linear scene-referred values; Blender's default for float files, stated explicitly."""


def build_world(name: str, environment: Path, strength: float = 1.0, subject: str = "",
                pack: bool = False) -> bpy.types.World:
    """Create a World: Environment Texture → Background → World Output.

    Args:
        name: world name.
        environment: the ``environment.hdr`` file.
        strength: Background strength (1 reproduces the learned light).
        subject: names the image ``<subject>_environment.hdr`` (empty: the file's name).
        pack: pack the image into the .blend.
    """
    world = bpy.data.worlds.new(name)
    if bpy.app.version < (5, 0, 0):  # 5.0 always uses nodes (and deprecates the flag)
        world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = next(node for node in nodes if node.bl_idname == "ShaderNodeBackground")
    background.inputs["Strength"].default_value = strength
    texture = nodes.new("ShaderNodeTexEnvironment")
    texture.image = load_image(environment, HDR_COLOR_SPACE,
                               texture_name(subject, "environment", environment) if subject else "", pack)
    texture.location = (-350, 300)
    links.new(texture.outputs["Color"], background.inputs["Color"])
    return world
