"""Ctrl-C between steps: ``InterruptFlag`` turns SIGINT into a flag that a loop checks between steps, so an
interrupt never lands in the middle of an update."""

from __future__ import annotations

import signal
import threading

__all__ = ["InterruptFlag"]


class InterruptFlag:
    """While entered (in the main thread), SIGINT sets ``raised`` instead of raising KeyboardInterrupt; the
    previous handler is put back on exit. In another thread it never catches anything."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
