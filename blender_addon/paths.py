"""Where the add-on keeps its own files (backend log and pid record, previews, fetched sequences).

Blender gives each *extension* a user folder (``bpy.utils.extension_path_user``) that survives
upgrades. When the code runs as a legacy add-on or as a plain package (``bpy`` as a Python module in
tests), that call refuses the package name; the fallback is ``<Blender config>/dyntet``. The environment
variable ``DYNTET_BLENDER_USER_DIR`` overrides both (tests point it at a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy

ENV_OVERRIDE = "DYNTET_BLENDER_USER_DIR"


def user_dir(subfolder: str = "") -> Path:
    """The add-on's user folder (created), or ``subfolder`` inside it."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        base = Path(override)
    else:
        try:
            base = Path(bpy.utils.extension_path_user(__package__, create=True))
        except ValueError:  # not installed as an extension
            base = Path(bpy.utils.user_resource("CONFIG", path="dyntet", create=True))
    folder = base / subfolder if subfolder else base
    folder.mkdir(parents=True, exist_ok=True)
    return folder
