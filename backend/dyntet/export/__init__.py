"""Sequence folders to interchange formats.

``gltf`` (glTF 2.0 binary with morph-target rigs) on top of ``glb`` (the container), ``mesh`` (UV-seam
split, normals) and ``pca`` (blend-shape compression); ``obj`` (per-frame OBJ + MTL); ``hdr`` (Radiance
RGBE images); ``validate`` (the Khronos glTF Validator); ``synthetic`` (a test head sequence).
"""
