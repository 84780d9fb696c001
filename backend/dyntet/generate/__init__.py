"""Driving a trained avatar and writing sequence folders.

``api`` (``generate``: run + driving source → sequence folder) on top of ``drive`` (what drives the
avatar: splits, other datasets, videos), ``retarget`` (another person's expressions in the avatar's
face-model basis), ``pose`` (head motion and the scene frame), ``geometry`` (the cached per-frame mesh
path), ``bake`` (UV atlas and PBR textures), ``textured`` (rendering the baked asset) and ``sequence``
(the folder format); ``video`` renders the neural avatar to an MP4.
"""
