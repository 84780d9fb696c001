"""Operators that drive the backend. Each only queues a command for the worker thread and returns at
once, so none can block the UI; the panel follows progress through ``runtime.STATE``."""

from __future__ import annotations

import os
from pathlib import Path

import bpy
from bpy.props import StringProperty

from .. import runtime
from ..control.commands import (
    BakeExact, Cancel, Connect, Disconnect, FetchSequence, Refresh, Resume, StopLocal, Submit, bake_window,
    generate_request,
)
from ..preferences import backend_settings
from .files import rig_head


def _file_here(path: str, *, local: bool) -> Path | None:
    """``path`` (Blender's ``//`` allowed) as a file on this machine, or None when there is no such file.
    With a remote backend only an absolute path counts: ``footage/clip.mp4`` names a file over there."""
    here = Path(bpy.path.abspath(path))
    if not local and not os.path.isabs(here):
        return None
    return here if here.is_file() else None


def _connected(cls: type, context: bpy.types.Context) -> bool:
    if not runtime.STATE.connected:
        cls.poll_message_set("Connect to a backend first")
        return False
    return True


def _idle(cls: type, context: bpy.types.Context, kind: str) -> bool:
    """Connected, no job running, and this backend can run jobs of ``kind``."""
    if not _connected(cls, context):
        return False
    if runtime.STATE.busy:
        cls.poll_message_set("The backend is busy with another job")
        return False
    if kind not in runtime.STATE.job_kinds:
        cls.poll_message_set(f"This backend cannot run '{kind}' jobs (see its log for what is missing)")
        return False
    return True


class DYNTET_OT_connect(bpy.types.Operator):
    """Connect to the backend; in Local mode, start one when none is running (or reuse a running one)"""

    bl_idname = "dyntet.connect"
    bl_label = "Connect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            settings = backend_settings(context)
        except ValueError as exc:
            self.report({"ERROR"}, f"{exc} (Edit ▸ Preferences ▸ Add-ons ▸ DynTet)")
            return {"CANCELLED"}
        runtime.remember_settings(settings)
        runtime.send(Connect(settings, start_local=True))
        return {"FINISHED"}


class DYNTET_OT_disconnect(bpy.types.Operator):
    """Disconnect from the backend (it keeps running, with its jobs)"""

    bl_idname = "dyntet.disconnect"
    bl_label = "Disconnect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        runtime.send(Disconnect())
        return {"FINISHED"}


class DYNTET_OT_stop_backend(bpy.types.Operator):
    """Stop the local backend process (running jobs are marked interrupted and can be resumed)"""

    bl_idname = "dyntet.stop_backend"
    bl_label = "Stop Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            settings = backend_settings(context)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        runtime.send(StopLocal(settings))
        return {"FINISHED"}


