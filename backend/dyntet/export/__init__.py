"""Sequence folders to interchange formats (glTF binary, OBJ)."""
