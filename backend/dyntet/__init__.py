"""DynTet backend: dynamic tetrahedra talking-head avatars (Zhang et al., CVPR 2024).

Layers, one direction of dependency:
``geometry`` / ``render`` / ``nn`` (pure maths) <- ``model`` <- ``train`` / ``generate`` / ``export``
<- ``server`` / ``cli``.  ``face`` and ``data`` produce and read dataset folders.
"""

__version__ = "0.1.0"
