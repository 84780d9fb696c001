"""Blender datablocks from sequence data: mesh, shape keys, animation, material, world, audio, export."""
