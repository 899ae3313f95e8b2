"""Stopping every rank when one fails: the watchdog thread and the exception hook.

Used by :mod:`nnx.distributed.mpi`; ``dp`` is its DataParallel (``rank``, ``size``,
``timeout`` and ``abort(message, code)``).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

__all__ = ["Watchdog", "install_excepthook"]


class Watchdog:
    """A daemon thread that aborts the job when this rank waits too long in one collective."""

    def __init__(self, dp: Any) -> None:
        self.dp = dp
        self.since: float | None = None
        self.what = ""
        self._thread: threading.Thread | None = None

    def arm(self, what: str) -> None:
        self.what = what
        self.since = time.monotonic()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="nnx-watchdog", daemon=True)
            self._thread.start()

    def disarm(self) -> None:
        self.since = None

    def _run(self) -> None:
        poll = min(1.0, self.dp.timeout / 10)
        while True:
            time.sleep(poll)
            since = self.since
            if since is not None and time.monotonic() - since > self.dp.timeout:
                dp = self.dp
                dp.abort(f"rank {dp.rank} of {dp.size} waited more than {dp.timeout:g} s in "
                         f"{self.what} for the other ranks: a rank has died, hung, or left the "
                         "training loop early (raise NNX_DISTRIBUTED_TIMEOUT if a rank is "
                         "merely slow)", code=2)


_hook_installed = False


def install_excepthook(dp: Any) -> None:
    """Uncaught exceptions on any rank abort the whole job instead of hanging the others."""
    global _hook_installed
    if _hook_installed:
        return
    previous = sys.excepthook

    def hook(exc_type: Any, exc: BaseException, tb: Any) -> None:
        dp.abort(f"rank {dp.rank} of {dp.size} failed with an uncaught "
                 f"{exc_type.__name__}: {exc}", then=lambda: previous(exc_type, exc, tb))

    sys.excepthook = hook
    _hook_installed = True
