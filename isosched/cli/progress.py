"""Progress on standard error: a live line with an ETA on a terminal, sparse lines otherwise.

The library reports progress as one-line messages; a message that holds counts ``a/b`` (``plans
2/5: yolov3 ...``, ``policy 1/7 isosched: 90/901 jobs released``) says how far its phase is. The
phase is the message up to its last count, digits aside (``segment 3 [`` is ``segment # [``). On
a terminal every message rewrites one status line, with the fraction done and an ETA from the
phase's rate so far. Elsewhere (a log, CI), a counted phase prints its first and last message
only, and messages without counts print only with ``verbose``; warnings always print.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import TextIO

__all__ = ["Progress"]

_COUNT = re.compile(r"(\d+)/(\d+)")


def _fraction(msg: str) -> tuple[str, float, float] | None:
    """Phase, fraction of the phase done and fraction of the whole done, of a counted message.

    The phase's fraction is its last count; nested counts combine for the whole
    (``policy 2/7 ...: 64/128``).
    """
    counts = [(int(a), int(b)) for a, b in _COUNT.findall(msg) if int(b) > 0]
    if not counts:
        return None
    *_, m = _COUNT.finditer(msg)
    # digits before the last count do not make a new phase: "segment 3 [" is "segment # ["
    phase = re.sub(r"\d+", "#", msg[: m.start()].rstrip(" :"))
    a, b = counts[-1]
    inner = min(a / b, 1.0)
    if len(counts) == 1:
        return phase, inner, inner
    i, n = counts[0]
    return phase, inner, min(((i - 1) + inner) / n, 1.0)


class Progress:
    """A progress callback for the CLI (``Progress()(message)``); call :meth:`close` at the end.

    Parameters
    ----------
    verbose : bool
        Print every message (one line each), as the library sends them.
    stream : text file, optional
        Where to write (default: standard error).
    tty : bool, optional
        Force the live line on or off (default: whether ``stream`` is a terminal).
    always : tuple of str
        Messages starting with one of these always print on a line of their own (besides
        warnings).
    heartbeat_s : float, optional
        After this many seconds without a message, say that the last step is still running
        and for how long (again every ``heartbeat_s``): on the live line on a terminal, as a
        line with ``verbose``; never in a quiet log. A long step of the library (placing a
        segment on a wafer takes minutes) then never looks hung.
    """

    def __init__(
        self,
        verbose: bool = False,
        stream: TextIO | None = None,
        tty: bool | None = None,
        always: tuple[str, ...] = (),
        heartbeat_s: float | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.always = ("warning", *always)
        self.verbose = verbose
        self.tty = self.stream.isatty() if tty is None else tty
        self._phase: str | None = None
        self._phase_t0 = 0.0
        self._phase_f0 = 0.0
        self._last_line: str | None = None
        self._live = False
        self.lines = 0
        self._lock = threading.Lock()  # the heartbeat writes from its own thread
        self._last_msg: str | None = None
        self._last_t = time.monotonic()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        if heartbeat_s is not None and (self.tty or verbose):
            self._beat = threading.Thread(
                target=self._heartbeat, args=(heartbeat_s,), name="progress-heartbeat", daemon=True
            )
            self._beat.start()

    def _heartbeat(self, every_s: float) -> None:
        said = time.monotonic()
        while not self._stop.wait(min(every_s, 1.0) / 4):
            with self._lock:
                now = time.monotonic()
                if self._last_msg is None or now - max(self._last_t, said) < every_s:
                    continue
                said = now
                note = f"{self._last_msg} … still working ({now - self._last_t:.0f} s)"
                if self.tty and not self.verbose:
                    self.stream.write("\r\x1b[K" + note[:118])
                    self.stream.flush()
                    self._live = True
                else:
                    self._write_line(note)

    def _write_line(self, text: str) -> None:
        if self._live:
            self.stream.write("\r\x1b[K")
            self._live = False
        self.stream.write(text + "\n")
        self.stream.flush()
        self.lines += 1

    def __call__(self, msg: str) -> None:
        """Report one message."""
        with self._lock:
            self._last_msg, self._last_t = msg, time.monotonic()
            self._report(msg)

    def _report(self, msg: str) -> None:
        if msg.startswith(self.always):
            self._write_line(msg)
            return
        got = _fraction(msg)
        now = time.monotonic()
        if got is not None:
            phase, _, frac = got
            if phase != self._phase:
                self._phase, self._phase_t0, self._phase_f0 = phase, now, frac
                self._last_line = None
        if self.verbose and not self.tty:
            self._write_line(msg)
            return
        if self.tty:
            status = msg
            if got is not None:
                frac = got[2]
                status = f"[{frac:4.0%}] {msg}"
                done = frac - self._phase_f0
                if done > 0 and frac < 1.0:
                    eta = (now - self._phase_t0) * (1.0 - frac) / done
                    status += f"  (ETA {eta:.0f} s)"
            if self.verbose:
                self._write_line(status)
                return
            width = 118
            self.stream.write("\r\x1b[K" + status[:width])
            self.stream.flush()
            self._live = True
            return
        if got is None:
            return  # detail: shown with -v
        if self._last_line is None or got[1] >= 1.0:
            if msg != self._last_line:
                self._write_line(msg)
            self._last_line = msg

    def close(self) -> None:
        """Stop the heartbeat; end the live line (if any) so that what follows starts afresh."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        with self._lock:
            if self._live:
                self.stream.write("\n")
                self.stream.flush()
                self._live = False
