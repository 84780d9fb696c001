"""A Principled BSDF material from the baked textures, with the colour spaces the files were written in.

Base colour is an sRGB PNG. ORM is *data* (R occlusion, G roughness, B metalness) and must be read as
Non-Color, or Blender would linearise it with the sRGB curve and every roughness would come out wrong.
Blender's Principled BSDF has no occlusion input (Cycles computes its own); the occlusion channel is
routed into a "glTF Material Output" node group, which Blender's glTF exporter reads as the glTF
``occlusionTexture`` (packed with roughness/metalness because they share one image).
"""

from __future__ import annotations

from pathlib import Path

import bpy

GLTF_OUTPUT_GROUP = "glTF Material Output"
"""Node-group name Blender's glTF add-on looks for (``io_scene_gltf2 ... get_gltf_node_name``)."""

BASE_COLOR_SPACE = "sRGB"
DATA_COLOR_SPACE = "Non-Color"


def load_image(path: Path, colorspace: str, name: str = "", pack: bool = False) -> bpy.types.Image:
    """Load an image file (reusing one already loaded from the same path) and set its colour space.

    Args:
        path: the file.
        colorspace: ``"sRGB"``, ``"Non-Color"``, ….
        name: datablock name, e.g. ``alice_base_color.png`` (two subjects' ``base_color.png`` never collide).
        pack: pack the file into the .blend; its path then becomes ``//textures/<name>``, the name exporters
            write and *File ▸ External Data ▸ Unpack Resources* restores it under.
    """
    image = bpy.data.images.load(str(path), check_existing=True)
    image.colorspace_settings.name = colorspace
    if name:
        image.name = name
    if pack:
        if image.packed_file is None:
            image.pack()
        packed = f"//textures/{name or Path(path).name}"
        image.filepath_raw = packed
        for stored in image.packed_files:  # where Unpack Resources writes it
            stored.filepath = packed
    return image


def texture_name(subject: str, role: str, path: Path) -> str:
    """``<subject>_<role><suffix>``: the name images of one head carry in the .blend and in exports."""
    return f"{subject}_{role}{path.suffix.lower()}"


def gltf_output_group() -> bpy.types.NodeTree:
    """The shared "glTF Material Output" node group with an ``Occlusion`` input, created once per file."""
    group = bpy.data.node_groups.get(GLTF_OUTPUT_GROUP)
    if group is None:
        group = bpy.data.node_groups.new(GLTF_OUTPUT_GROUP, "ShaderNodeTree")
    if "Occlusion" not in group.interface.items_tree:
        socket = group.interface.new_socket(name="Occlusion", in_out="INPUT", socket_type="NodeSocketFloat")
        socket.default_value = 1.0
        socket.min_value, socket.max_value = 0.0, 1.0
    return group


def build_material(name: str, base_color: Path | None, orm: Path | None, subject: str = "",
                   pack: bool = False) -> bpy.types.Material:
    """Create the head material.

    Args:
        name: material name.
        base_color: sRGB base-colour texture, or None for a plain grey.
        orm: linear ORM texture (R occlusion, G roughness, B metalness), or None for the defaults.
        subject: names the images ``<subject>_base_color.png`` / ``<subject>_orm.png`` (empty: file names).
        pack: pack the images into the .blend (see :func:`load_image`).

    Returns:
        A node material: image textures → Principled BSDF → Material Output, ORM split by Separate Color.
    """
    material = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):  # 5.0 always uses nodes (and deprecates the flag)
        material.use_nodes = True
    tree = material.node_tree
    nodes, links = tree.nodes, tree.links
    bsdf = next(node for node in nodes if node.bl_idname == "ShaderNodeBsdfPrincipled")
    bsdf.location = (300, 300)

    if base_color is not None:
        color = nodes.new("ShaderNodeTexImage")
        color.name = color.label = "Base Color"
        color.image = load_image(base_color, BASE_COLOR_SPACE,
                                 texture_name(subject, "base_color", base_color) if subject else "", pack)
        color.location = (-400, 400)
        links.new(color.outputs["Color"], bsdf.inputs["Base Color"])

    if orm is not None:
        texture = nodes.new("ShaderNodeTexImage")
        texture.name = texture.label = "ORM"
        texture.image = load_image(orm, DATA_COLOR_SPACE, texture_name(subject, "orm", orm) if subject else "", pack)
        texture.location = (-700, 0)
        split = nodes.new("ShaderNodeSeparateColor")
        split.mode = "RGB"
        split.location = (-350, 0)
        links.new(texture.outputs["Color"], split.inputs["Color"])
        links.new(split.outputs["Green"], bsdf.inputs["Roughness"])
        links.new(split.outputs["Blue"], bsdf.inputs["Metallic"])
        occlusion = nodes.new("ShaderNodeGroup")
        occlusion.node_tree = gltf_output_group()
        occlusion.name = occlusion.label = GLTF_OUTPUT_GROUP
        occlusion.location = (300, -250)
        links.new(split.outputs["Red"], occlusion.inputs["Occlusion"])
    return material
