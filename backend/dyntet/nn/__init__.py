"""Network building blocks: positional encodings and MLPs."""
