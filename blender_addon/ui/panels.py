"""View3D ▸ Sidebar ▸ DynTet: backend status, footage, training, generation, import options, export.

Panels only read: scene settings (``Scene.dyntet``) and the session state (``runtime.STATE``). Every
``draw`` works whatever the state — disconnected, idle, busy, failed — because it never assumes a job,
a connection or a preview exists.
"""

from __future__ import annotations

import os

import bpy

from .. import runtime
from ..control.state import RESUMABLE, BackendState, JobView, Transfer
from ..blender.exporter import PRESETS
from ..preferences import ADDON_ID


class _DynTetPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DynTet"


def _format_eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def report_lines(report: dict) -> list[tuple[str, bool]]:
    """The tracking report (``report.json`` of a dataset) as ``(text, is_warning)`` lines for the panel."""
    lines: list[tuple[str, bool]] = []
    frames = report.get("frames") if isinstance(report.get("frames"), dict) else {}
    if isinstance(frames.get("kept"), int) and frames.get("decoded"):
        lines.append((f"Tracked {frames['kept']} of {frames['decoded']} frames", frames["kept"] < frames["decoded"]))
    reprojection = report.get("reprojection_px") if isinstance(report.get("reprojection_px"), dict) else {}
    smoothed = reprojection.get("smoothed") if isinstance(reprojection.get("smoothed"), dict) else {}
    if isinstance(smoothed.get("median"), (int, float)):
        lines.append((f"Landmark fit: {smoothed['median']:.2f} px median", False))
    warnings = report.get("warnings") if isinstance(report.get("warnings"), list) else []
    lines += [(str(warning), True) for warning in warnings[:4]]
    return lines


def draw_problem(layout: bpy.types.UILayout, state: BackendState) -> None:
    """The last problem with what to do about it."""
    if state.problem is None:
        return
    box = layout.box()
    box.alert = True
    box.label(text=state.problem.message, icon="ERROR")
    if state.problem.hint:
        box.label(text=state.problem.hint, icon="INFO")


def draw_job(layout: bpy.types.UILayout, job: JobView | None, *, preview: bool = False) -> None:
    """Progress, ETA, losses, errors and (optionally) the latest preview image of one job."""
    if job is None:
        return
    box = layout.box()
    title = f"{job.kind or 'job'}: {job.state}"
    if job.stage:
        title += f" · {job.stage}"
    box.label(text=title, icon="TIME" if job.active else ("CHECKMARK" if job.state == "done" else "CANCEL"))
    if job.node:
        box.label(text=f"on {job.node}", icon="NETWORK_DRIVE")
    if job.active:
        text = f"{job.step}/{job.total}" if job.total else (job.message or "working…")
        eta = _format_eta(job.eta_s)
        if eta:
            text += f" · {eta} left"
        if hasattr(box, "progress"):  # Blender 4.0+
            box.progress(factor=job.fraction, type="BAR", text=text)
        else:
            box.label(text=f"{job.fraction:.0%} · {text}")
    if job.message and job.total:
        box.label(text=job.message)
    if job.metrics:
        column = box.column(align=True)
        for name, value in sorted(job.metrics.items())[:6]:
            column.label(text=f"{name}: {value:.4g}")
    if job.state == "failed" and job.error_message:
        failure = box.column()
        failure.alert = True
        failure.label(text=job.error_message, icon="ERROR")
    if preview and job.preview_path:
        icon = runtime.preview_icon(job.preview_path)
        if icon:
            box.template_icon(icon_value=icon, scale=8.0)
        else:  # no icon system (Blender as a Python module): at least say where the picture is
            box.label(text=f"Preview: {os.path.basename(job.preview_path)}", icon="IMAGE_DATA")


def draw_transfer(layout: bpy.types.UILayout, transfer: Transfer | None, kind: str) -> None:
    """Progress of footage being sent to a remote backend for a job of ``kind``, with a Cancel button."""
    if transfer is None or transfer.kind != kind or not transfer.active:
        return
    box = layout.box()
    verb = "Reading" if transfer.stage == "hashing" else "Uploading"
    box.label(text=f"{verb} {transfer.name}", icon="EXPORT")
    text = f"{transfer.done / 2**20:.1f} / {transfer.total / 2**20:.1f} MiB"
    if hasattr(box, "progress"):  # Blender 4.0+
        box.progress(factor=transfer.fraction, type="BAR", text=text)
    else:
        box.label(text=f"{transfer.fraction:.0%} · {text}")
    box.operator("dyntet.cancel_upload", icon="CANCEL")


