"""Backend control without ``bpy``: panel state, commands, the network worker, the local process."""
