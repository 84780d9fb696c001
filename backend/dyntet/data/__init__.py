"""Dataset folders (read/write), video I/O and the synthetic subject."""
