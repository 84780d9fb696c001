"""Fixtures for the Blender add-on tests.

``bpy`` (5.0.1 from the package index) runs as a Python module: it can be imported once per process, so
every test here shares one Blender; :func:`scene` gives each test an empty scene instead
(``read_homefile(use_empty=True, use_factory_startup=True)`` keeps registered add-ons, unlike
``read_factory_settings``). The add-on is enabled through Blender's add-on manager under the package
name ``blender_addon`` (the repository folder), so its preferences exist as they would for a user.

The add-on is enabled here, when this conftest is imported — before any test module imports
``blender_addon`` submodules. (Enabling a package that was imported another way makes ``addon_utils``
reload it, which gives fresh classes that the test modules' earlier imports would not match.)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
from blender_helpers import ADDON_MODULE, REPO  # noqa: E402  (one definition, importable by tests)

for path in (str(REPO), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

USER_DIR = Path(tempfile.mkdtemp(prefix="dyntet_blender_user_"))
os.environ["DYNTET_BLENDER_USER_DIR"] = str(USER_DIR)  # never the real folder under ~/.config


def _enable_addon() -> None:
    import addon_utils

    module = addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=_raise)
    if module is None:
        raise RuntimeError("the add-on failed to enable")


def _raise(exc: BaseException) -> None:
    raise exc


try:
    import bpy as _bpy  # noqa: F401  (one Blender per process: imported once, here)
except ImportError:
    _bpy = None
else:
    _enable_addon()


@pytest.fixture(scope="session", autouse=True)
def user_dir():
    """The add-on's user folder for this test session (removed at the end)."""
    yield USER_DIR
    shutil.rmtree(USER_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def bpy_module():
    """The ``bpy`` module (skips the Blender tests when it is not installed)."""
    if _bpy is None:
        pytest.skip("bpy is not installed")
    return _bpy


@pytest.fixture
def addon(bpy_module):
    """The add-on, enabled through ``addon_utils`` (re-enabled if an earlier test reset preferences)."""
    bpy = bpy_module
    if bpy.context.preferences.addons.get(ADDON_MODULE) is None or not hasattr(bpy.types.Scene, "dyntet"):
        _enable_addon()  # an earlier test reset the preferences (read_factory_settings)
    import blender_addon.runtime as runtime

    runtime.reset_for_tests()
    yield sys.modules[ADDON_MODULE]
    runtime.reset_for_tests()


@pytest.fixture
def scene(bpy_module):
    """An empty scene in a fresh file."""
    bpy = bpy_module
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    return bpy.context.scene


@pytest.fixture(scope="session")
def sequence_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame synthetic sequence folder with every optional file (written once per session)."""
    from blender_helpers import write_test_sequence

    return write_test_sequence(tmp_path_factory.mktemp("seq") / "head")


@pytest.fixture(scope="session")
def gltf_validator():
    """``validate(path) -> ValidationReport`` with the Khronos glTF Validator, or None when Node or the
    validator cannot be had here (the morph-target and animation checks still run)."""
    try:
        from dyntet.export.validate import ValidatorUnavailable, ensure_validator, validate_glb
    except ImportError:
        return None
    try:
        ensure_validator()
    except ValidatorUnavailable as exc:
        print(f"glTF validation skipped: {exc}")
        return None
    return validate_glb
