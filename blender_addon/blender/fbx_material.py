"""Make the head's PBR maps survive FBX: separate roughness / metalness images for the exporter, and the
packed maps each engine's materials read, written beside the file.

Why: FBX materials are Phong/Lambert. Blender's FBX exporter writes a texture only when an Image Texture
node feeds a Principled BSDF input directly (``bpy_extras.node_shader_utils``): roughness becomes the
``ShininessExponent`` texture, metalness ``ReflectionFactor``, and our ORM image, which reaches those inputs
through a Separate Color node, is dropped. For the export the head gets a stand-in material whose
roughness and metalness come from grey images split off the ORM (embedded in the FBX, named after the
subject), and the user's material is back afterwards. Occlusion has no FBX slot at all; it travels in
the engine's packed map beside the FBX:

* Unreal: ``<subject>_ORM.png`` — R occlusion, G roughness, B metalness (Unreal's usual ORM packing; our
  ORM as it is). Connect R → Ambient Occlusion, G → Roughness, B → Metallic, sampler *Linear Color*.
* Unity: ``<subject>_MetallicSmoothness.png`` — RGB metalness, A smoothness = 1 − roughness (Standard and
  URP Lit, *Smoothness Source: Metallic Alpha*) and ``<subject>_Occlusion.png`` (grey); HDRP reads
  ``<subject>_MaskMap.png`` — R metalness, G occlusion, B detail mask (1), A smoothness.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal

import bpy
import numpy as np

from .material import BASE_COLOR_SPACE, DATA_COLOR_SPACE

Engine = Literal["UNREAL", "UNITY"]

FBX_LIMITS = ("FBX has Phong materials: base colour, roughness (as ShininessExponent) and metalness (as "
              "ReflectionFactor) are embedded; occlusion has no FBX slot and travels in the packed map beside it")
"""What the panel and the export report say about FBX and PBR."""


def _find_image(material: bpy.types.Material, label: str) -> bpy.types.Image | None:
    node = material.node_tree.nodes.get(label) if material.node_tree is not None else None
    return getattr(node, "image", None)


def image_rgba(image: bpy.types.Image) -> np.ndarray:
    """float32 [H, W, 4] pixels, row 0 = top (Blender stores rows bottom-up)."""
    width, height = image.size
    pixels = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(pixels)
    return pixels.reshape(height, width, 4)[::-1]


def save_png(path: Path, rgba: np.ndarray, colorspace: str = DATA_COLOR_SPACE) -> Path:
    """Write float [H, W, 4] (row 0 = top, values 0..1) as an 8-bit RGBA PNG through a temporary image."""
    height, width = rgba.shape[:2]
    image = bpy.data.images.new(f".dyntet_{path.stem}", width, height, alpha=True)
    try:
        image.colorspace_settings.name = colorspace
        image.pixels.foreach_set(np.ascontiguousarray(rgba[::-1], dtype=np.float32).ravel())
        image.filepath_raw = str(path)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
    return path


def _grey(channel: np.ndarray) -> np.ndarray:
    return np.concatenate([np.repeat(channel[..., None], 3, axis=2), np.ones((*channel.shape, 1), np.float32)], 2)


def engine_maps(orm: np.ndarray, folder: Path, subject: str, engine: Engine) -> list[Path]:
    """Write the packed maps ``engine``'s materials read, from ORM pixels float [H, W, ≥3]; returns the files."""
    occlusion, roughness, metalness = orm[..., 0], orm[..., 1], orm[..., 2]
    ones = np.ones_like(occlusion)
    if engine == "UNREAL":
        return [save_png(folder / f"{subject}_ORM.png", np.stack([occlusion, roughness, metalness, ones], -1))]
    smoothness = 1.0 - roughness
    return [
        save_png(folder / f"{subject}_MetallicSmoothness.png", np.stack([metalness] * 3 + [smoothness], -1)),
        save_png(folder / f"{subject}_Occlusion.png", _grey(occlusion)),
        save_png(folder / f"{subject}_MaskMap.png", np.stack([metalness, occlusion, ones, smoothness], -1)),
    ]


@contextmanager
def fbx_ready_material(obj: bpy.types.Object, subject: str, engine: Engine, folder: Path) -> Iterator[list[Path]]:
    """Inside the block ``obj`` wears a material Blender's FBX exporter carries roughness/metalness of.

    Yields the engine maps written into ``folder`` (empty when the head has no ORM texture). On exit the
    user's material is back and every stand-in datablock is gone.
    """
    mesh = obj.data
    material = mesh.materials[0] if len(mesh.materials) else None
    orm = _find_image(material, "ORM") if material is not None else None
    if material is None or orm is None:
        yield []
        return
    pixels = image_rgba(orm)
    written = engine_maps(pixels, folder, subject, engine)
    scratch = Path(tempfile.mkdtemp(prefix="dyntet_fbx_"))
    stand_in = material.copy()
    images: list[bpy.types.Image] = []
    own_name = material.name
    try:
        material.name, stand_in.name = f"{own_name}.dyntet_export", own_name
        tree = stand_in.node_tree
        bsdf = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
        for index, (role, socket) in enumerate((("roughness", "Roughness"), ("metallic", "Metallic"))):
            channel = pixels[..., 1] if role == "roughness" else pixels[..., 2]
            image = bpy.data.images.load(str(save_png(scratch / f"{subject}_{role}.png", _grey(channel))))
            image.colorspace_settings.name = DATA_COLOR_SPACE
            images.append(image)
            node = tree.nodes.new("ShaderNodeTexImage")
            node.name = node.label = role.title()
            node.image, node.location = image, (-400, -100 - 260 * index)
            tree.links.new(node.outputs["Color"], bsdf.inputs[socket])
        base = _find_image(stand_in, "Base Color")
        if base is not None:  # embedded under the subject's name, not the sequence's generic base_color.png
            copy = scratch / f"{subject}_base_color.png"
            if base.packed_file is not None:
                copy.write_bytes(base.packed_file.data)
            else:
                shutil.copyfile(bpy.path.abspath(base.filepath), copy)
            image = bpy.data.images.load(str(copy))
            image.colorspace_settings.name = BASE_COLOR_SPACE
            images.append(image)
            tree.nodes["Base Color"].image = image
        mesh.materials[0] = stand_in
        yield written
    finally:
        mesh.materials[0] = material
        bpy.data.materials.remove(stand_in)
        material.name = own_name
        for image in images:
            bpy.data.images.remove(image)
        shutil.rmtree(scratch, ignore_errors=True)
