"""Stops by signal that never look like success.

Schedulers stop a job with SIGTERM (SLURM on preemption or at the time limit, then SIGKILL after
its grace period), a terminal with SIGINT or SIGHUP. Lightning turns SIGTERM into a ``SystemExit``
without a code (exit status 0) and only notices it between batches, so a sweep, a pipeline or
submitit would count a stopped run as done, and a long recording would ignore the signal for
minutes. Inside :func:`stop_on_signals` such a signal raises :class:`StopRequested` in the main
thread at the next Python instruction: the run's record is written ``failed`` with the signal
named, temporary files are cleaned up by the code they interrupt, and the process exits with
``128 + signal number`` as a shell reports a process killed by that signal (143 for SIGTERM).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class StopRequested(SystemExit):
    """The process was asked to stop by ``signum``; exits with ``128 + signum``.

    A ``SystemExit`` so that nothing catching ``Exception`` swallows it, and so that Python
    exits with its code when nothing else handles it.
    """

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.signal_name = signal.Signals(self.signum).name
        self.announced = False  # said on stderr (nested stop_on_signals say it once)
        super().__init__(128 + self.signum)

    def __str__(self) -> str:
        return f"stopped by {self.signal_name} (signal {self.signum}): exit status {self.code}"


def _forward_default(signum: int) -> None:
    """What the signal would have done without us: KeyboardInterrupt for SIGINT, else the OS
    default (termination) re-raised on this process."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@contextmanager
def stop_on_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Inside the block, the first of ``signals`` raises :class:`StopRequested` in this process;
    a second one while it unwinds stops the process at once (the OS default). Processes forked
    inside the block (dataloader workers) keep the default behaviour. Outside the main thread
    (where Python allows no handler) the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()
    state = {"stopping": False}

    def handler(signum, frame):
        if os.getpid() != owner or state["stopping"]:
            _forward_default(signum)
            return
        state["stopping"] = True
        raise StopRequested(signum)

    previous = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        signal.signal(s, handler)
    try:
        yield
    except StopRequested as stop:  # a SystemExit: Python would exit without a word
        if not stop.announced:
            print(f"sonolab: {stop}", file=sys.stderr, flush=True)
            stop.announced = True
        raise
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)


def run_stoppable(main: Callable[[], int]) -> int:
    """``main()`` inside :func:`stop_on_signals`: what a command line's ``__main__`` calls, so that
    a signal unwinds through its clean-up (temporary files) and exits with ``128 + signal``."""
    with stop_on_signals():
        return main()
