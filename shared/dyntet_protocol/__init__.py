"""Wire protocol between the Blender add-on and the DynTet backend.

Imports only numpy, msgpack and pyzmq: never torch, never bpy.
"""

PROTOCOL_VERSION = 1
"""Bumped on any incompatible change of the message schema (independent of the package version)."""

__version__ = "0.1.0"