class DYNTET_PT_backend(_DynTetPanel, bpy.types.Panel):
    bl_label = "DynTet"
    bl_order = 0

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        state = runtime.STATE
        addon = context.preferences.addons.get(ADDON_ID)
        local = addon is None or addon.preferences is None or addon.preferences.mode == "LOCAL"

        row = layout.row(align=True)
        if state.connection == "connected":
            row.label(text=f"Connected · {state.device}", icon="LINKED")
        elif state.connection == "connecting":
            row.label(text=f"Connecting to {state.address}…", icon="SORTTIME")
        elif state.connection == "lost":
            row.alert = True
            row.label(text="Connection lost", icon="UNLINKED")
        else:
            row.label(text="Not connected", icon="UNLINKED")

        row = layout.row(align=True)
        if state.connection in ("connected", "connecting"):
            row.operator("dyntet.disconnect", icon="CANCEL")
        else:
            row.operator("dyntet.connect", text="Start Backend" if local else "Connect", icon="PLAY")
        if local:
            row.operator("dyntet.stop_backend", text="", icon="QUIT")
        if state.connected:
            row.operator("dyntet.refresh", text="", icon="FILE_REFRESH")

        if state.connected:
            column = layout.column(align=True)
            if state.backends:
                column.label(text="Backends: " + ", ".join(state.backends))
            if state.server_version:
                column.label(text=f"Server {state.server_version} · protocol {state.protocol}")
            job = state.job
            if job is not None and job.active:
                column.label(text=f"Current job: {job.kind} ({job.state})", icon="TIME")
        if local and state.local_pid:
            layout.label(text=f"Local backend pid {state.local_pid}", icon="CONSOLE")
        elif local and state.local_exit_code not in (None, 0):
            layout.label(text=f"Local backend exited ({state.local_exit_code})", icon="ERROR")
        draw_problem(layout, state)


class DYNTET_PT_footage(_DynTetPanel, bpy.types.Panel):
    bl_label = "Footage"
    bl_parent_id = "DYNTET_PT_backend"
    bl_order = 1

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.dyntet
        state = runtime.STATE
        layout.prop(settings, "footage")
        layout.prop(settings, "name")
        if state.listing.datasets:
            layout.label(text=f"Datasets: {', '.join(state.listing.datasets[:4])}", icon="FILE_MOVIE")
        layout.operator("dyntet.preprocess", icon="VIEW_CAMERA")
        draw_transfer(layout, state.transfer, "preprocess")
        job = state.job_of_kind("preprocess")
        draw_job(layout, job, preview=True)
        if job is not None and job.state == "done":
            report = job.result.get("report")
            column = layout.column(align=True)
            for text, warning in report_lines(report if isinstance(report, dict) else {}):
                row = column.row()
                row.alert = warning
                row.label(text=text, icon="ERROR" if warning else "CHECKMARK")


class DYNTET_PT_train(_DynTetPanel, bpy.types.Panel):
    bl_label = "Train"
    bl_parent_id = "DYNTET_PT_backend"
    bl_order = 2

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.dyntet
        state = runtime.STATE
        column = layout.column()
        column.prop(settings, "preset")
        column.prop(settings, "iterations")
        column.prop(settings, "minutes")
        column.prop(settings, "device")
        job = state.job_of_kind("train")
        row = layout.row(align=True)
        row.operator("dyntet.train", icon="PLAY")
        if job is not None and job.active:
            cancel = row.operator("dyntet.cancel", icon="CANCEL")
            cancel.job_id = job.job_id
        elif job is not None and job.state in RESUMABLE:
            resume = row.operator("dyntet.resume", icon="RECOVER_LAST")
            resume.job_id = job.job_id
        draw_job(layout, job, preview=True)


