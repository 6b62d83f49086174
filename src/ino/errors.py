"""The one exception type that the CLI turns into a single clear message instead of a traceback.

Library code raises :class:`InoError` for bad user input (missing files, wrong sizes, unknown names), always
naming the file or sequence and the problem; anything else escaping to the CLI is a bug and keeps its traceback.
"""


class InoError(Exception):
    """Bad input or configuration, described in words a user can act on."""
