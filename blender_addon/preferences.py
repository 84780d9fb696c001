"""Add-on preferences: where the backend is (local process or remote address) and how to reach it."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from .control.commands import BackendSettings
from .paths import user_dir

ADDON_ID = __package__
"""The add-on's module name: ``bl_ext.<repository>.dyntet`` when installed as an extension."""


class DynTetPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    mode: EnumProperty(
        name="Backend",
        description="Where training and generation run",
        items=(
            ("LOCAL", "Local", "Start a backend process on this computer"),
            ("REMOTE", "Remote", "Connect to a backend running elsewhere (e.g. a GPU machine)"),
        ),
        default="LOCAL",
    )
    python: StringProperty(
        name="Backend Python",
        description="The Python interpreter that has the dyntet package installed; empty uses the "
        "'dyntet' command on PATH",
        subtype="FILE_PATH",
        default="",
    )
    workspace: StringProperty(
        name="Workspace",
        description="Folder where the local backend keeps footage, datasets, runs and sequences; empty "
        "uses the add-on's user folder",
        subtype="DIR_PATH",
        default="",
    )
    port: IntProperty(
        name="Port",
        description="Local request port (events use the next port)",
        default=5555,
        min=1024,
        max=65534,
    )
    stop_on_quit: BoolProperty(
        name="Stop When Blender Quits",
        description="Stop the local backend this Blender started when Blender quits",
        default=True,
    )
    remote_address: StringProperty(
        name="Address",
        description="Request endpoint of the remote backend, e.g. tcp://gpu-box:5555",
        default="tcp://127.0.0.1:5555",
    )
    server_key_file: StringProperty(
        name="Server Public Key",
        description="The server's public CurveZMQ certificate (server.key) from 'dyntet keys'",
        subtype="FILE_PATH",
        default="",
    )
    client_key_file: StringProperty(
        name="Client Secret Key",
        description="This client's secret certificate (NAME.key_secret) from 'dyntet keys add-client'",
        subtype="FILE_PATH",
        default="",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "mode", expand=True)
        if self.mode == "LOCAL":
            layout.prop(self, "python")
            layout.prop(self, "workspace")
            layout.prop(self, "port")
            layout.prop(self, "stop_on_quit")
        else:
            layout.prop(self, "remote_address")
            layout.prop(self, "server_key_file")
            layout.prop(self, "client_key_file")
            layout.label(text="Non-loopback addresses need both key files (CurveZMQ)", icon="LOCKED")


def backend_settings(context: bpy.types.Context) -> BackendSettings:
    """The preferences as plain, absolute :class:`BackendSettings` for the worker thread.

    When the add-on was registered directly (``register()`` without Blender's add-on manager, as in
    module-mode tests) there are no stored preferences and the defaults apply.

    Raises:
        ValueError: a preference is out of range (the message names it).
    """
    addon = context.preferences.addons.get(ADDON_ID)
    prefs = addon.preferences if addon is not None else None
    if prefs is None:
        return BackendSettings(workspace=str(user_dir("workspace")), state_dir=str(user_dir()))

    def absolute(path: str) -> str:
        return bpy.path.abspath(path) if path else ""

    return BackendSettings(
        mode=prefs.mode,
        python=absolute(prefs.python),
        workspace=absolute(prefs.workspace) or str(user_dir("workspace")),
        state_dir=str(user_dir()),
        port=prefs.port,
        remote_address=prefs.remote_address.strip(),
        server_key_file=absolute(prefs.server_key_file),
        client_key_file=absolute(prefs.client_key_file),
        stop_on_quit=prefs.stop_on_quit,
    )