class DYNTET_PT_generate(_DynTetPanel, bpy.types.Panel):
    bl_label = "Generate"
    bl_parent_id = "DYNTET_PT_backend"
    bl_order = 3

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.dyntet
        state = runtime.STATE
        layout.prop(settings, "drive")
        if settings.drive == "video":
            layout.prop(settings, "drive_video")
        elif settings.drive == "audio":
            layout.prop(settings, "drive_audio")
        row = layout.row(align=True)
        row.prop(settings, "first_frame")
        row.prop(settings, "last_frame")
        layout.operator("dyntet.generate", icon="IMPORT")
        draw_transfer(layout, state.transfer, "generate")
        job = state.job_of_kind("generate")
        draw_job(layout, job)
        if job is not None:
            name = runtime.imported_object(job.job_id)
            if name:
                layout.label(text=f"Imported as {name}", icon="OUTLINER_OB_MESH")
        if state.connected and state.listing.sequences:
            column = layout.column(heading="On the Backend", align=True)
            for sequence in state.listing.sequences[:8]:
                button = column.operator("dyntet.import_backend_sequence", text=sequence, icon="IMPORT")
                button.name = sequence


class DYNTET_PT_import(_DynTetPanel, bpy.types.Panel):
    bl_label = "Import Options"
    bl_parent_id = "DYNTET_PT_backend"
    bl_order = 5
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        options = context.scene.dyntet.import_settings
        layout.prop(options, "rig")
        layout.prop(options, "frame_start")
        column = layout.column(heading="Bring In")
        column.prop(options, "head_motion")
        column.prop(options, "textures")
        column.prop(options, "world")
        column.prop(options, "audio")
        column.prop(options, "scene_timing")
        column.prop(options, "camera")
        column.prop(options, "pack_textures")
        column.prop(options, "replace")
        layout.operator("dyntet.import_sequence", text="Import Sequence Folder…", icon="FILEBROWSER")


class DYNTET_PT_rig(_DynTetPanel, bpy.types.Panel):
    bl_label = "Rig"
    bl_parent_id = "DYNTET_PT_backend"
    bl_order = 4

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        obj = context.active_object
        if obj is None or "dyntet_controls" not in obj:
            layout.label(text="Select a head imported with Named Controls", icon="INFO")
            return
        scene = context.scene
        first, last = ((scene.frame_preview_start, scene.frame_preview_end) if scene.use_preview_range
                       else (scene.frame_start, scene.frame_end))
        layout.label(text=f"{obj.name}: {len(obj['dyntet_controls'])} controls", icon="SHAPEKEY_DATA")
        row = layout.row(align=True)
        row.operator("dyntet.import_curves", text="Import CSV…", icon="IMPORT")
        row.operator("dyntet.export_curves", text="Export CSV…", icon="EXPORT")
        layout.operator("dyntet.bake_exact", text=f"Bake Exact (frames {first}–{last})", icon="RENDER_ANIMATION")
        job = runtime.STATE.job_of_kind("bake")
        draw_job(layout, job)


class DYNTET_PT_export(_DynTetPanel, bpy.types.Panel):
    bl_label = "Export"
    bl_parent_id = "DYNTET_PT_backend"
    bl_order = 6

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.dyntet
        layout.prop(settings, "export_preset")
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            layout.label(text="Select the imported head", icon="INFO")
        elif obj.data.shape_keys is not None:
            layout.label(text=f"{obj.name}: {len(obj.data.shape_keys.key_blocks) - 1} shape keys", icon="SHAPEKEY_DATA")
        limits = PRESETS[settings.export_preset].limits
        if limits:
            column = layout.column(align=True)
            for index, line in enumerate(_wrap(limits, 48)):
                column.label(text=line, icon="INFO" if index == 0 else "BLANK1")
        export = layout.operator("dyntet.export", icon="EXPORT")
        export.preset = settings.export_preset


def _wrap(text: str, width: int) -> list[str]:
    """Split a sentence into panel-width lines (labels do not wrap)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


class DYNTET_PT_log(_DynTetPanel, bpy.types.Panel):
    bl_label = "Log"
    bl_parent_id = "DYNTET_PT_backend"
    bl_order = 7
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        state = runtime.STATE
        column = self.layout.column(align=True)
        if not state.log:
            column.label(text="Nothing yet")
        for line in state.log[-12:]:
            column.label(text=line)
        if state.local_log:
            column.label(text=f"Backend log: {state.local_log}", icon="TEXT")


CLASSES = (
    DYNTET_PT_backend,
    DYNTET_PT_footage,
    DYNTET_PT_train,
    DYNTET_PT_generate,
    DYNTET_PT_rig,
    DYNTET_PT_import,
    DYNTET_PT_export,
    DYNTET_PT_log,
)
