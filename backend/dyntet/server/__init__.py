"""The ZeroMQ job server that Blender talks to."""
