"""The one exception type for bad user input, which the CLI turns into a single line instead of a traceback.

Library code raises :class:`InoError` for what a user can fix (a missing file, a wrong size, an unknown name, a
bad setting), always naming the file, sequence or setting and the problem. A broken internal invariant (a
programming error, e.g. tensors of the wrong shape passed between our own functions) raises ``ValueError`` or
``RuntimeError`` instead and keeps its traceback.
"""


class InoError(Exception):
    """Bad input or configuration, described in words a user can act on."""


class Interrupted(Exception):
    """A run stopped on request (SIGTERM, SIGINT) after saving its state; the CLI exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
