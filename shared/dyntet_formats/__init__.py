"""Folder formats shared by the backend and the Blender add-on: numpy and the standard library only.

The backend's :mod:`dyntet.formats` builds on these readers (and adds the writers, which need Pillow or
torch); the add-on imports them directly, so Blender and the exporters read a folder with one
implementation. ``docs/dataset-format.md`` documents every file.
"""

from dyntet_formats.errors import FormatError

__all__ = ["FormatError"]
