"""DynTet talking heads for Blender: drive the DynTet backend, import its sequences, export for engines.

An extension (see ``blender_manifest.toml``): the package name ``__package__`` is the add-on id.
Imports of ``bpy``-using modules happen inside :func:`register`, so the format code in ``io/`` and
the backend control in ``control/`` stay importable (and testable) without Blender.

Reload-safe: when Blender reloads this module (F3 ▸ Reload Scripts), the submodules are dropped from
``sys.modules`` (and from this package's namespace) so :func:`register` imports fresh copies instead
of registering stale classes.
"""

from __future__ import annotations

import sys

if "_registered_classes" in globals():  # a reload: forget the old submodules
    for _name in [name for name in sys.modules if name.startswith(__name__ + ".")]:
        del sys.modules[_name]
        globals().pop(_name[len(__name__) + 1:].split(".")[0], None)  # `from . import x` reads these first

_registered_classes: tuple = ()


def _classes() -> tuple:
    from . import preferences, properties
    from .operators import backend, files
    from .ui import panels

    return (
        preferences.DynTetPreferences,
        *properties.CLASSES,
        *files.CLASSES,
        *backend.CLASSES,
        *panels.CLASSES,
    )


def register() -> None:
    """Register every class (one tuple), the scene settings, the File menu entries and the timer."""
    global _registered_classes
    import bpy

    from . import properties, runtime
    from .operators import files

    classes = _classes()
    for cls in classes:
        bpy.utils.register_class(cls)
    _registered_classes = classes
    properties.attach()
    bpy.types.TOPBAR_MT_file_import.append(files.menu_import)
    bpy.types.TOPBAR_MT_file_export.append(files.menu_export)
    runtime.start()


def unregister() -> None:
    """Undo :func:`register` in reverse order (a no-op when not registered)."""
    global _registered_classes
    if not _registered_classes:
        return
    import bpy

    from . import properties, runtime
    from .operators import files

    runtime.stop()
    bpy.types.TOPBAR_MT_file_export.remove(files.menu_export)
    bpy.types.TOPBAR_MT_file_import.remove(files.menu_import)
    properties.detach()
    for cls in reversed(_registered_classes):
        bpy.utils.unregister_class(cls)
    _registered_classes = ()
