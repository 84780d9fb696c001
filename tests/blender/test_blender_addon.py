"""The extension as Blender sees it: manifest, registration, operators, menus, the built zip."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from blender_helpers import ADDON_MODULE, REPO  # noqa: E402

MANIFEST = REPO / "blender_addon" / "blender_manifest.toml"


def _blender_manifest_validator():
    """Blender's own manifest checker (``bl_pkg/cli/blender_ext.py``), loaded from the bpy package."""
    path = Path(bpy.utils.system_resource("SCRIPTS", path="addons_core/bl_pkg/cli")) / "blender_ext.py"
    spec = importlib.util.spec_from_file_location("blender_ext_for_tests", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.pkg_manifest_from_toml_and_validate_all_errors


def test_manifest_has_every_required_field() -> None:
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["id"] == "dyntet" and manifest["type"] == "add-on"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert manifest["blender_version_min"] == "4.2.0"
    for key in ("version", "name", "tagline", "maintainer"):
        assert isinstance(manifest[key], str) and manifest[key].strip()
    assert set(manifest["permissions"]) == {"files", "network"}
    assert all(reason.strip() for reason in manifest["permissions"].values())


def test_manifest_passes_blenders_own_validation(tmp_path: Path) -> None:
    validate = _blender_manifest_validator()
    result = validate(str(MANIFEST), strict=True)
    assert not isinstance(result, list), result
    assert result.license == ["SPDX:GPL-3.0-or-later"]


def test_registers_and_unregisters_cleanly_twice(addon) -> None:
    module = addon
    panels = ("DYNTET_PT_backend", "DYNTET_PT_train", "DYNTET_PT_export")
    for _ in range(2):
        module.unregister()
        assert not hasattr(bpy.types.Scene, "dyntet")
        assert not any(hasattr(bpy.types, name) for name in panels)
        assert not hasattr(bpy.ops.dyntet, "import_sequence") or not _operator_registered("dyntet.import_sequence")
        module.register()
        assert hasattr(bpy.types.Scene, "dyntet")
        assert all(hasattr(bpy.types, name) for name in panels)
        assert _operator_registered("dyntet.import_sequence")
    module.unregister()
    module.unregister()  # a second unregister is harmless (Blender may call it at exit)
    module.register()


def _operator_registered(idname: str) -> bool:
    category, name = idname.split(".")
    try:
        getattr(getattr(bpy.ops, category), name).get_rna_type()
    except (AttributeError, KeyError):
        return False
    return True


def test_reload_registers_fresh_classes(tmp_path: Path) -> None:
    """F3 ▸ Reload Scripts: unregister, reload the package, register — the new classes are in use.
    (In a separate Blender: a reload replaces the add-on's modules under this test process's feet.)"""
    script = (
        "import importlib, sys, bpy, addon_utils\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        f"module = addon_utils.enable({ADDON_MODULE!r}, default_set=True)\n"
        "old_panel = bpy.types.DYNTET_PT_backend\n"
        "module.unregister()\n"
        "module = importlib.reload(module)\n"
        "module.register()\n"
        "new_panel = bpy.types.DYNTET_PT_backend\n"
        "assert new_panel is not old_panel\n"
        f"assert sys.modules[{ADDON_MODULE + '.ui.panels'!r}].DYNTET_PT_backend is new_panel\n"
        "assert hasattr(bpy.types.Scene, 'dyntet')\n"
        "module.unregister()\n"
        "print('RELOADED')\n"
    )
    env = {**os.environ, "DYNTET_BLENDER_USER_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0 and "RELOADED" in run.stdout, run.stdout + run.stderr


def test_settings_live_in_property_groups(addon, scene) -> None:
    settings = scene.dyntet
    assert isinstance(settings, bpy.types.PropertyGroup)
    assert isinstance(settings.import_settings, bpy.types.PropertyGroup)
    options = settings.import_settings.to_options()
    assert options.rig == "frames" and options.frame_start == 1
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    assert prefs.mode == "LOCAL" and prefs.port == 5555


def test_file_menus_offer_import_and_export(addon) -> None:
    from blender_addon.operators import files

    import_draw = [f.__name__ for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()]
    export_draw = [f.__name__ for f in bpy.types.TOPBAR_MT_file_export._dyn_ui_initialize()]
    assert files.menu_import.__name__ in import_draw
    assert files.menu_export.__name__ in export_draw


def test_import_operator(addon, scene, sequence_dir: Path) -> None:
    result = bpy.ops.dyntet.import_sequence(directory=str(sequence_dir), frame_start=3, audio=False)
    assert result == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    assert obj is not None and len(obj.data.shape_keys.key_blocks) == 13
    assert scene.frame_start == 3
    assert scene.sequence_editor is None or len(scene.sequence_editor.strips) == 0  # audio=False


def test_import_operator_reports_a_bad_folder(addon, scene, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no manifest.json"):
        bpy.ops.dyntet.import_sequence(directory=str(tmp_path))
    assert len(bpy.data.objects) == 0


def test_export_operator(addon, scene, sequence_dir: Path, tmp_path: Path) -> None:
    bpy.ops.dyntet.import_sequence(directory=str(sequence_dir))
    target = tmp_path / "head"
    assert bpy.ops.dyntet.export(filepath=str(target), preset="UNITY_FBX") == {"FINISHED"}
    assert (tmp_path / "head.fbx").is_file()


def test_user_dir_falls_back_outside_extensions(addon, tmp_path: Path, monkeypatch) -> None:
    from blender_addon import paths

    monkeypatch.setenv(paths.ENV_OVERRIDE, str(tmp_path / "override"))
    assert paths.user_dir("previews") == tmp_path / "override" / "previews"
    monkeypatch.delenv(paths.ENV_OVERRIDE)
    # Registered as a plain package, Blender refuses the name for an extension folder ...
    with pytest.raises(ValueError, match="does not name an extension"):
        bpy.utils.extension_path_user(ADDON_MODULE, create=False)
    # ... so the config folder is used (redirected here so the test does not write into ~/.config).
    calls = []

    def user_resource(kind: str, path: str = "", create: bool = False) -> str:
        calls.append((kind, path))
        return str(tmp_path / kind / path)

    monkeypatch.setattr(bpy.utils, "user_resource", user_resource)
    assert paths.user_dir() == tmp_path / "CONFIG" / "dyntet" and calls == [("CONFIG", "dyntet")]
    assert (tmp_path / "CONFIG" / "dyntet").is_dir()


def test_built_zip_installs_as_an_extension(tmp_path: Path) -> None:
    """Build without downloading, install with Blender's extension installer in a clean user folder,
    enable it, and check its user folder is the extension's own."""
    build = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_extension.py"), "--no-wheels", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert build.returncode == 0, build.stderr
    archive = tmp_path / "dyntet-0.1.0.zip"
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        manifest = tomllib.loads(zipped.read("blender_manifest.toml").decode())
    assert "__init__.py" in names and "io/convert.py" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    assert manifest["wheels"] == ["./wheels/dyntet_protocol-0.1.0-py3-none-any.whl"]
    assert "wheels/dyntet_protocol-0.1.0-py3-none-any.whl" in names

    script = (
        "import sys, bpy, addon_utils\n"
        "bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo='user_default', enable_on_install=True)\n"
        "assert 'bl_ext.user_default.dyntet' in bpy.context.preferences.addons, 'not enabled'\n"
        "from bl_ext.user_default.dyntet import paths\n"
        "print('USERDIR', paths.user_dir())\n"
        "import dyntet_protocol\n"
        "print('PROTOCOL', dyntet_protocol.__file__)\n"
        "import dyntet_formats.sequence\n"
        "print('FORMATS', dyntet_formats.sequence.__file__)\n"
        "addon_utils.disable('bl_ext.user_default.dyntet')\n"
        "addon_utils.enable('bl_ext.user_default.dyntet')\n"
        "print('REENABLED', hasattr(bpy.types.Scene, 'dyntet'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DYNTET_BLENDER_USER_DIR"}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "blender_user")
    run = subprocess.run([sys.executable, "-c", script, str(archive)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines() if line.split(" ", 1)[0] in
                 ("USERDIR", "PROTOCOL", "FORMATS", "REENABLED"))
    assert lines["USERDIR"] == str(tmp_path / "blender_user" / "extensions" / ".user" / "user_default" / "dyntet")
    assert lines["PROTOCOL"].startswith(str(tmp_path / "blender_user" / "extensions" / ".local"))
    assert lines["FORMATS"].startswith(str(tmp_path / "blender_user" / "extensions" / ".local"))
    assert lines["REENABLED"] == "True"


def test_addon_never_imports_torch_or_the_backend() -> None:
    sources = [p for p in (REPO / "blender_addon").rglob("*.py")]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                assert "torch" not in stripped and not stripped.startswith(("import dyntet ", "from dyntet ",
                                                                            "from dyntet.", "import dyntet.")), (
                    f"{path.relative_to(REPO)}: {stripped}")
