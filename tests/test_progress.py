"""CLI progress: a live line with fraction and ETA on a terminal, sparse lines elsewhere."""

import io
import time

from isosched.cli.progress import Progress

MESSAGES = [
    "plans 0/2: mobilenetv2 on 4x4 tiles (plan, placements, LTS profile)",
    "plan cache: mobilenetv2 on edge-4x4 from memory",
    "plans 1/2: resnet50 on 4x4 tiles (plan, placements, LTS profile)",
    "plans 2/2: every model planned on every budget",
    "policy 1/2 isosched: 0/100 jobs released",
    "policy 1/2 isosched: 50/100 jobs released",
    "policy 1/2 isosched: 100/100 jobs released",
    "policy 2/2 fcfs: 0/100 jobs released",
    "policy 2/2 fcfs: 50/100 jobs released",
    "warning: a wall-clock safety net stopped a search",
    "policy 2/2 fcfs: 100/100 jobs released",
]


def _feed(**kw):
    out = io.StringIO()
    p = Progress(stream=out, **kw)
    for m in MESSAGES:
        p(m)
    p.close()
    return out.getvalue()


def test_off_a_terminal_each_phase_prints_its_first_and_last_line():
    lines = _feed(tty=False).splitlines()
    assert lines == [
        "plans 0/2: mobilenetv2 on 4x4 tiles (plan, placements, LTS profile)",
        "plans 2/2: every model planned on every budget",
        "policy 1/2 isosched: 0/100 jobs released",
        "policy 1/2 isosched: 100/100 jobs released",
        "policy 2/2 fcfs: 0/100 jobs released",
        "warning: a wall-clock safety net stopped a search",
        "policy 2/2 fcfs: 100/100 jobs released",
    ]


def test_verbose_prints_every_message():
    assert _feed(tty=False, verbose=True).splitlines() == MESSAGES


def test_on_a_terminal_one_live_line_with_fraction_and_eta():
    text = _feed(tty=True)
    assert text.count("\n") == 2  # the warning, and the end of the live line
    assert "\r\x1b[K[ 75%] policy 2/2 fcfs: 50/100 jobs released  (ETA " in text
    assert "[ 25%] policy 1/2 isosched: 50/100 jobs released" in text
    assert text.endswith("[100%] policy 2/2 fcfs: 100/100 jobs released\n")


def test_segments_of_a_plan_are_one_phase():
    out = io.StringIO()
    p = Progress(stream=out, tty=False)
    for m in [
        "segment 0 [0/3]: allocating tiles to 5 units (ILP)",
        "segment 0 [1/3]: 5 units, 16 tiles",
        "segment 1 [1/3]: allocating tiles to 4 units (ILP)",
        "segment 1 [2/3]: 4 units, 8 tiles",
        "segment 2 [2/3]: allocating tiles to 1 units (ILP)",
        "segment 2 [3/3]: 1 units, 16 tiles",
    ]:
        p(m)
    assert out.getvalue().splitlines() == [
        "segment 0 [0/3]: allocating tiles to 5 units (ILP)",
        "segment 2 [3/3]: 1 units, 16 tiles",
    ]


def _wait_for(out: io.StringIO, text: str) -> bool:
    """Whether ``text`` shows in ``out`` within 20 s (the heartbeat runs on its own thread)."""
    deadline = time.monotonic() + 20
    while text not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    return text in out.getvalue()


def test_a_long_silent_step_says_it_is_still_working():
    out = io.StringIO()
    p = Progress(stream=out, tty=False, verbose=True, heartbeat_s=0.05)
    p("segment 2 [2/3]: allocating tiles to 58 units (ILP)")
    assert _wait_for(out, "segment 2 [2/3]: allocating tiles to 58 units (ILP) … still working (")
    p.close()
    after = out.getvalue()
    time.sleep(0.2)
    assert out.getvalue() == after  # closed: the heartbeat has stopped


def test_on_a_terminal_the_heartbeat_rewrites_the_live_line():
    out = io.StringIO()
    p = Progress(stream=out, tty=True, heartbeat_s=0.05)
    p("placing segment 1")
    assert _wait_for(out, "\r\x1b[Kplacing segment 1 … still working (")
    p.close()
    assert out.getvalue().endswith("\n")


def test_a_quiet_log_gets_no_heartbeat():
    out = io.StringIO()
    p = Progress(stream=out, tty=False, heartbeat_s=0.01)
    p("placing segment 1")  # no count, not verbose: not printed, and nothing repeats it
    time.sleep(0.2)
    p.close()
    assert out.getvalue() == ""
