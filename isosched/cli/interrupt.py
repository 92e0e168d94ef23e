"""Commands with worker processes stop them at once when they are interrupted or terminated."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["workers_stop_with_us"]

#: ``prctl`` option: the signal a process gets when the thread that forked it dies (Linux).
_PR_SET_PDEATHSIG = 1
#: Inside :func:`workers_stop_with_us`: the driver's pid (children forked then die with it).
_guarding: list[int] = []
#: Set in the parent just before a fork (the child inherits it): whether the driver's main
#: thread forks, not a helper thread nor a worker of the driver's.
_forked_by_driver = False


def _before_fork() -> None:
    global _forked_by_driver
    _forked_by_driver = (
        bool(_guarding)
        and os.getpid() == _guarding[-1]
        and threading.current_thread() is threading.main_thread()
    )


def _die_with_parent() -> None:
    """In a child forked inside the guard: be killed when the driver dies, even by SIGKILL.

    Only when the driver's main thread forked: the signal follows the forking *thread*, and a
    pool's helper thread may end while the driver lives; a worker's own children are its own.
    No handler of the driver's can run on SIGKILL; without this its pool's workers outlived it,
    blocked on a pipe nobody writes.
    """
    if not _forked_by_driver or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != _guarding[-1]:  # the driver died before the line above
            os._exit(1)


os.register_at_fork(before=_before_fork, after_in_child=_die_with_parent)


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
    Children that the main thread forks inside are killed with the driver even when it is
    killed with SIGKILL, which no handler sees (Linux's parent-death signal).
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
    _guarding.append(driver)
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
        _guarding.pop()
        for s, handler in old.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
