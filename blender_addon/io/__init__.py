"""Sequence folders and the maths of bringing them into a Z-up scene. Imports numpy only, never bpy."""
