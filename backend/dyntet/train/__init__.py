"""Training loop, presets, checkpoints and run folders."""
