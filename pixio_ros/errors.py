"""The package's root exception; each subpackage derives its own from it."""

from __future__ import annotations


class PixioRosError(Exception):
    """A problem the user can fix; its message names the value, the expectation and the fix.

    The CLI prints these as one line and exits non-zero instead of showing a traceback.
    """