class DYNTET_OT_refresh(bpy.types.Operator):
    """List the backend's datasets, runs and sequences again"""

    bl_idname = "dyntet.refresh"
    bl_label = "Refresh"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _connected(cls, context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        runtime.send(Refresh())
        return {"FINISHED"}


class DYNTET_OT_preprocess(bpy.types.Operator):
    """Track the face in the video and build a dataset (runs on the backend)"""

    bl_idname = "dyntet.preprocess"
    bl_label = "Preprocess"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _idle(cls, context, "preprocess")

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.dyntet
        name = bpy.path.clean_name(settings.name)
        if not settings.footage:
            self.report({"ERROR"}, "Pick the video first")
            return {"CANCELLED"}
        params = {"out": f"datasets/{name}", "options": {}}
        stage: dict[str, str] = {}
        local = backend_settings(context).mode == "LOCAL"
        video = _file_here(settings.footage, local=local)
        if video is not None:  # copied (local backend) or uploaded (remote) into the workspace by the worker
            stage["video"] = str(video)
            params["video"] = ""
        elif local:
            self.report({"ERROR"}, f"The video {bpy.path.abspath(settings.footage)} does not exist")
            return {"CANCELLED"}
        else:  # not a file here: a path inside the remote backend's workspace
            params["video"] = settings.footage.replace("\\", "/").lstrip("/")
        runtime.send(Submit("preprocess", params, label=f"Preprocess {name}", stage_files=stage))
        return {"FINISHED"}


class DYNTET_OT_train(bpy.types.Operator):
    """Train the avatar on the dataset (runs on the backend; progress and previews appear below)"""

    bl_idname = "dyntet.train"
    bl_label = "Start Training"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _idle(cls, context, "train")

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.dyntet
        name = bpy.path.clean_name(settings.name)
        overrides = {"iterations": settings.iterations} if settings.iterations else {}
        if settings.minutes > 0:
            overrides["minutes"] = settings.minutes
        params = {
            "dataset": f"datasets/{name}",
            "run": f"runs/{name}",
            "preset": settings.preset,
            "overrides": overrides,
            "device": settings.device,
        }
        runtime.send(Submit("train", params, label=f"Train {name}"))
        return {"FINISHED"}


class DYNTET_OT_cancel(bpy.types.Operator):
    """Cancel the job (training keeps its last checkpoint and can be resumed)"""

    bl_idname = "dyntet.cancel"
    bl_label = "Cancel"

    job_id: StringProperty(name="Job", options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        job_id = self.job_id or runtime.STATE.current_job
        if not job_id:
            self.report({"WARNING"}, "No job to cancel")
            return {"CANCELLED"}
        runtime.send(Cancel(job_id))
        return {"FINISHED"}


class DYNTET_OT_resume(bpy.types.Operator):
    """Resume a cancelled, failed or interrupted job from its last checkpoint"""

    bl_idname = "dyntet.resume"
    bl_label = "Resume"

    job_id: StringProperty(name="Job", options={"HIDDEN", "SKIP_SAVE"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not _connected(cls, context):
            return False
        if runtime.STATE.busy:
            cls.poll_message_set("The backend is busy with another job")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        job_id = self.job_id or runtime.STATE.current_job
        if not job_id:
            self.report({"WARNING"}, "No job to resume")
            return {"CANCELLED"}
        runtime.send(Resume(job_id))
        return {"FINISHED"}


class DYNTET_OT_generate(bpy.types.Operator):
    """Drive the trained avatar and import the result into this scene when it is ready"""

    bl_idname = "dyntet.generate"
    bl_label = "Generate & Import"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _idle(cls, context, "generate")

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.dyntet
        name = bpy.path.clean_name(settings.name)
        local = backend_settings(context).mode == "LOCAL"
        picked = {"video": settings.drive_video, "audio": settings.drive_audio}.get(settings.drive, "")
        on_this_machine = local
        if picked:
            here = _file_here(picked, local=local)
            if here is not None:  # a file on this machine: copied or uploaded by the worker
                picked, on_this_machine = str(here), True
            elif local:
                what = "driver video" if settings.drive == "video" else "voice recording"
                self.report({"ERROR"}, f"The {what} {bpy.path.abspath(picked)} does not exist")
                return {"CANCELLED"}
        file_key = "audio" if settings.drive == "audio" else "video"
        try:
            command = generate_request(name, settings.drive, first_frame=settings.first_frame,
                                       last_frame=settings.last_frame, local=on_this_machine, **{file_key: picked})
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        runtime.request_import(command.then_import, context.scene, command)
        return {"FINISHED"}


class DYNTET_OT_cancel_upload(bpy.types.Operator):
    """Stop sending the video to the backend (what was sent is kept: the next try continues from there)"""

    bl_idname = "dyntet.cancel_upload"
    bl_label = "Cancel Upload"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        transfer = runtime.STATE.transfer
        return transfer is not None and transfer.active

    def execute(self, context: bpy.types.Context) -> set[str]:
        runtime.cancel_transfer()
        return {"FINISHED"}


class DYNTET_OT_import_backend_sequence(bpy.types.Operator):
    """Import a sequence that already exists on the backend (downloaded first when the backend is remote)"""

    bl_idname = "dyntet.import_backend_sequence"
    bl_label = "Import From Backend"

    name: StringProperty(name="Sequence", description="Folder name under sequences/ in the backend's workspace")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _connected(cls, context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        name = self.name.strip()
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            self.report({"ERROR"}, f"{self.name!r} is not a sequence name")
            return {"CANCELLED"}
        relative = f"sequences/{name}"
        runtime.request_import(relative, context.scene, FetchSequence(relative))
        return {"FINISHED"}


def bake_frames(scene: bpy.types.Scene) -> tuple[int, int]:
    """The frames Bake exact replaces: the preview range when it is on, else the scene's range."""
    if scene.use_preview_range:
        return scene.frame_preview_start, scene.frame_preview_end
    return scene.frame_start, scene.frame_end


class DYNTET_OT_bake_exact(bpy.types.Operator):
    """Send the edited control curves of the frame range to the backend; its true DynTet meshes replace
    the corrective layer of those frames, so the head shows them exactly"""

    bl_idname = "dyntet.bake_exact"
    bl_label = "Bake Exact"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if rig_head(context) is None:
            cls.poll_message_set("Select a head imported with Named Controls")
            return False
        return _idle(cls, context, "bake")

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..blender.control_rig import evaluated_controls, imported_frames

        obj, scene = rig_head(context), context.scene
        if not obj.get("dyntet_run"):
            self.report({"ERROR"}, f"{obj.name} does not say which run made it; generate it again after `dyntet rig`")
            return {"CANCELLED"}
        try:
            sent_first, count, start, stop = bake_window(imported_frames(obj), bake_frames(scene))
            controls = evaluated_controls(scene, obj, sent_first, count)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        runtime.send(BakeExact(run=str(obj["dyntet_run"]), names=tuple(obj["dyntet_controls"]), controls=controls,
                               start=start, stop=stop, out=f"bakes/{bpy.path.clean_name(obj.name)}",
                               object_name=obj.name, frame_first=sent_first + start))
        return {"FINISHED"}


CLASSES = (
    DYNTET_OT_connect,
    DYNTET_OT_disconnect,
    DYNTET_OT_stop_backend,
    DYNTET_OT_refresh,
    DYNTET_OT_preprocess,
    DYNTET_OT_train,
    DYNTET_OT_cancel,
    DYNTET_OT_resume,
    DYNTET_OT_generate,
    DYNTET_OT_cancel_upload,
    DYNTET_OT_import_backend_sequence,
    DYNTET_OT_bake_exact,
)
