"""Control curves as CSV (Live Link Face layout): the shared reader and writer, :mod:`dyntet_formats.curves`."""

from dyntet_formats.curves import TIME_COLUMNS, Curves, CurvesFormatError, read_curves, write_curves

__all__ = ["TIME_COLUMNS", "Curves", "CurvesFormatError", "read_curves", "write_curves"]
