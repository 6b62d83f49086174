"""Stop requests: SIGTERM (what a cluster scheduler sends before pre-emption) and SIGINT (Ctrl-C) end a long job
between two units of work, after it has saved, instead of in the middle of one.

While a :class:`StopRequests` block runs, the first SIGTERM or SIGINT only sets a flag, which the job polls at
points where stopping is safe; a second SIGINT aborts at once (the default behaviour, for an impatient user).
Under ``torchrun`` every rank must stop at the same step, so the flag is combined over ranks when polled.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

from ino.utils.distributed import max_over_ranks

#: exit status of a job stopped by each signal: 128 + the signal's number, as a shell reports it
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


class StopRequests:
    """Catch SIGTERM and SIGINT for the block (main thread only; elsewhere signals keep their handlers)."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, object] = {}

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(number)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C aborts

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for number in EXIT_CODES:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]

    def requested(self) -> signal.Signals | None:
        """The signal that asked this job (or, under torch.distributed, any rank) to stop; None to go on."""
        code = max_over_ranks(int(self.received or 0))
        return signal.Signals(code) if code else None
