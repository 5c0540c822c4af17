"""The one exception type the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class SimsearchError(Exception):
    """A problem with the user's input or environment, with the fix in the message.

    The CLI prints ``str(error)`` on one line to stderr and exits with code 2
    (no traceback). Library callers can catch it like any exception.
    """

    exit_code = 2
