"""Commands with worker processes stop them when interrupted or terminated (no orphans)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

SCRIPT = """
import sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing as mp
from isosched.cli.interrupt import workers_stop_with_us

def nap(_):
    time.sleep(120)

with workers_stop_with_us(lambda msg: None) as report:
    if sys.argv[1] == "cpsat":  # the planner's solver takes SIGINT over; a progress line re-arms
        from ortools.sat.python import cp_model
        m = cp_model.CpModel(); x = m.NewIntVar(0, 3, "x"); m.Add(x >= 1)
        cp_model.CpSolver().Solve(m)
        report("planned")
    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        futures = [pool.submit(nap, i) for i in range(2)]
        time.sleep(0.5)
        print(" ".join(str(c.pid) for c in mp.active_children()), flush=True)
        for f in futures:
            f.result()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return "State:\tZ" not in fh.read()
    except FileNotFoundError:
        return False


def _outliving(pids: list[int]) -> list[int]:
    """The workers still alive 10 s after their driver ended (none, when they stop with it)."""
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _clean_up(proc: subprocess.Popen[str], pids: list[int]) -> None:
    """Pass or fail, leave no process of a test behind (its driver runs in its own group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize(
    ("sig", "code", "mode"),
    [(signal.SIGTERM, 143, "plain"), (signal.SIGINT, 130, "plain"), (signal.SIGINT, 130, "cpsat")],
)
def test_signal_to_the_driver_kills_its_workers_and_exits(sig, code, mode):
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, so a failing run is cleaned up below
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        proc.send_signal(sig)  # the driver only, as `kill PID` does: not its process group
        _, err = proc.communicate(timeout=60)
        rc = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        assert rc == code, err
        assert f"isosched: {signal.Signals(sig).name}: stopped 2 worker process(es)" in err
        assert _outliving(pids) == []  # no worker outlives its driver
    finally:
        _clean_up(proc, pids)


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path):
    from isosched.io.files import written_whole

    path = tmp_path / "trace.jsonl"
    path.write_text("good\n")
    with pytest.raises(KeyboardInterrupt), written_whole(path) as part:
        part.write_text("half a fi")
        raise KeyboardInterrupt
    assert path.read_text() == "good\n" and [p.name for p in tmp_path.iterdir()] == [path.name]
    with written_whole(path) as part:
        part.write_text("new\n")
    assert path.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("budget", ["nan", "-1", "inf"])
def test_replay_refuses_a_budget_that_is_no_budget(budget, tmp_path):
    from pathlib import Path

    trace = Path(__file__).resolve().parents[1] / "traces" / "ad_urban.s7.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "isosched",
            "replay",
            str(trace),
            "--policy",
            "fcfs",
            "--budget-s",
            budget,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--budget-s must be a finite number >= 0" in proc.stderr


def test_ctrl_c_during_start_up_exits_130_without_a_traceback():
    # the interrupt lands while the console script imports the CLI (typer), as an early Ctrl-C does
    code = (
        "import sys\n"
        "class Stop:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'typer':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Stop())\n"
        "sys.argv = ['isosched', 'hw', 'list']\n"
        "from isosched.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in proc.stderr


CHANGED = """
import sys, time
from isosched.cli.interrupt import workers_stop_with_us

with workers_stop_with_us(lambda msg: None):
    try:
        print("ready", flush=True)
        time.sleep(120)
    except BaseException:
        raise SystemExit(1)  # what Ray's get makes of an interrupted wait
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_exit_status_follows_the_signal_whatever_the_code_made_of_it(sig, code):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHANGED],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    rc = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    assert rc == code, err
    assert f"isosched: {signal.Signals(sig).name}: stopping" in err  # no worker to name


def test_workers_die_with_a_driver_killed_by_sigkill():
    """No handler runs on SIGKILL: the workers get the parent-death signal instead."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, "plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        proc.kill()
        proc.wait(timeout=60)
        assert _outliving(pids) == []
    finally:
        _clean_up(proc, pids)
