"""The one base class for "this file of ours is malformed"."""

from __future__ import annotations


class FormatError(ValueError):
    """A folder or file in one of our formats is missing, cut short or malformed.

    The message names the file and says what to do; the command line prints it without a traceback.
    """
