"""The exceptions of simsearch: every problem with the user's input or environment is a
:class:`SimsearchError` whose message says what is wrong and how to fix it.

The library speaks in its own words: a bad argument raises :class:`InvalidParameter`,
which carries the name of the parameter (``k``, ``doc``, ``batch_size``, ...). Only the
command line turns that name into a flag (``--k``), in one place
(:func:`simsearch.cli.run.flag_for`).
"""

from __future__ import annotations

from os import PathLike

#: How every "damaged index" message ends: the command that repairs it.
REBUILD = "rebuild it with 'simsearch index FILE --column COL --rebuild'"


class SimsearchError(Exception):
    """A problem with the user's input or environment, with the fix in the message.

    The CLI prints ``str(error)`` on one line to stderr and exits with code 2
    (no traceback). Library callers can catch it like any exception.
    """

    exit_code = 2

    def render(self, flag_for: object = None) -> str:
        """The message; subclasses naming a parameter spell it with ``flag_for(param)``."""
        return str(self)


class InvalidParameter(SimsearchError):
    """An argument out of range or of an unknown value.

    Attributes:
        param: the library's parameter name (``"k"``, ``"whiten_dim"``, ...).
        template: the message with ``{name}`` where the parameter is named (a plain
            replacement, so other braces are safe); ``str(error)``
            names it as the library does (``k``), the CLI as its flag (``--k``).
    """

    def __init__(self, param: str, template: str) -> None:
        self.param = param
        self.template = template
        super().__init__(template.replace("{name}", param))

    def render(self, flag_for: object = None) -> str:
        """The message with the parameter spelled by ``flag_for(param)`` when given."""
        name = flag_for(self.param) if callable(flag_for) else self.param
        return self.template.replace("{name}", str(name))


class ParamNote(str):
    """A notice (not an error) that names a parameter, e.g. ``k`` clamped to the corpus
    size: ``str(note)`` is the library's wording, :meth:`render` the CLI's."""

    param: str
    template: str

    def __new__(cls, param: str, template: str) -> ParamNote:
        note = super().__new__(cls, template.replace("{name}", param))
        note.param, note.template = param, template
        return note

    render = InvalidParameter.render


class DamagedIndex(SimsearchError):
    """The index on disk cannot be used as is (missing or inconsistent files or
    metadata, or an older format); the fix is always to rebuild it."""

    @classmethod
    def at(cls, path: str | PathLike[str], why: str) -> DamagedIndex:
        """The error for the index at ``path`` that must not be used because of ``why``
        (e.g. ``"meta.json is missing"``); the message ends with :data:`REBUILD`."""
        return cls(f"the index at {path} is damaged ({why}); {REBUILD}")


#: The constructor under its older name (``damaged(path, why)``).
damaged = DamagedIndex.at
