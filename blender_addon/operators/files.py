"""File ▸ Import ▸ DynTet Sequence, and export with engine presets. Both work without a backend."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from ..blender.exporter import PRESETS, export_head
from ..blender.importer import import_sequence
from dyntet_formats.curves import Curves, CurvesFormatError, read_curves, write_curves
from dyntet_formats.sequence import SequenceFormatError
from ..properties import ImportOptionProps


def sequence_folder(path: str) -> Path:
    """The folder the user meant: the folder itself, or the folder of a file picked inside it."""
    folder = Path(bpy.path.abspath(path))
    return folder.parent if folder.is_file() else folder


class DYNTET_OT_import_sequence(ImportOptionProps, bpy.types.Operator):
    """Import a DynTet sequence folder as an animated head: shape keys, head motion, material, light, audio"""

    bl_idname = "dyntet.import_sequence"
    bl_label = "Import DynTet Sequence"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    directory: StringProperty(name="Sequence Folder", subtype="DIR_PATH")
    filter_folder: BoolProperty(default=True, options={"HIDDEN"})
    filter_glob: StringProperty(default="manifest.json", options={"HIDDEN"})

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self.directory:
            self.report({"ERROR"}, "Choose the sequence folder (the one holding manifest.json)")
            return {"CANCELLED"}
        try:
            result = import_sequence(
                context.scene, sequence_folder(self.directory), self.to_options(), collection=context.collection
            )
        except (SequenceFormatError, ValueError, RuntimeError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        make_active(context, result.object)
        self.report(
            {"INFO"},
            f"Imported {result.object.name}: {result.num_frames} frames, {result.num_shape_keys} shape keys "
            f"in {result.seconds:.2f} s",
        )
        return {"FINISHED"}


class DYNTET_OT_export(bpy.types.Operator):
    """Export the active head with an engine preset (keeps shape keys / morph targets and their animation)"""

    bl_idname = "dyntet.export"
    bl_label = "Export DynTet Head"
    bl_options = {"REGISTER"}

    filepath: StringProperty(name="File", subtype="FILE_PATH")
    preset: EnumProperty(
        name="Preset",
        items=tuple((key, preset.label, preset.description) for key, preset in PRESETS.items()),
        default="WEB_GLB",
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            cls.poll_message_set("Select the imported head (a mesh object)")
            return False
        return True

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if not self.filepath:
            stem = bpy.path.clean_name(context.active_object.name)
            self.filepath = str(Path(bpy.path.abspath("//")) / stem) if bpy.data.filepath else stem
        self.check(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def check(self, context: bpy.types.Context) -> bool:
        """Keep the file extension in step with the chosen preset (called by the file browser)."""
        wanted = PRESETS[self.preset].extension
        path = Path(self.filepath) if self.filepath else None
        if path is None or path.suffix.lower() == wanted:
            return False
        stem = path.with_suffix("") if path.suffix.lower() in (".fbx", ".glb", ".gltf") else path
        self.filepath = str(stem) + wanted
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self.filepath:
            self.report({"ERROR"}, "Choose where to write the file")
            return {"CANCELLED"}
        try:
            result = export_head(context, context.active_object, bpy.path.abspath(self.filepath), self.preset)
        except (ValueError, RuntimeError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        text = f"Wrote {result.path} ({result.path.stat().st_size / 1e6:.1f} MB)"
        if result.extra_files:
            text += " and " + ", ".join(p.name for p in result.extra_files)
        self.report({"INFO"}, text)
        if result.notes:
            self.report({"WARNING"}, result.notes)
        return {"FINISHED"}


class DYNTET_OT_import_glb(bpy.types.Operator):
    """Import a glTF binary exported from DynTet on its own frame rate (extras.dyntet_fps), so frames line up"""

    bl_idname = "dyntet.import_glb"
    bl_label = "Import DynTet glTF"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="File", subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.glb", options={"HIDDEN"})
    match_fps: BoolProperty(
        name="Match Frame Rate", default=True,
        description="Set the scene's frame rate and range to the file's (DynTet exports record it), so frame n "
        "of the scene is frame n of the performance",
    )

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..blender.gltf_import import import_glb

        try:
            result = import_glb(context, bpy.path.abspath(self.filepath), self.match_fps)
        except (ValueError, RuntimeError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        rate = f"{result.fps:g} fps from the file" if result.fps else "no frame rate in the file: scene's rate used"
        self.report({"INFO"}, f"Imported {len(result.objects)} objects ({rate})")
        return {"FINISHED"}


def rig_head(context: bpy.types.Context) -> bpy.types.Object | None:
    """The active object when it is a head imported with Named Controls."""
    obj = context.active_object
    ok = obj is not None and obj.type == "MESH" and "dyntet_controls" in obj and obj.data.shape_keys is not None
    return obj if ok else None


def _poll_rig_head(cls: type, context: bpy.types.Context) -> bool:
    if rig_head(context) is None:
        cls.poll_message_set("Select a head imported with Named Controls")
        return False
    return True


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base


class _CurvesFile:
    """A CSV of control curves picked in the file browser, for the active Named Controls head."""

    filepath: StringProperty(name="File", subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.csv", options={"HIDDEN"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _poll_rig_head(cls, context)


class DYNTET_OT_import_curves(_CurvesFile, bpy.types.Operator):
    """Replace the head's control curves by those of a CSV (Live Link Face layout or our own export): ARKit
    names match the controls, other columns are ignored; rows start on the head's first frame"""

    bl_idname = "dyntet.import_curves"
    bl_label = "Import Curves (CSV)"
    bl_options = {"REGISTER", "UNDO"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        import warnings

        from ..blender.control_rig import set_control_curves

        obj = rig_head(context)
        names = list(obj["dyntet_controls"])
        try:
            curves = read_curves(Path(bpy.path.abspath(self.filepath)), scene_fps(context.scene))
        except (CurvesFormatError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        in_file = {n.lower() for n in curves.names}
        present = [n for n in names if n.lower() in in_file]  # controls absent from the file keep their curves
        if not present:
            self.report({"ERROR"}, f"{Path(self.filepath).name} has no column named after a control of "
                                   f"{obj.name} ({', '.join(names[:6])}, …)")
            return {"CANCELLED"}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = curves.select(tuple(present))
        set_control_curves(obj, present, values, int(obj["dyntet_frame_start"]))
        for warning in caught:
            self.report({"WARNING"}, str(warning.message))
        self.report({"INFO"}, f"{len(present)} control curves × {len(values)} frames on {obj.name}")
        return {"FINISHED"}


class DYNTET_OT_export_curves(_CurvesFile, bpy.types.Operator):
    """Write the head's control curves over its imported frames as a CSV (Live Link Face layout), as
    Blender evaluates them: `dyntet generate RUN --drive FILE.csv` turns it into true DynTet meshes"""

    bl_idname = "dyntet.export_curves"
    bl_label = "Export Curves (CSV)"

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if not self.filepath:
            self.filepath = bpy.path.clean_name(context.active_object.name) + "_curves.csv"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..blender.control_rig import evaluated_controls, imported_frames

        obj = rig_head(context)
        first, last = imported_frames(obj)
        values = evaluated_controls(context.scene, obj, first, last - first + 1)
        path = Path(bpy.path.abspath(self.filepath))
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        try:
            write_curves(path, Curves(tuple(obj["dyntet_controls"]), values, scene_fps(context.scene)))
        except OSError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Wrote {path} ({len(values)} frames × {values.shape[1]} controls)")
        return {"FINISHED"}


def make_active(context: bpy.types.Context, obj: bpy.types.Object) -> None:
    """Select ``obj`` alone and make it active (so Export and the Properties editor pick it up)."""
    view_layer = context.view_layer
    if view_layer is None:
        return
    for other in context.selected_objects:
        other.select_set(False)
    try:
        obj.select_set(True, view_layer=view_layer)
    except RuntimeError:  # linked to a collection outside this view layer
        return
    view_layer.objects.active = obj


def menu_import(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    self.layout.operator(DYNTET_OT_import_sequence.bl_idname, text="DynTet Sequence (folder)")
    self.layout.operator(DYNTET_OT_import_glb.bl_idname, text="DynTet glTF (.glb, on its frame rate)")


def menu_export(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    self.layout.operator(DYNTET_OT_export.bl_idname, text="DynTet Head (FBX / glTF preset)")


CLASSES = (DYNTET_OT_import_sequence, DYNTET_OT_import_glb, DYNTET_OT_export, DYNTET_OT_import_curves,
           DYNTET_OT_export_curves)
