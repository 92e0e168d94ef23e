"""Commands with worker processes stop them at once when they are interrupted or terminated."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["workers_stop_with_us"]


@contextlib.contextmanager
def workers_stop_with_us(
    progress: Callable[[str], None],
) -> Iterator[Callable[[str], None]]:
    """While inside, SIGINT and SIGTERM kill this process's worker processes, then exit.

    Yields ``progress`` wrapped to install the handlers again at every message: CP-SAT (the
    planner) puts its own SIGINT handler in place while it solves and does not give ours back,
    so the command's progress callback (the wrapped one) re-arms after planning.

    A local pool waits for its running points when its driver stops (up to a point's wall budget)
    and, when the driver is terminated, its workers outlive it and block on a pipe nobody reads.
    Here the driver kills them first, says so on standard error and exits: SIGINT as
    ``KeyboardInterrupt`` (status 130), SIGTERM with status 143, whatever the code the signal
    landed in made of the exception. Workers forked inside inherit the handler; in them it only
    exits. Ray's workers are not this process's children: Ray stops them when its driver exits.
    """
    driver = os.getpid()
    received: list[int] = []

    def exit_for(signum: int) -> BaseException:
        return KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)

    def stop(signum: int, _frame: FrameType | None) -> None:
        if os.getpid() == driver:
            received.append(signum)
            children = mp.active_children()
            for child in children:
                child.kill()
            for child in children:
                child.join(timeout=5)
            name = signal.Signals(signum).name
            done = f"stopped {len(children)} worker process(es)" if children else "stopping"
            sys.stderr.write(f"isosched: {name}: {done}\n")
        raise exit_for(signum)

    def arm() -> None:
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, stop)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def report(msg: str) -> None:
        arm()
        progress(msg)

    arm()
    try:
        yield report
    except BaseException:
        # what the handler raised may come back changed by the code it landed in: Ray's get
        # turns it into SystemExit(1), a compiled (numba) call into SystemError. Exit as the
        # signal says.
        if received:
            raise exit_for(received[0]) from None
        raise
    finally:
        for s, handler in old.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
